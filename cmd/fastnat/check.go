package main

import (
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/cli"
	"github.com/fastnat/fastnat/portmap"
)

var checkCommand = &cli.Command{
	Name: "check", Args: "[FILE]", MaxArgs: 1,
	Summary: "validate a configuration file; print the interfaces, NAT rules and effective port mappings",
	About: "Prints `ok: FILE` and then the interfaces, the dataplane settings, the NAT rules (outbound and " +
		"server) and the effective port-mapping table: every mapping left after overwrites and every " +
		"well-known default, in the order they are consulted, each with its source. Warnings go to stderr " +
		"as FILE:LINE:COL: warning: .... An invalid file prints every problem found, one per line as " +
		"FILE:LINE:COL: key: what is wrong; allowed: ..., and exits 2. The file may be given with -c or as " +
		"the argument.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		file := fs.String("c", "", "configuration `FILE` to check")
		return func(args []string, stdout, stderr io.Writer) int {
			switch {
			case *file == "" && len(args) == 1:
				*file = args[0]
			case *file == "" || len(args) > 0:
				return usageError(stderr, "check", "want one file, with -c or as the argument")
			}
			return checkFile(*file, stdout, stderr)
		}
	},
}

// checkFile validates file, prints the effective configuration on stdout
// and warnings on stderr; exit 0, or 2 with every problem as
// FILE:LINE:COL: message.
func checkFile(file string, stdout, stderr io.Writer) int {
	cfg, ok := loadConfig("check", file, stderr)
	if !ok {
		return exitUsage
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "%s:%d:%d: warning: %s\n", w.File, w.Line, w.Col, w.Msg)
	}
	fmt.Fprintf(stdout, "ok: %s\n", file)
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
	fmt.Fprintf(tw, "  flows max %d; timeouts tcp_syn %s, tcp_established %s, tcp_transitory %s, tcp_closed %s, udp %s, icmp %s, other %s, expectation %s\n",
		c.Flows.Max, config.FormatDuration(t.TCPSyn), config.FormatDuration(t.TCPEstablished), config.FormatDuration(t.TCPTransitory), config.FormatDuration(t.TCPClosed),
		config.FormatDuration(t.UDP), config.FormatDuration(t.ICMP), config.FormatDuration(t.Other), config.FormatDuration(t.Expectation))
	ftp := "off"
	if c.ALG.FTP.Enabled {
		third := "refused"
		if c.ALG.FTP.AllowThirdParty {
			third = "allowed"
		}
		ftp = fmt.Sprintf("on (third-party addresses %s, at most %d expectations per session)", third, c.ALG.FTP.MaxExpectations)
	}
	fmt.Fprintf(tw, "  ftp alg %s; metrics %s; control socket %s\n", ftp, orDash(c.Metrics.Listen), orDash(c.Control.Socket))
	icmp := "not rate-limited"
	if c.ICMP.RateLimit > 0 {
		icmp = fmt.Sprintf("one per %s per destination after a burst of %d", c.ICMP.RateLimit, c.ICMP.Burst)
	}
	mss := "off"
	switch {
	case c.TCP.MSSClamp == config.MSSClampMTU:
		mss = "to the interfaces' MTU less 40"
	case c.TCP.MSSClamp > 0:
		mss = fmt.Sprint(c.TCP.MSSClamp)
	}
	fmt.Fprintf(tw, "  icmp errors %s; tcp mss clamp %s\n", icmp, mss)

	tw.Flush()
	control.WriteNATRules(w, control.ListRules(c, time.Time{}))

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
