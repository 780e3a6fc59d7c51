package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: fn gets the arguments after its name and
// returns the exit status.
type command struct {
	name    string
	usage   string
	summary string
	fn      func(args []string, stdout, stderr io.Writer) int
}

// commands is filled in init to break the cycle through help.
var commands []command

func init() {
	commands = []command{
		{"run", "run -c FILE", "run the dataplane with the configuration in FILE (root)", cmdRun},
		{"check", "check -c FILE", "validate FILE; print the interfaces, NAT rules and effective port mappings", cmdCheck},
		{"show", "show stats|sessions|expectations|mappings [--json]", "show the running daemon's state", cmdShow},
		{"bench", "bench ...", "run the benchmark harness", cmdBench},
		{"demo", "demo", "build a three-namespace topology and show an FTP download through port 9091", cmdDemo},
		{"reload", "reload", "make the running daemon re-read its configuration file", cmdReload},
		{"events", "events [--json] [--type T,...] [FILTERS]", "stream the running daemon's NAT events as they happen", cmdEvents},
		{"lookup", "lookup PUBLIC:PORT|INSIDE... [-c FILE] [--json]", "which inside host a public address and port of a deterministic rule stood for, or an inside address's public ports", cmdLookup},
		{"explain", "explain [--live] PROTO SRC:PORT DST:PORT | SESSION-ID", "how fastnat treats a connection and why: NAT rule, application, FTP ALG", cmdExplain},
		{"version", "version", "print the version", cmdVersion},
		{"help", "help [COMMAND]", "print this help, or a command's", cmdHelp},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2 // bad arguments or an invalid configuration
)

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.fn(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "fastnat: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "fastnat — a NAT44 dataplane on AF_XDP with an FTP ALG driven by port mappings")
	fmt.Fprintln(w, "\nUsage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  fastnat %-52s %s\n", c.usage, c.summary)
	}
	fmt.Fprintln(w, "\nExit status: 0 success, 1 failure, 2 usage or configuration error.")
}

func cmdHelp(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			fmt.Fprintf(stdout, "usage: fastnat %s\n\n%s\n", c.usage, c.summary)
			return exitOK
		}
	}
	fmt.Fprintf(stderr, "fastnat help: unknown command %q\n", args[0])
	return exitUsage
}

// notImplemented is what a subcommand that a later issue fills says until
// then.
func notImplemented(name string, issue int, stderr io.Writer) int {
	fmt.Fprintf(stderr, "fastnat %s: not implemented yet (issue %d)\n", name, issue)
	return exitUsage
}

// joinInts formats a list of small integers as "0,1,2".
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
