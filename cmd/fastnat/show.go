package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
)

// clientTimeout bounds one exchange with the daemon.
const clientTimeout = 60 * time.Second

// errNoSocket is returned by the client commands when the configuration
// has no control socket.
var errNoSocket = errors.New("the control socket is off ([control] socket is empty)")

// clientFlags are the flags every control-socket client takes.
type clientFlags struct {
	file   *string
	socket *string
}

func addClientFlags(fs *flag.FlagSet) clientFlags {
	return clientFlags{
		file:   fs.String("c", "/etc/fastnat/fastnat.toml", "configuration `FILE` naming the control socket"),
		socket: fs.String("socket", "", "control socket `PATH` (instead of [control] socket of -c FILE)"),
	}
}

// socketPath is --socket, or [control] socket of the -c file. A file that
// cannot be read or has errors is reported (positioned) as the error.
func (f clientFlags) socketPath() (string, error) {
	if *f.socket != "" {
		return *f.socket, nil
	}
	cfg, err := config.Load(*f.file)
	if err != nil {
		return "", err
	}
	if cfg.Control.Socket == "" {
		return "", fmt.Errorf("%s: %w", *f.file, errNoSocket)
	}
	return cfg.Control.Socket, nil
}

// askDaemon sends req to the daemon whose control socket cf names and
// returns its response, or nil and the exit status, the failure printed
// as command's: 2 for a socket that cannot be found or a request the
// daemon calls bad, 1 when it cannot be asked or fails.
func askDaemon(command string, cf clientFlags, req control.Request, stderr io.Writer) (*control.Response, int) {
	socket, err := cf.socketPath()
	if err != nil {
		fmt.Fprintf(stderr, "fastnat %s: %v\n", command, err)
		return nil, exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	resp, err := control.Call(ctx, socket, req)
	if err != nil {
		fmt.Fprintf(stderr, "fastnat %s: %v\n", command, err)
		if errors.Is(err, control.ErrBadRequest) {
			return nil, exitUsage
		}
		return nil, exitFailure
	}
	return resp, exitOK
}

// parseInterleaved parses fs over args, allowing flags after positional
// arguments ("show sessions --app ftp"), and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// cmdShow is "fastnat show stats|sessions|expectations|mappings": ask the
// running daemon over its control socket and print the answer, as text or
// (--json) as the daemon's JSON.
func cmdShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
	app := fs.String("app", "", "sessions: only those of application `NAME` (ftp, ftp-data, other, ...)")
	limit := fs.Int("limit", 100, "sessions: show at most `N` (0: all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastnat show stats|sessions|expectations|mappings [--json] [--app NAME] [--limit N] [-c FILE | --socket PATH]")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return exitUsage
	}
	req := control.Request{Cmd: pos[0]}
	switch req.Cmd {
	case control.CmdSessions:
		req.App, req.Limit = *app, *limit
	case control.CmdStats, control.CmdExpectations, control.CmdMappings:
		sessionFlag := false
		fs.Visit(func(f *flag.Flag) { sessionFlag = sessionFlag || f.Name == "app" || f.Name == "limit" })
		if sessionFlag {
			fmt.Fprintln(stderr, "fastnat show: --app and --limit apply to sessions only")
			return exitUsage
		}
	default:
		fmt.Fprintf(stderr, "fastnat show: unknown subject %q\n", req.Cmd)
		fs.Usage()
		return exitUsage
	}
	if req.Limit < 0 {
		fmt.Fprintln(stderr, "fastnat show: --limit must not be negative")
		return exitUsage
	}
	resp, code := askDaemon("show", cf, req, stderr)
	if resp == nil {
		return code
	}
	if *asJSON {
		var v any
		switch req.Cmd {
		case control.CmdStats:
			v = resp.Stats
		case control.CmdSessions:
			v = resp.Sessions
		case control.CmdExpectations:
			v = nonNil(resp.Expectations)
		case control.CmdMappings:
			v = nonNil(resp.Mappings)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(stderr, "fastnat show: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	switch req.Cmd {
	case control.CmdStats:
		if resp.Stats == nil {
			fmt.Fprintln(stderr, "fastnat show: the daemon sent no statistics")
			return exitFailure
		}
		control.WriteStats(stdout, resp.Stats)
	case control.CmdSessions:
		if resp.Sessions == nil {
			fmt.Fprintln(stderr, "fastnat show: the daemon sent no sessions")
			return exitFailure
		}
		control.WriteSessions(stdout, *resp.Sessions)
	case control.CmdExpectations:
		control.WriteExpectations(stdout, resp.Expectations)
	case control.CmdMappings:
		control.WriteMappings(stdout, resp.Mappings)
	}
	return exitOK
}

// nonNil makes an absent list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
