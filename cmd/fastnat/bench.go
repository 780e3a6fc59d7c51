package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fastnat/fastnat/bench"
	"github.com/fastnat/fastnat/internal/cli"
)

var benchCommand = &cli.Command{
	Name:    "bench",
	Summary: "run a benchmark harness: pipeline, flowtable, veth or tcp",
	About: "Each benchmark prints a table, the machine it ran on, and optionally writes the report as JSON " +
		"(--json) and a chart (--plot). Numbers on a shared or virtual machine are noisy: compare runs made " +
		"the same way on the same machine.",
	Subs: []*cli.Command{benchPipelineCommand, benchFlowtableCommand, benchVethCommand, benchTCPCommand},
}

var benchPipelineCommand = &cli.Command{
	Name:    "pipeline",
	Summary: "the in-memory pipeline on one core: ns per packet and Mpps over established sessions",
	About: "One worker on memory ports processes 64-byte (by default) UDP frames over sessions picked at " +
		"random, created before the measurement; new-session cost is measured apart. No kernel, no root. " +
		"--logging turns the NAT event log on, as [logging] does: every session and binding is recorded into " +
		"the worker's ring and drained by the event log's goroutine (into a sink that discards), so the " +
		"new-session rate shows what logging costs the worker.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cfg := bench.PipelineBenchConfig{}
		var size int
		cli.IntListVar(fs, &cfg.Flows, "flows", []int{1, 65536, 1048576}, 1, 1<<26, "flow counts, comma-separated (64k = 65536)")
		cli.IntVar(fs, &size, "size", 64, 64, 1518, "frame size on the wire, FCS included")
		cli.IntVar(fs, &cfg.Batch, "batch", 64, 1, 256, "rx burst size")
		cli.IntVar(fs, &cfg.Packets, "packets", 10_000_000, 1000, math.MaxInt32, "frames per case")
		fs.BoolVar(&cfg.Logging, "logging", false, "record the NAT's events, as [logging] does")
		out := addReportFlags(fs)
		return func(args []string, stdout, stderr io.Writer) int {
			cfg.FrameSize, cfg.Progress = size-4, stderr
			rep, err := bench.RunPipeline(cfg)
			if err != nil {
				fmt.Fprintln(stderr, "fastnat bench pipeline:", err)
				return exitFailure
			}
			return out.write(rep, stdout, stderr)
		}
	},
}

var benchFlowtableCommand = &cli.Command{
	Name:    "flowtable",
	Summary: "fastnat's flow table against xsync.Map and sync.Map: random lookups, ns and bytes per session",
	About: "Fills each table with the sessions (both keys of each) and times random lookup hits from " +
		"concurrent goroutines; reports ns per lookup and heap bytes per session.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cfg := bench.FlowtableBenchConfig{}
		cli.IntListVar(fs, &cfg.Sessions, "sessions", []int{1000000, 10000000}, 1, 1<<28, "table sizes, comma-separated")
		cli.IntListVar(fs, &cfg.Goroutines, "goroutines", []int{1, 2}, 1, 1024, "concurrent readers, comma-separated")
		cli.IntVar(fs, &cfg.Lookups, "lookups", 5_000_000, 1000, math.MaxInt32, "lookups per goroutine and case")
		out := addReportFlags(fs)
		return func(args []string, stdout, stderr io.Writer) int {
			cfg.Progress = stderr
			rep, err := bench.RunFlowtable(cfg)
			if err != nil {
				fmt.Fprintln(stderr, "fastnat bench flowtable:", err)
				return exitFailure
			}
			return out.write(rep, stdout, stderr)
		}
	},
}

var benchVethCommand = &cli.Command{
	Name:    "veth",
	Summary: "fastnat against the kernel's nftables NAT on veth, in namespaces it builds (root)",
	About: "Three namespaces per case; UDP from an inside host to an outside host through the router " +
		"namespace, translated by one nat outbound rule on each device under test; an AF_XDP generator on " +
		"--gen-cpu, the DUT's work on --dut-cpu. Reports delivered Mpps, loss, CPU per packet, new sessions " +
		"per second and latency (p50/p99 under load and at --latency-rate).",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cfg := bench.VethFlags(fs)
		return func(args []string, stdout, stderr io.Writer) int {
			if !defaultBinary("fastnat bench veth", &cfg.FastnatBinary, stderr) {
				return exitFailure
			}
			cfg.Progress = stderr
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rep, err := bench.RunVeth(ctx, *cfg)
			if err != nil {
				fmt.Fprintln(stderr, "fastnat bench veth:", err)
				if rep == nil {
					return exitFailure
				}
			}
			if err := rep.WriteAll(stdout, cfg.JSON, cfg.Plot); err != nil {
				fmt.Fprintln(stderr, "fastnat bench veth:", err)
				return exitFailure
			}
			return exitOK
		}
	},
}

var benchTCPCommand = &cli.Command{
	Name:    "tcp",
	Summary: "iperf3 TCP and UDP through fastnat and the kernel's nftables NAT on veth, in one run (root)",
	About: "One veth topology per device under test; an iperf3 server on the outside host, iperf3 clients on " +
		"the inside host sending out through each NAT's nat outbound rule: TCP with each --streams count and, " +
		"unless --udp-rate is 0, UDP. Reports Gbit/s received, fastnat's ratio to the kernel, TCP " +
		"retransmissions, UDP loss and how much of it the receiving host's own socket dropped (its " +
		"UdpRcvbufErrors), the DUT's CPU time and the frames the kernel dropped at fastnat's full rx " +
		"rings. Needs iperf3 (scripts/setup.sh installs it).",
	Flags: func(fs *flag.FlagSet) cli.Run {
		cfg := bench.TCPConfig{}
		cli.StringListVar(fs, &cfg.DUTs, "dut", []string{bench.DUTKernel, bench.DUTFastnat}, []string{bench.DUTKernel, bench.DUTFastnat, bench.DUTNone},
			"devices under test, comma-separated: kernel (nftables NAT), fastnat, none (plain forwarding)")
		cli.IntListVar(fs, &cfg.Streams, "streams", []int{1, 4, 100}, 1, 128, "parallel TCP streams per case, comma-separated")
		fs.StringVar(&cfg.UDPRate, "udp-rate", "2G", "iperf3 -b of the UDP case (0: no UDP case)")
		cli.IntVar(fs, &cfg.UDPSize, "udp-size", 1400, 64, 8900, "UDP datagram payload bytes")
		cli.DurationVar(fs, &cfg.Duration, "duration", 5*time.Second, time.Second, time.Hour, "iperf3 time per case")
		cli.IntVar(fs, &cfg.Rounds, "rounds", 1, 1, 100, "runs per case; the median is reported")
		fs.StringVar(&cfg.FastnatBinary, "fastnat-bin", "", "fastnat executable `FILE` to benchmark (default: this one)")
		out := addReportFlags(fs)
		return func(args []string, stdout, stderr io.Writer) int {
			if !defaultBinary("fastnat bench tcp", &cfg.FastnatBinary, stderr) {
				return exitFailure
			}
			cfg.Progress = stderr
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			rep, err := bench.RunTCP(ctx, cfg)
			if err != nil {
				fmt.Fprintln(stderr, "fastnat bench tcp:", err)
				if rep == nil || len(rep.Results) == 0 {
					return exitFailure
				}
			}
			return out.write(rep, stdout, stderr)
		}
	},
}

// defaultBinary sets *bin, the fastnat executable a benchmark runs, to
// this one when it is empty. It reports false, having printed why under
// cmd, when this executable cannot be found.
func defaultBinary(cmd string, bin *string, stderr io.Writer) bool {
	if *bin != "" {
		return true
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, cmd+":", err)
		return false
	}
	*bin = self
	return true
}

// report is what every benchmark report can do.
type report interface {
	WriteTable(io.Writer) error
	WriteJSON(string) error
	Plot(string) error
}

// reportFlags are --json and --plot of the pipeline and flowtable
// benchmarks.
type reportFlags struct{ json, plot *string }

func addReportFlags(fs *flag.FlagSet) reportFlags {
	return reportFlags{
		json: fs.String("json", "", "write the report as JSON to `FILE`"),
		plot: fs.String("plot", "", "write a chart to `FILE` (.png)"),
	}
}

// write prints r and writes its JSON and chart when asked.
func (f reportFlags) write(r report, stdout, stderr io.Writer) int {
	if err := r.WriteTable(stdout); err != nil {
		return exitFailure
	}
	if *f.json != "" {
		if err := r.WriteJSON(*f.json); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
	}
	if *f.plot != "" {
		if err := r.Plot(*f.plot); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
	}
	return exitOK
}
