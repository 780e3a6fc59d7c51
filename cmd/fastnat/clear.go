package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/cli"
)

var clearCommand = &cli.Command{
	Name: "clear", Args: "sessions", MinArgs: 1, MaxArgs: 1, Words: []string{"sessions"},
	Summary: "end the running daemon's sessions that the filters select, as their expiry would",
	About: "Each session ends at once and gives back what it held — its public port, its endpoint-independent " +
		"binding when it was the binding's last session, its port block when it held the block's last port, " +
		"its expectations — and its session-delete event is logged, exactly as when it expires. A session that " +
		"expires while being cleared is released once. The filters are those of fastnat show sessions and " +
		"combine; without any, --all is needed to clear every session. Exit 0 with the count, 2 for bad " +
		"filters, 1 when the daemon cannot be asked.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cf := addClientFlags(fs)
		asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
		sf := addSessionFlags(fs, "")
		all := fs.Bool("all", false, "clear every session (needed when no filter is given)")
		return func(args []string, stdout, stderr io.Writer) int {
			if args[0] != "sessions" {
				return usageError(stderr, "clear", "unknown subject %q", args[0])
			}
			f := sf.filter()
			if f == (control.SessionFilter{}) && !*all {
				return usageError(stderr, "clear", "no filter given: name the sessions to clear, or --all for every session")
			}
			resp, code := askDaemon("clear", cf, control.Request{Cmd: control.CmdClear, Filter: &f, All: *all}, stderr)
			if resp == nil {
				return code
			}
			if resp.Cleared == nil {
				fmt.Fprintln(stderr, "fastnat clear: the daemon sent no result")
				return exitFailure
			}
			if *asJSON {
				return printJSON("clear", stdout, stderr, resp.Cleared)
			}
			control.WriteCleared(stdout, *resp.Cleared)
			return exitOK
		}
	},
}
