package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/dataplane"
	"github.com/fastnat/fastnat/internal/cli"
	"github.com/fastnat/fastnat/nat"
)

// lookupAnswer is one line of `fastnat lookup --json`.
type lookupAnswer struct {
	Query  string `json:"query"`
	Rule   string `json:"rule,omitempty"`
	Inside string `json:"inside,omitempty"`
	Public string `json:"public,omitempty"`
	First  uint16 `json:"first_port,omitempty"`
	Last   uint16 `json:"last_port,omitempty"`
	Error  string `json:"error,omitempty"`
}

var lookupCommand = &cli.Command{
	Name: "lookup", Args: "PUBLIC:PORT|INSIDE...", MinArgs: 1, MaxArgs: -1,
	Summary: "which inside host a public address and port of a deterministic rule stood for, or an inside address's public ports",
	About: "Answers from the configuration alone, offline, for rules with mapping = \"deterministic\": a public " +
		"address and port names the inside host it stood for; an inside address names its public address and " +
		"port range. Exit 0 when every query has an answer, 1 when one has none, 2 for bad arguments or " +
		"configuration.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		file := fs.String("c", defaultConfig, "configuration `FILE` whose rules to invert")
		asJSON := fs.Bool("json", false, "print one JSON object per query")
		return func(queries []string, stdout, stderr io.Writer) int {
			return lookupAll(queries, *file, *asJSON, stdout, stderr)
		}
	},
}

// lookupAll answers every query of `fastnat lookup` from file.
func lookupAll(queries []string, file string, asJSON bool, stdout, stderr io.Writer) int {
	cfg, ok := loadConfig("lookup", file, stderr)
	if !ok {
		return exitUsage
	}
	l, err := nat.NewLookup(dataplane.NATRules(cfg).Outbound)
	if err != nil {
		fmt.Fprintf(stderr, "fastnat lookup: %s: %v\n", file, err)
		return exitUsage
	}
	code := exitOK
	enc := json.NewEncoder(stdout)
	for _, q := range queries {
		a, text, err := lookup(l, q)
		if err != nil && !errors.Is(err, errQuery) {
			code = exitFailure
		} else if err != nil {
			fmt.Fprintf(stderr, "fastnat lookup: %v\n", err)
			return exitUsage
		}
		if asJSON {
			enc.Encode(a)
		} else {
			fmt.Fprintln(stdout, text)
		}
	}
	return code
}

var errQuery = errors.New("not an IPv4 address, or address and port")

// lookup answers one query, with its line of text.
func lookup(l *nat.Lookup, q string) (lookupAnswer, string, error) {
	rule := func(i int) string { return fmt.Sprintf("nat.outbound[%d]", i) }
	out := lookupAnswer{Query: q}
	if ap, err := netip.ParseAddrPort(q); err == nil && ap.Addr().Is4() {
		a, err := l.ByPublic(ap)
		return describe(out, a, err, rule, func() string {
			return fmt.Sprintf("%s -> %s (%s, %s ports %d-%d)", q, a.Inside, rule(a.Rule), a.Public, a.First, a.Last)
		})
	}
	if addr, err := netip.ParseAddr(q); err == nil && addr.Is4() {
		a, err := l.ByInside(addr)
		return describe(out, a, err, rule, func() string {
			return fmt.Sprintf("%s -> %s ports %d-%d (%s)", q, a.Public, a.First, a.Last, rule(a.Rule))
		})
	}
	return out, "", fmt.Errorf("%q: %w", q, errQuery)
}

// describe fills the answer and its text from a Lookup result.
func describe(out lookupAnswer, a nat.Answer, err error, rule func(int) string, found func() string) (lookupAnswer, string, error) {
	switch {
	case err == nil:
		out.Rule, out.Inside, out.Public, out.First, out.Last = rule(a.Rule), a.Inside.String(), a.Public.String(), a.First, a.Last
		return out, found(), nil
	case errors.Is(err, nat.ErrDynamic):
		out.Rule = rule(a.Rule)
		out.Error = fmt.Sprintf("%s maps dynamically: only the event log (fastnat events, [logging]) knows who used its ports", out.Rule)
	case errors.Is(err, nat.ErrUnassigned):
		out.Rule = rule(a.Rule)
		out.Error = fmt.Sprintf("no inside host owns this port of %s (ports past the last range, or past the last host)", out.Rule)
	default:
		out.Error = "no nat.outbound rule has this address"
	}
	return out, out.Query + ": " + out.Error, err
}

// loadConfig loads file for command cmd; a file with errors prints them
// as they are (FILE:LINE:COL: ...), any other failure prefixed with the
// command.
func loadConfig(cmd, file string, stderr io.Writer) (*config.Config, bool) {
	cfg, err := config.Load(file)
	switch {
	case err == nil:
		return cfg, true
	case errors.Is(err, config.ErrInvalid):
		fmt.Fprintln(stderr, err)
	default:
		fmt.Fprintf(stderr, "fastnat %s: %v\n", cmd, err)
	}
	return nil, false
}
