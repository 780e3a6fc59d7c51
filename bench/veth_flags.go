package bench

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
)

// VethFlags defines the flags of `fastnat bench veth` on fs and returns the
// configuration they fill once fs is parsed. The caller sets
// FastnatBinary (the running executable) and Progress, then:
//
//	rep, err := bench.RunVeth(ctx, *cfg)
//	err = rep.WriteAll(stdout, cfg.JSON, cfg.Plot)
func VethFlags(fs *flag.FlagSet) *VethConfig {
	c := &VethConfig{
		DUTs: DefaultVethDUTs, Flows: DefaultVethFlows, Sizes: DefaultVethSizes,
		Duration: defaultVethDuration, Warmup: defaultVethWarmup, ProbeRate: defaultVethProbeRate,
		LatencyRate: defaultVethLatencyRate,
		GenCPU:      0, DUTCPU: 1, Seed: 1, Rounds: 1,
	}
	fs.Var((*stringList)(&c.DUTs), "dut", "devices under test, comma-separated: kernel, fastnat, none")
	fs.Var((*intList)(&c.Flows), "flows", "flow counts, comma-separated")
	fs.Var((*intList)(&c.Sizes), "sizes", "frame sizes on the wire (64 to 1518), comma-separated")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "measured time per case")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before each measurement")
	fs.Float64Var(&c.Rate, "rate", 0, "offered frames per second (0: as fast as the generator goes)")
	fs.Float64Var(&c.ProbeRate, "probe-rate", c.ProbeRate, "latency probes per second")
	fs.Float64Var(&c.LatencyRate, "latency-rate", c.LatencyRate, "light load in frames per second for the second latency measurement (-1: skip it)")
	fs.IntVar(&c.Rounds, "rounds", c.Rounds, "runs per case; the median is reported")
	fs.IntVar(&c.GenCPU, "gen-cpu", c.GenCPU, "CPU of the traffic generator (-1: any)")
	fs.IntVar(&c.DUTCPU, "dut-cpu", c.DUTCPU, "CPU the DUT's work is steered to (-1: any)")
	fs.StringVar(&c.FastnatBinary, "fastnat-bin", "", "fastnat executable to benchmark (default: this one)")
	fs.StringVar(&c.JSON, "json", "", "write the report as JSON to `file`")
	fs.StringVar(&c.Plot, "plot", "", "write a chart of delivered Mpps to `file` (.png)")
	return c
}

// stringList is a comma-separated flag value.
type stringList []string

func (l *stringList) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

func (l *stringList) Set(s string) error {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return fmt.Errorf("empty list")
	}
	*l = out
	return nil
}

// intList is a comma-separated flag value of integers; "64k" style
// suffixes k (×1024) are accepted for flow counts.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(s string) error {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mul := 1
		if rest, ok := strings.CutSuffix(strings.ToLower(f), "k"); ok {
			f, mul = rest, 1024
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 || v > 1<<30/mul {
			return fmt.Errorf("%q is not a count", f)
		}
		out = append(out, v*mul)
	}
	if len(out) == 0 {
		return fmt.Errorf("empty list")
	}
	*l = out
	return nil
}
