package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/cli"
)

var reloadCommand = &cli.Command{
	Name:    "reload",
	Summary: "make the running daemon re-read its configuration file, as SIGHUP does",
	About: "The reload is all or nothing: the daemon prepares the whole file and changes nothing if any of it " +
		"cannot apply. Exit 0 when the daemon applied the file, listing the changed keys that wait for a " +
		"restart; 2, with the file's positioned errors, when it refused the file and kept its running " +
		"configuration; 1 when the daemon could not be asked, or applying failed and was rolled back. A -c " +
		"file with errors is reported without asking the daemon (--socket asks it anyway).",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cf := addClientFlags(fs)
		return func(args []string, stdout, stderr io.Writer) int { return reload(cf, stdout, stderr) }
	},
}

// reload asks the daemon to reload and prints what it did.
func reload(cf clientFlags, stdout, stderr io.Writer) int {
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
