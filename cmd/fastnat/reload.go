package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
)

// cmdReload is "fastnat reload": ask the running daemon, over its control
// socket, to re-read its configuration file, as SIGHUP does. Exit 0 when
// the daemon applied it (listing the changed keys that wait for a
// restart); 2, with the file's positioned errors, when the daemon refused
// it and kept its running configuration; 1 when the daemon could not be
// asked or applying failed (and was rolled back).
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastnat reload [-c FILE | --socket PATH]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	socket, err := cf.socketPath()
	if err != nil {
		if errors.Is(err, config.ErrInvalid) {
			// The daemon, reading the same file, would refuse it too.
			fmt.Fprintln(stderr, err)
			fmt.Fprintf(stderr, "fastnat reload: %s has errors; the daemon was not asked (--socket asks it anyway)\n", *cf.file)
		} else {
			fmt.Fprintf(stderr, "fastnat reload: %v\n", err)
		}
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	resp, err := control.Call(ctx, socket, control.Request{Cmd: control.CmdReload})
	switch {
	case errors.Is(err, control.ErrRefused):
		fmt.Fprintln(stderr, err)
		fmt.Fprintln(stderr, "fastnat reload: refused; the daemon keeps its running configuration")
		return exitUsage
	case err != nil:
		fmt.Fprintf(stderr, "fastnat reload: %v\n", err)
		return exitFailure
	case resp.Reload == nil:
		fmt.Fprintln(stderr, "fastnat reload: the daemon sent no result")
		return exitFailure
	}
	r := resp.Reload
	if len(r.Pending) == 0 {
		fmt.Fprintf(stdout, "reloaded %s (%d port mappings)\n", r.File, r.PortMappings)
		return exitOK
	}
	fmt.Fprintf(stdout, "reloaded %s (%d port mappings), except %d changed keys that wait for a restart:\n", r.File, r.PortMappings, len(r.Pending))
	for _, p := range r.Pending {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	return exitOK
}
