package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/dataplane"
	"github.com/fastnat/fastnat/explain"
)

const explainUsage = `usage: fastnat explain [-c FILE] [--from inside|outside] [--json] PROTO SRC:PORT DST:PORT
       fastnat explain --live [-c FILE | --socket PATH] [--from inside|outside] [--json] PROTO SRC:PORT DST:PORT
       fastnat explain --live [-c FILE | --socket PATH] [--json] SESSION-ID

How fastnat treats a connection, and why: the NAT rule that translates it
(with its line in the file) and the translated tuple; the application its
ports classify it as, by which [[port_mapping]] or built-in default, on the
port as it arrives or after translation; whether the FTP ALG inspects it;
and, when no mapping makes an unclassified TCP connection ftp, the
[[port_mapping]] that would. PROTO is tcp, udp, icmp, sctp, dccp or
udp-lite; SRC and DST are the connection's first packet as it arrives at
the NAT; the side it arrives on is inferred from its source unless --from
says it.

Without --live it reads FILE alone (no root, no daemon). With --live (or
--socket, or a SESSION-ID as listed by fastnat show sessions) it asks the
running daemon, which explains by its running configuration and adds the
live session, its expectations and the FTP ALG's counters for it.

Exit status: 0 explained, 1 the daemon could not be asked, 2 bad arguments
or an invalid configuration.`

// cmdExplain is "fastnat explain": the logic is package explain's (and
// the daemon's, over the control socket); this is the flags and the
// printing.
func cmdExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := addClientFlags(fs)
	live := fs.Bool("live", false, "ask the running daemon (over the control socket of -c FILE, or --socket)")
	from := fs.String("from", "", "the side the connection arrives on: `inside` or outside (default: inferred from the source)")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, explainUsage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return exitUsage
	}
	fs.Visit(func(f *flag.Flag) { *live = *live || f.Name == "socket" })
	var q control.ExplainQuery
	switch len(pos) {
	case 3:
		src, err1 := netip.ParseAddrPort(pos[1])
		dst, err2 := netip.ParseAddrPort(pos[2])
		if err := errors.Join(err1, err2); err != nil {
			fmt.Fprintf(stderr, "fastnat explain: %v\n", err)
			return exitUsage
		}
		q.Query = explain.Query{Proto: pos[0], Src: src, Dst: dst, From: *from}
	case 1:
		id, err := strconv.ParseUint(pos[0], 10, 32)
		if err != nil {
			fmt.Fprintf(stderr, "fastnat explain: %q is not a session id\n", pos[0])
			return exitUsage
		}
		id32 := uint32(id)
		q.Session, *live = &id32, true
	default:
		fs.Usage()
		return exitUsage
	}
	if !*live {
		cfg, ok := loadConfig("explain", *cf.file, stderr)
		if !ok {
			return exitUsage
		}
		r, err := explain.Explain(cfg, dataplane.NATRules(cfg), q.Query)
		if err != nil {
			fmt.Fprintf(stderr, "fastnat explain: %v\n", err)
			return exitUsage
		}
		if *asJSON {
			return printJSON(stdout, stderr, &r)
		}
		r.WriteText(stdout)
		return exitOK
	}
	resp, code := askDaemon("explain", cf, control.Request{Cmd: control.CmdExplain, Explain: &q}, stderr)
	switch {
	case resp == nil:
		return code
	case resp.Explain == nil:
		fmt.Fprintln(stderr, "fastnat explain: the daemon sent no explanation")
		return exitFailure
	}
	if *asJSON {
		return printJSON(stdout, stderr, resp.Explain)
	}
	control.WriteExplain(stdout, resp.Explain)
	return exitOK
}

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "fastnat explain: %v\n", err)
		return exitFailure
	}
	return exitOK
}
