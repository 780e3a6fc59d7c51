package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/fastnat/fastnat/bench"
)

// cmdBench is "fastnat bench pipeline|flowtable|veth": the benchmark harnesses.
// Each prints a table, and writes JSON (--json) and a chart (--plot).
func cmdBench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: fastnat bench pipeline|flowtable|veth [flags]   (fastnat bench KIND -h for the flags)")
		return exitUsage
	}
	switch args[0] {
	case "pipeline":
		return benchPipeline(args[1:], stdout, stderr)
	case "flowtable":
		return benchFlowtable(args[1:], stdout, stderr)
	case "veth":
		return benchVeth(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "fastnat bench: unknown benchmark %q (want pipeline, flowtable or veth)\n", args[0])
	return exitUsage
}

func benchPipeline(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flows := fs.String("flows", "1,65536,1048576", "flow counts, comma-separated")
	size := fs.Int("size", 64, "frame size on the wire, FCS included (64 to 1518)")
	batch := fs.Int("batch", 64, "rx burst size")
	packets := fs.Int("packets", 10_000_000, "frames per case")
	jsonPath := fs.String("json", "", "write the report as JSON to `file`")
	plotPath := fs.String("plot", "", "write a chart to `file` (.png)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg := bench.PipelineBenchConfig{FrameSize: *size - 4, Batch: *batch, Packets: *packets, Progress: stderr}
	var err error
	if cfg.Flows, err = intList(*flows); err != nil {
		fmt.Fprintln(stderr, "fastnat bench pipeline: -flows:", err)
		return exitUsage
	}
	rep, err := bench.RunPipeline(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "fastnat bench pipeline:", err)
		return exitFailure
	}
	return writeReport(rep, *jsonPath, *plotPath, stdout, stderr)
}

// report is what every benchmark report can do.
type report interface {
	WriteTable(io.Writer) error
	WriteJSON(string) error
	Plot(string) error
}

// writeReport prints r and writes its JSON and chart when asked.
func writeReport(r report, jsonPath, plotPath string, stdout, stderr io.Writer) int {
	if err := r.WriteTable(stdout); err != nil {
		return exitFailure
	}
	if jsonPath != "" {
		if err := r.WriteJSON(jsonPath); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
	}
	if plotPath != "" {
		if err := r.Plot(plotPath); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
	}
	return exitOK
}

// intList parses "1,2,3" into positive integers.
func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func benchFlowtable(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench flowtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sessions := fs.String("sessions", "1000000,10000000", "table sizes, comma-separated")
	goroutines := fs.String("goroutines", "1,2", "concurrent readers, comma-separated")
	lookups := fs.Int("lookups", 5_000_000, "lookups per goroutine and case")
	jsonPath := fs.String("json", "", "write the report as JSON to `file`")
	plotPath := fs.String("plot", "", "write a chart to `file` (.png)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	cfg := bench.FlowtableBenchConfig{Lookups: *lookups, Progress: stderr}
	var err error
	if cfg.Sessions, err = intList(*sessions); err != nil {
		fmt.Fprintln(stderr, "fastnat bench flowtable: -sessions:", err)
		return exitUsage
	}
	if cfg.Goroutines, err = intList(*goroutines); err != nil {
		fmt.Fprintln(stderr, "fastnat bench flowtable: -goroutines:", err)
		return exitUsage
	}
	rep, err := bench.RunFlowtable(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "fastnat bench flowtable:", err)
		return exitFailure
	}
	return writeReport(rep, *jsonPath, *plotPath, stdout, stderr)
}

func benchVeth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench veth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := bench.VethFlags(fs)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if cfg.FastnatBinary == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(stderr, "fastnat bench veth:", err)
			return exitFailure
		}
		cfg.FastnatBinary = self
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
