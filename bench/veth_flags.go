package bench

import (
	"flag"
	"time"

	"github.com/fastnat/fastnat/internal/cli"
)

// VethMinDuration is the shortest measured window the command accepts:
// frames still queued in the generator, the veths and the DUT when the
// window opens or closes count on one side and not the other, and below a
// second that error shows (more delivered than offered). Tests of the
// harness itself run shorter windows through VethConfig.
const VethMinDuration = time.Second

// VethFlags defines the flags of `fastnat bench veth` on fs and returns the
// configuration they fill once fs is parsed; a value out of range is
// refused while parsing. The caller sets FastnatBinary (the running
// executable) and Progress, then:
//
//	rep, err := bench.RunVeth(ctx, *cfg)
//	err = rep.WriteAll(stdout, cfg.JSON, cfg.Plot)
func VethFlags(fs *flag.FlagSet) *VethConfig {
	c := &VethConfig{Seed: 1}
	cli.StringListVar(fs, &c.DUTs, "dut", DefaultVethDUTs, []string{DUTKernel, DUTFastnat, DUTNone},
		"devices under test, comma-separated: kernel (nftables NAT), fastnat, none (plain forwarding)")
	cli.IntListVar(fs, &c.Flows, "flows", DefaultVethFlows, 1, vethMaxFlows, "flow counts, comma-separated (64k = 65536)")
	cli.IntListVar(fs, &c.Sizes, "sizes", DefaultVethSizes, vethMinFrame, vethMaxFrame, "frame sizes on the wire, FCS included, comma-separated")
	cli.DurationVar(fs, &c.Duration, "duration", defaultVethDuration, VethMinDuration, time.Hour, "measured time per case")
	cli.DurationVar(fs, &c.Warmup, "warmup", defaultVethWarmup, 100*time.Millisecond, time.Hour, "load before each measurement")
	cli.FloatVar(fs, &c.Rate, "rate", 0, 0, 1e9, "offered frames per second (0: as fast as the generator goes)")
	cli.FloatVar(fs, &c.ProbeRate, "probe-rate", defaultVethProbeRate, 1, 1e6, "latency probes per second")
	cli.FloatVar(fs, &c.LatencyRate, "latency-rate", defaultVethLatencyRate, -1, 1e9,
		"light load in frames per second for the second latency measurement (-1: skip it)")
	cli.IntVar(fs, &c.Rounds, "rounds", 1, 1, 1000, "runs per case; the median is reported")
	cli.IntVar(fs, &c.GenCPU, "gen-cpu", 0, -1, 8191, "CPU of the traffic generator (-1: any)")
	cli.IntVar(fs, &c.DUTCPU, "dut-cpu", 1, -1, 8191, "CPU the DUT's work is steered to (-1: any)")
	fs.StringVar(&c.FastnatBinary, "fastnat-bin", "", "fastnat executable `FILE` to benchmark (default: this one)")
	fs.StringVar(&c.JSON, "json", "", "write the report as JSON to `FILE`")
	fs.StringVar(&c.Plot, "plot", "", "write a chart of delivered Mpps to `FILE` (.png)")
	return c
}
