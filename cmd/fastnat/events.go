package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fastnat/fastnat/control"
)

// cmdEvents is "fastnat events": the running daemon's NAT events as they
// happen, like `conntrack -E`, one line each (or one JSON object with
// --json), until Ctrl-C. Exit 0 when stopped, 1 when the daemon ends the
// stream or cannot be reached, 2 for bad arguments.
func cmdEvents(args []string, stdout, stderr io.Writer) int {
	return streamEvents(args, stdout, stderr, nil)
}

// streamEvents is cmdEvents; stop, when not nil, ends it as Ctrl-C does
// (tests).
func streamEvents(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print each event as a JSON object on one line")
	types := fs.String("type", "", "only events of these `TYPES`, comma-separated (session-create, session-delete, binding-create, binding-delete, block-alloc, block-release, addresses-exhausted, ports-exhausted, quota-exceeded)")
	addr := fs.String("addr", "", "only events with an address in `ADDR` (an address or prefix)")
	port := fs.Int("port", 0, "only events with this `PORT` (a port of the flow, or in the port block)")
	proto := fs.String("proto", "", "only events of this `PROTOCOL` (tcp, udp, icmp, ...)")
	app := fs.String("app", "", "only sessions of application `NAME` (ftp, ftp-data, http, other, ...)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastnat events [--json] [--type TYPES] [--addr ADDR] [--port PORT] [--proto PROTOCOL] [--app NAME] [-c FILE | --socket PATH]")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) > 0 {
		fs.Usage()
		return exitUsage
	}
	f := control.EventFilter{Addr: *addr, Port: *port, Protocol: *proto, App: *app}
	if *types != "" {
		f.Types = strings.Split(*types, ",")
	}
	if _, err := f.Filter(); err != nil { // refuse a bad filter before connecting
		fmt.Fprintf(stderr, "fastnat events: %v\n", err)
		return exitUsage
	}
	socket, err := cf.socketPath()
	if err != nil {
		fmt.Fprintf(stderr, "fastnat events: %v\n", err)
		return exitUsage
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if stop != nil {
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	enc := json.NewEncoder(stdout)
	var line []byte
	err = control.Stream(ctx, socket, f, func(e *control.Event) error {
		if *asJSON {
			return enc.Encode(e)
		}
		if e.Type == control.TypeLost {
			fmt.Fprintf(stderr, "fastnat events: %d events lost: this client read too slowly\n", e.Lost)
			return nil
		}
		ne, err := e.Natlog()
		if err != nil {
			return fmt.Errorf("event from the daemon: %w", err)
		}
		line = append(ne.AppendText(line[:0]), '\n')
		_, err = stdout.Write(line)
		return err
	})
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, control.ErrBadRequest):
		fmt.Fprintf(stderr, "fastnat events: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "fastnat events: %v\n", err)
		return exitFailure
	}
}
