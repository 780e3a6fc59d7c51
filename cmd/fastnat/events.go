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
	"syscall"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/cli"
	"github.com/fastnat/fastnat/natlog"
)

var eventsCommand = &cli.Command{
	Name:    "events",
	Summary: "stream the running daemon's NAT events as they happen, like conntrack -E",
	About: "One line per event (session-create, session-delete, binding-create, binding-delete, block-alloc, " +
		"block-release, addresses-exhausted, ports-exhausted, quota-exceeded) with the inside and the outside " +
		"tuple, the rule and the application, until Ctrl-C; --json prints one JSON object per line. The filters " +
		"combine. A client that reads too slowly is told how many events it lost. Exit 0 when stopped, 1 when " +
		"the daemon ends the stream or cannot be reached, 2 for bad arguments.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		o := addEventsFlags(fs)
		return func(args []string, stdout, stderr io.Writer) int { return o.stream(stdout, stderr, nil) }
	},
}

// eventsOptions are the flags of `fastnat events`.
type eventsOptions struct {
	cf               clientFlags
	asJSON           *bool
	types            []string
	addr, proto, app *string
	port             int
}

func addEventsFlags(fs *flag.FlagSet) *eventsOptions {
	o := &eventsOptions{cf: addClientFlags(fs)}
	o.asJSON = fs.Bool("json", false, "print each event as a JSON object on one line")
	cli.StringListVar(fs, &o.types, "type", nil, natlog.TypeNames(), "only events of these types, comma-separated")
	o.addr = fs.String("addr", "", "only events with an address in `ADDR` (an address or prefix)")
	cli.IntVar(fs, &o.port, "port", 0, 0, 65535, "only events with this `PORT` (a port of the flow, or in the port block; 0: any)")
	o.proto = fs.String("proto", "", "only events of this `PROTOCOL` (tcp, udp, icmp, ...)")
	o.app = fs.String("app", "", "only sessions of application `NAME` (ftp, ftp-data, http, other, ...)")
	return o
}

// streamEvents parses args as `fastnat events` does and streams until
// stop ends it as Ctrl-C does (tests).
func streamEvents(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := addEventsFlags(fs)
	if pos, err := cli.ParseInterleaved(fs, args); err != nil || len(pos) > 0 {
		return usageError(stderr, "events", "bad arguments %q", args)
	}
	return o.stream(stdout, stderr, stop)
}

// stream is `fastnat events` with its flags parsed.
func (o *eventsOptions) stream(stdout, stderr io.Writer, stop <-chan struct{}) int {
	cf, asJSON := o.cf, o.asJSON
	f := control.EventFilter{Types: o.types, Addr: *o.addr, Port: o.port, Protocol: *o.proto, App: *o.app}
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
