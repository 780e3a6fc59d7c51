package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/portmap"
)

// cmdCheck is "fastnat check -c FILE": validate, print the effective
// configuration on stdout and warnings on stderr; exit 0, or 2 with every
// problem as FILE:LINE:COL: message.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "configuration `FILE` to check")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: fastnat check -c FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *file == "" && fs.NArg() == 1 {
		*file = fs.Arg(0)
	} else if *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, ok := loadConfig("check", *file, stderr)
	if !ok {
		return exitUsage
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s:%d:%d: warning: %s\n", w.File, w.Line, w.Col, w.Msg)
	}
	fmt.Fprintf(stdout, "ok: %s\n", *file)
	printConfig(stdout, cfg)
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printConfig writes the effective configuration in readable tables.
func printConfig(w io.Writer, c *config.Config) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string) {
		tw.Flush()
		fmt.Fprintf(w, "\n%s\n", title)
	}

	section("interfaces")
	fmt.Fprintln(tw, "  NAME\tROLE\tQUEUES\tGATEWAY\tLINE")
	for _, it := range c.Interfaces {
		queues := "all"
		if it.Queues != nil {
			queues = joinInts(it.Queues)
		}
		gw := "-"
		if it.Gateway.IsValid() {
			gw = it.Gateway.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", it.Name, it.Role, queues, gw, it.Line)
	}

	section("dataplane")
	d := c.Dataplane
	workers := "one per queue"
	if d.Workers > 0 {
		workers = fmt.Sprint(d.Workers)
	}
	if d.CPUs != nil {
		workers += " on cpus " + joinInts(d.CPUs)
	}
	fmt.Fprintf(tw, "  workers %s, poll %s, batch %d, %d frames of %d bytes per queue, xdp %s\n",
		workers, d.Poll, d.Batch, d.FramesPerQueue, d.FrameSize, d.XDPMode)
	t := c.Timeouts
	fmt.Fprintf(tw, "  flows max %d; timeouts tcp_syn %s, tcp_established %s, tcp_transitory %s, udp %s, icmp %s, expectation %s\n",
		c.Flows.Max, t.TCPSyn, t.TCPEstablished, t.TCPTransitory, t.UDP, t.ICMP, t.Expectation)
	ftp := "off"
	if c.ALG.FTP.Enabled {
		third := "refused"
		if c.ALG.FTP.AllowThirdParty {
			third = "allowed"
		}
		ftp = fmt.Sprintf("on (third-party addresses %s, at most %d expectations per session)", third, c.ALG.FTP.MaxExpectations)
	}
	fmt.Fprintf(tw, "  ftp alg %s; metrics %s; control socket %s\n", ftp, orDash(c.Metrics.Listen), orDash(c.Control.Socket))

	section("nat outbound (the first rule whose inside prefix holds the source applies)")
	if len(c.NAT.Outbound) == 0 {
		fmt.Fprintln(tw, "  none")
	} else {
		fmt.Fprintln(tw, "  RULE\tINSIDE\tPOOL\tPORTS\tMAPPING\tLINE")
	}
	for i, o := range c.NAT.Outbound {
		inside := make([]string, len(o.Inside))
		for k, p := range o.Inside {
			inside[k] = p.String()
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d-%d\t%s\t%d\n", i, strings.Join(inside, ","), poolString(o.Pool),
			o.Ports.Lo, o.Ports.Hi, allocation(o), o.Line)
	}

	section("nat server")
	if len(c.NAT.Server) == 0 {
		fmt.Fprintln(tw, "  none")
	} else {
		fmt.Fprintln(tw, "  RULE\tPROTOCOL\tPUBLIC\tINSIDE\tLINE")
	}
	for i, s := range c.NAT.Server {
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%d\n", i, portmap.ProtoName(s.Proto), s.Public, s.Inside, s.Line)
	}

	section("logging")
	tw.Flush()
	printLogging(w, c)

	section("port mappings (for each port the first matching line applies; defaults come last)")
	fmt.Fprintln(tw, "  APPLICATION\tPORT\tPROTOCOL\tSCOPE\tSOURCE")
	for _, e := range c.PortMap.Entries() {
		scope := "any"
		if e.Scope.IsValid() {
			scope = e.Scope.String()
		}
		src := "default"
		if !e.Default() {
			src = fmt.Sprintf("port_mapping[%d], line %d", e.Mapping, c.PortMappingLines[e.Mapping])
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", e.App, e.Port, portmap.ProtoName(e.Proto), scope, src)
	}
	tw.Flush()
}

// poolString writes a pool as ranges of consecutive addresses.
func poolString(pool []netip.Addr) string {
	var parts []string
	for i := 0; i < len(pool); {
		j := i
		for j+1 < len(pool) && pool[j].Next() == pool[j+1] {
			j++
		}
		if i == j {
			parts = append(parts, pool[i].String())
		} else {
			parts = append(parts, pool[i].String()+"-"+pool[j].String())
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
