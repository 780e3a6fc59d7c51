package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/dataplane"
	"github.com/fastnat/fastnat/explain"
	"github.com/fastnat/fastnat/internal/cli"
)

var explainCommand = &cli.Command{
	Name: "explain", Args: "PROTO SRC:PORT DST:PORT | SESSION-ID", MinArgs: 1, MaxArgs: 3,
	Words:   []string{"tcp", "udp", "icmp", "sctp", "dccp", "udp-lite"},
	Summary: "how fastnat treats a connection and why: the NAT rule, the application, the FTP ALG",
	About: "Names the NAT rule that translates the connection (with its line in the file) and the translated " +
		"tuple; the application its ports classify it as, by which [[port_mapping]] or built-in default, on the " +
		"port as it arrives or after translation; whether the FTP ALG inspects it; and, when no mapping classifies a " +
		"TCP connection to a port a [[nat.server]] publishes, the [[port_mapping]] that would make it ftp (an " +
		"FTP server published on a port of its own, as in the case). Other unclassified connections, such as an " +
		"inside client's to a server outside on 8080, get no suggestion.\n\n" +
		"PROTO is tcp, udp, icmp, sctp, dccp, udp-lite, gre, esp, ah or a protocol number (ports 0 for those without ports); SRC:PORT and DST:PORT are the connection's first packet " +
		"as it arrives at the NAT: a TCP SYN, a UDP datagram or an ICMP echo request, with TTL 64 unless --ttl says " +
		"otherwise. The side it arrives on is inferred from its source unless --from says it. A packet the NAT does " +
		"not forward but answers itself is reported with its answer: ping to a public address (echo reply), a SYN or " +
		"UDP to a closed port there (reset, port unreachable), a TTL that runs out (time exceeded).\n\n" +
		"Without --live it reads the -c file alone: no root, no daemon. With --live (implied by --socket or by a " +
		"SESSION-ID as fastnat show sessions lists it) it asks the running daemon, which explains by its running " +
		"configuration and adds the live session, its expectations and the FTP ALG's counters for it.\n\n" +
		"Exit 0 explained, 1 the daemon could not be asked, 2 bad arguments or an invalid configuration.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cf := addClientFlags(fs)
		live := fs.Bool("live", false, "ask the running daemon (over the control socket of -c FILE, or --socket)")
		var from string
		cli.ChoiceVar(fs, &from, "from", "auto", []string{"auto", "inside", "outside"},
			"the `SIDE` the connection arrives on (auto: inferred from the source)")
		asJSON := fs.Bool("json", false, "print the explanation as JSON")
		ttl := fs.Int("ttl", explain.DefaultTTL, "the first packet's `TTL` as it arrives, 0-255")
		return func(args []string, stdout, stderr io.Writer) int {
			ttlSet := false
			fs.Visit(func(f *flag.Flag) {
				*live = *live || f.Name == "socket"
				ttlSet = ttlSet || f.Name == "ttl"
			})
			q, err := explainQuery(args, from)
			if err != nil {
				return usageError(stderr, "explain", "%v", err)
			}
			if ttlSet {
				if *ttl < 0 || *ttl > 255 || q.Session != nil {
					return usageError(stderr, "explain", "--ttl is 0-255, for PROTO SRC:PORT DST:PORT")
				}
				t := uint8(*ttl)
				q.TTL = &t
			}
			*live = *live || q.Session != nil
			return runExplain(q, cf, *live, *asJSON, stdout, stderr)
		}
	},
}

// explainQuery parses explain's arguments: PROTO SRC:PORT DST:PORT, or a
// session id.
func explainQuery(args []string, from string) (control.ExplainQuery, error) {
	var q control.ExplainQuery
	switch len(args) {
	case 3:
		src, err := parseEndpoint(args[1])
		if err != nil {
			return q, err
		}
		dst, err := parseEndpoint(args[2])
		if err != nil {
			return q, err
		}
		q.Query = explain.Query{Proto: args[0], Src: src, Dst: dst, From: from}
	case 1:
		id, err := strconv.ParseUint(args[0], 10, 32)
		if err != nil {
			return q, fmt.Errorf("%q is not a session id (or give PROTO SRC:PORT DST:PORT)", args[0])
		}
		id32 := uint32(id)
		q.Session = &id32
	default:
		return q, errors.New("want PROTO SRC:PORT DST:PORT, or a SESSION-ID")
	}
	return q, nil
}

// parseEndpoint reads one of explain's SRC:PORT and DST:PORT, saying
// which argument is wrong (netip's error alone names neither).
func parseEndpoint(s string) (netip.AddrPort, error) {
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return a, fmt.Errorf("%q is not ADDRESS:PORT (port 0 for a protocol without ports, as in gre 10.77.0.5:0 192.0.2.7:0)", s)
	}
	return a, nil
}

// runExplain explains q from the -c file, or (live) by asking the daemon,
// and prints the answer: the logic is package explain's and the daemon's.
func runExplain(q control.ExplainQuery, cf clientFlags, live, asJSON bool, stdout, stderr io.Writer) int {
	if !live {
		cfg, ok := loadConfig("explain", *cf.file, stderr)
		if !ok {
			return exitUsage
		}
		r, err := explain.Explain(cfg, dataplane.NATRules(cfg), q.Query)
		if err != nil {
			fmt.Fprintf(stderr, "fastnat explain: %v\n", err)
			return exitUsage
		}
		if asJSON {
			return printJSON("explain", stdout, stderr, &r)
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
	if asJSON {
		return printJSON("explain", stdout, stderr, resp.Explain)
	}
	control.WriteExplain(stdout, resp.Explain)
	return exitOK
}
