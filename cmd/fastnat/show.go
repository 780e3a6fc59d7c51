package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/cli"
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
		file:   fs.String("c", defaultConfig, "configuration `FILE` naming the control socket"),
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

// showSubjects are what `fastnat show` shows.
var showSubjects = []string{control.CmdStats, control.CmdSessions, control.CmdExpectations, control.CmdMappings, control.CmdRules}

var showCommand = &cli.Command{
	Name: "show", Args: "stats|sessions|expectations|mappings|rules", MinArgs: 1, MaxArgs: 1, Words: showSubjects,
	Summary: "show the running daemon's state, over its control socket",
	About: "stats: counters of every worker and socket, the flow table, sessions by protocol and application, " +
		"port pools, the FTP ALG, reloads. sessions: one line per session, like conntrack -L (initiator and " +
		"responder tuples, state, application, the rule that made it, the interface its first packet came in " +
		"on, age and time left); --verbose prints each like the case's firewall (its start time and counters " +
		"too); the filters combine. expectations: the data connections the FTP ALG waits for. mappings: the " +
		"running port-mapping table with the ALG's counts per mapping. rules: the NAT rules, timeouts and FTP " +
		"ALG policy the daemon runs, and when it loaded them (a file changed since and not reloaded differs).\n\n" +
		"The daemon is found through [control] socket of the -c file, or --socket. --json prints the daemon's " +
		"answer as JSON.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cf := addClientFlags(fs)
		asJSON := fs.Bool("json", false, "print the daemon's answer as JSON")
		sf := addSessionFlags(fs, "sessions: ")
		verbose := fs.Bool("verbose", false, "sessions: one block per session, like the case's firewall")
		var limit int
		cli.IntVar(fs, &limit, "limit", 100, 0, 1<<30, "sessions: show at most `N` (0: all)")
		return func(args []string, stdout, stderr io.Writer) int {
			req := control.Request{Cmd: args[0]}
			switch req.Cmd {
			case control.CmdSessions:
				f := sf.filter()
				req.Filter, req.Limit = &f, limit
			case control.CmdStats, control.CmdExpectations, control.CmdMappings, control.CmdRules:
				if names := sessionFlagsSet(fs, "verbose", "limit"); len(names) > 0 {
					return usageError(stderr, "show", "%s: only for sessions", strings.Join(names, ", "))
				}
			default:
				return usageError(stderr, "show", "unknown subject %q", req.Cmd)
			}
			return show(req, cf, *asJSON, *verbose, stdout, stderr)
		}
	},
}

// sessionFlags are the session filters of `fastnat show sessions` and
// `fastnat clear sessions`.
type sessionFlags struct {
	addr, proto, state, app, rule *string
	port                          int
}

// sessionFilterNames are the names of the session filter flags.
var sessionFilterNames = []string{"addr", "port", "proto", "state", "app", "rule"}

func addSessionFlags(fs *flag.FlagSet, prefix string) *sessionFlags {
	f := &sessionFlags{}
	f.addr = fs.String("addr", "", prefix+"only those with an address in `ADDR` (an address or prefix; any address of either tuple)")
	cli.IntVar(fs, &f.port, "port", 0, 0, 65535, prefix+"only those with this `PORT` in either tuple (0: any)")
	f.proto = fs.String("proto", "", prefix+"only those of this `PROTOCOL` (tcp, udp, icmp, ...)")
	f.state = fs.String("state", "", prefix+"only those in this `STATE` (established, syn_sent, fin_wait, closed, open, ready, ...; "+
		"with the protocol or without: tcp_established)")
	f.app = fs.String("app", "", prefix+"only those of application `NAME` (ftp, ftp-data, http, other, ...)")
	f.rule = fs.String("rule", "", prefix+"only those made by `RULE`: nat.outbound[N], nat.server[N] (with /hairpin or /alg for one way), "+
		"nat.outbound, nat.server, hairpin, alg, or removed (by a reload)")
	return f
}

func (f *sessionFlags) filter() control.SessionFilter {
	return control.SessionFilter{Addr: *f.addr, Port: f.port, Protocol: *f.proto, State: *f.state, App: *f.app, Rule: *f.rule}
}

// sessionFlagsSet lists the session flags given on the command line: the
// filters and extra.
func sessionFlagsSet(fs *flag.FlagSet, extra ...string) []string {
	var set []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(sessionFilterNames, f.Name) || slices.Contains(extra, f.Name) {
			set = append(set, "--"+f.Name)
		}
	})
	return set
}

// show asks the daemon for req and prints the answer, as text or JSON;
// verbose prints sessions as blocks.
func show(req control.Request, cf clientFlags, asJSON, verbose bool, stdout, stderr io.Writer) int {
	resp, code := askDaemon("show", cf, req, stderr)
	if resp == nil {
		return code
	}
	if asJSON {
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
		case control.CmdRules:
			v = resp.Rules
		}
		return printJSON("show", stdout, stderr, v)
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
		if verbose {
			control.WriteSessionsVerbose(stdout, *resp.Sessions)
		} else {
			control.WriteSessions(stdout, *resp.Sessions)
		}
	case control.CmdExpectations:
		control.WriteExpectations(stdout, resp.Expectations)
	case control.CmdMappings:
		control.WriteMappings(stdout, resp.Mappings)
	case control.CmdRules:
		if resp.Rules == nil {
			fmt.Fprintln(stderr, "fastnat show: the daemon sent no rules")
			return exitFailure
		}
		control.WriteRules(stdout, *resp.Rules)
	}
	return exitOK
}

// printJSON prints v indented, as the client commands' --json do; a
// failure is command's.
func printJSON(command string, stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "fastnat %s: %v\n", command, err)
		return exitFailure
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
