package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// Sentinel errors of the veth benchmark.
var (
	// ErrVethConfig reports a VethConfig that cannot be run.
	ErrVethConfig = errors.New("invalid veth benchmark configuration")
	// ErrNoDUT reports a DUT that could not be started (no fastnat
	// binary, `fastnat run` failing).
	ErrNoDUT = errors.New("device under test unavailable")
	// ErrNoPath reports a DUT that started but delivered no probe to the
	// client.
	ErrNoPath = errors.New("no traffic crosses the device under test")
)

// VethConfig describes a `fastnat bench veth` run: every combination of
// DUTs, flow counts and frame sizes is one case.
type VethConfig struct {
	// DUTs to compare, by name: "kernel", "fastnat", "none" (see
	// KernelDUT, FastnatDUT, ForwardDUT). Default: kernel and fastnat.
	DUTs []string
	// FastnatBinary is the fastnat executable FastnatDUT runs.
	FastnatBinary string
	// CustomDUTs are DUTs beyond the built-in ones; DUTs names them by
	// DUT.Name, and a custom DUT takes precedence over a built-in one of
	// the same name.
	CustomDUTs []DUT
	// Flows lists the flow counts (default 1 and 65,536).
	Flows []int
	// Sizes lists the frame sizes on the wire with FCS, 64 to 1518
	// (default 64, 512 and 1518).
	Sizes []int
	// Duration is each case's measured window (default 5 s) and Warmup
	// the load before it (default 1 s).
	Duration, Warmup time.Duration
	// Rate is the offered load in frames per second; 0 (the default)
	// offers as much as the generator can send.
	Rate float64
	// ProbeRate is the number of latency probes per second (default 500).
	ProbeRate float64
	// LatencyRate is the fixed load of the second latency measurement, in
	// frames per second (default 100,000); negative skips it. It runs
	// after the window for min(Duration, 2 s).
	LatencyRate float64
	// GenCPU is the CPU the generator runs on and DUTCPU the one the
	// DUT's work is steered to; -1 leaves placement to the kernel. Both
	// zero (the zero value) means 0 and 1, or 0 and -1 on one CPU.
	GenCPU, DUTCPU int
	// Rounds is how many times each case runs (default 1); the report
	// keeps the round with the median delivered rate. The DUTs take turns
	// within a round, in alternating order.
	Rounds int
	// Seed orders the flows (default 1).
	Seed uint64
	// JSON and Plot are output paths for WriteAll; "" skips the output.
	JSON, Plot string
	// Progress receives a line per case; nil discards them.
	Progress io.Writer
}

// Defaults of VethConfig.
var (
	DefaultVethFlows = []int{1, 65536}
	DefaultVethSizes = []int{64, 512, 1518}
	DefaultVethDUTs  = []string{DUTKernel, DUTFastnat}
)

const (
	defaultVethDuration  = 5 * time.Second
	defaultVethWarmup    = time.Second
	defaultVethProbeRate = 500
	// defaultVethLatencyRate is well below what either DUT forwards on
	// the slowest machine fastnat targets.
	defaultVethLatencyRate = 100_000
	// vethMaxLatencyWindow caps the light-load latency phase.
	vethMaxLatencyWindow = 2 * time.Second
	// vethDrain is how long the light-load phase waits for the queues of
	// the full load to drain before it measures.
	vethDrain = 200 * time.Millisecond
	// vethInFlight is how long to wait for the last probes after the
	// generator stops.
	vethInFlight = 50 * time.Millisecond
	// vethPathTimeout bounds the wait for the first probe through a DUT.
	vethPathTimeout = 5 * time.Second
	// vethQuiet is how long the sink's count must stay unchanged before
	// the session-creation pass counts as finished.
	vethQuiet = 100 * time.Millisecond
)

// withDefaults fills the zero fields and checks the rest.
func (c VethConfig) withDefaults() (VethConfig, error) {
	if len(c.DUTs) == 0 {
		c.DUTs = DefaultVethDUTs
	}
	if len(c.Flows) == 0 {
		c.Flows = DefaultVethFlows
	}
	if len(c.Sizes) == 0 {
		c.Sizes = DefaultVethSizes
	}
	if c.Duration == 0 {
		c.Duration = defaultVethDuration
	}
	if c.Warmup == 0 {
		c.Warmup = defaultVethWarmup
	}
	if c.ProbeRate == 0 {
		c.ProbeRate = defaultVethProbeRate
	}
	if c.LatencyRate == 0 {
		c.LatencyRate = defaultVethLatencyRate
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Rounds == 0 {
		c.Rounds = 1
	}
	if c.GenCPU == 0 && c.DUTCPU == 0 {
		c.DUTCPU = 1
		if runtime.NumCPU() < 2 {
			c.DUTCPU = -1
		}
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	for _, f := range c.Flows {
		if f < 1 || f > vethMaxFlows {
			return c, fmt.Errorf("%d flows: %w (want 1 to %d)", f, ErrVethConfig, vethMaxFlows)
		}
	}
	for _, s := range c.Sizes {
		if s < vethMinFrame || s > vethMaxFrame {
			return c, fmt.Errorf("frame size %d: %w (want %d to %d)", s, ErrVethConfig, vethMinFrame, vethMaxFrame)
		}
	}
	for _, d := range c.DUTs {
		if _, err := c.dut(d); err != nil {
			return c, err
		}
	}
	switch {
	case c.Rounds < 0:
		return c, fmt.Errorf("%d rounds: %w", c.Rounds, ErrVethConfig)
	case c.Duration < 0 || c.Warmup < 0:
		return c, fmt.Errorf("duration %v, warm-up %v: %w", c.Duration, c.Warmup, ErrVethConfig)
	case c.Rate < 0 || c.ProbeRate < 0:
		return c, fmt.Errorf("rate %v, probe rate %v: %w", c.Rate, c.ProbeRate, ErrVethConfig)
	case c.GenCPU < -1 || c.GenCPU >= runtime.NumCPU() || c.DUTCPU < -1 || c.DUTCPU >= runtime.NumCPU():
		return c, fmt.Errorf("generator cpu %d, dut cpu %d: %w (this machine has %d)", c.GenCPU, c.DUTCPU, ErrVethConfig, runtime.NumCPU())
	case c.GenCPU >= 0 && c.GenCPU == c.DUTCPU:
		return c, fmt.Errorf("generator and dut both on cpu %d: %w", c.GenCPU, ErrVethConfig)
	}
	return c, nil
}

// dut resolves a DUT name.
func (c VethConfig) dut(name string) (DUT, error) {
	for _, d := range c.CustomDUTs {
		if d.Name == name && d.Start != nil {
			return d, nil
		}
	}
	switch name {
	case DUTKernel:
		return KernelDUT(), nil
	case DUTNone:
		return ForwardDUT(), nil
	case DUTFastnat:
		return FastnatDUT(c.FastnatBinary), nil
	}
	return DUT{}, fmt.Errorf("dut %q: %w (want kernel, fastnat, none or a custom DUT)", name, ErrVethConfig)
}

// VethResult is one case's measurement.
type VethResult struct {
	DUT       string `json:"dut"`
	Flows     int    `json:"flows"`
	FrameSize int    `json:"frame_size"` // on the wire, with FCS

	// OfferedPPS is what the generator's socket handed to the kernel per
	// second in the window, DeliveredPPS what the sink counted from the
	// expected source; Loss is 1 − delivered/offered.
	OfferedPPS   float64 `json:"offered_pps"`
	DeliveredPPS float64 `json:"delivered_pps"`
	DeliveredBPS float64 `json:"delivered_bps"` // bits per second, frames without FCS
	Loss         float64 `json:"loss"`
	// GeneratorBound says the DUT lost (almost) nothing: the generator,
	// not the DUT, set the rate, and DeliveredPPS is a lower bound of
	// what the DUT can do.
	GeneratorBound bool `json:"generator_bound"`
	// Untranslated counts frames that reached the sink with another
	// source address than the DUT's expected one (should be 0).
	Untranslated uint64 `json:"untranslated"`

	// CPUPerPacket is the DUT's CPU time per delivered packet (see the
	// package doc for what is counted); CPUBusy the busy fraction of each
	// CPU over the window; ProcessCPUPerPacket the DUT process's own CPU
	// time per packet (fastnat only).
	CPUPerPacket        time.Duration `json:"cpu_ns_per_packet"`
	CPUBusy             []float64     `json:"cpu_busy"`
	ProcessCPUPerPacket time.Duration `json:"process_cpu_ns_per_packet,omitempty"`

	// NewSessionsPerSec is the rate at which first packets of new flows
	// came through while the generator sent every flow once, as fast as it
	// could (OfferedSessionsPerSec); 0 for cases with fewer than
	// vethMinSessionFlows flows.
	NewSessionsPerSec     float64 `json:"new_sessions_per_s"`
	OfferedSessionsPerSec float64 `json:"offered_sessions_per_s"`
	SessionsFirstPass     uint64  `json:"sessions_first_pass"` // flows whose first packet came through

	// Latency is measured twice: at the load of the window (with the
	// queues in front of the bottleneck full when the DUT is saturated),
	// and at LatencyRate, a fixed load below every DUT's capacity, where
	// it shows the DUT's own delay.
	LatencyAtLoad VethLatency `json:"latency_at_load"`
	LatencyAtRate VethLatency `json:"latency_at_rate"`
	LatencyRate   float64     `json:"latency_rate_pps"`

	Window time.Duration `json:"window_ns"`
	// Rounds is how many times the case ran, FailedRounds how many of
	// those failed; DeliveredMin and DeliveredMax are the spread of the
	// successful ones (this result is the median).
	Rounds       int     `json:"rounds"`
	FailedRounds int     `json:"failed_rounds,omitempty"`
	DeliveredMin float64 `json:"delivered_pps_min"`
	DeliveredMax float64 `json:"delivered_pps_max"`
	// Steal is the CPU time the hypervisor took from this virtual machine
	// during the window, in CPUs.
	Steal float64 `json:"steal"`
	// OtherCPU is the CPU time other processes on the machine used during
	// the window, in CPUs (0.5: half a CPU): such work skews every number.
	// It is the CPUs' busy time less the harness's, the DUT's and the
	// kernel threads', so processes that came and went count too.
	OtherCPU float64 `json:"other_cpu"`
	// Error is why the case has no numbers; empty when it ran.
	Error string `json:"error,omitempty"`
}

// VethLatency is the one-way latency of the probes sent in a window, from
// the generator's stamp to the client kernel's receive stamp.
type VethLatency struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Sent uint64        `json:"probes_sent"`
	// Received counts the probes sent in the window that arrived.
	Received int `json:"probes_received"`
}

// newVethLatency summarises the sorted latencies of the probes received
// out of sent.
func newVethLatency(sorted []time.Duration, sent uint64) VethLatency {
	l := VethLatency{Sent: sent, Received: len(sorted),
		P50: percentile(sorted, 0.50), P90: percentile(sorted, 0.90), P99: percentile(sorted, 0.99)}
	if len(sorted) > 0 {
		l.Max = sorted[len(sorted)-1]
	}
	return l
}

// vethBoundLoss is the loss below which a DUT counts as having kept up
// with the generator.
const vethBoundLoss = 0.01

// vethMinSessionFlows is the smallest flow count whose first pass says
// something about the session creation rate.
const vethMinSessionFlows = 1024

// RunVeth runs every case of cfg and returns the report. A case that
// fails (a DUT that does not start or forwards nothing) is reported with
// its error and the run goes on; errors about the whole run (not root,
// missing tools, bad configuration) end it.
func RunVeth(ctx context.Context, cfg VethConfig) (*VethReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("bench veth: %w", testnet.ErrNotRoot)
	}
	if err := testnet.CheckTools("ip", "ethtool", "sysctl", "nft", "sh"); err != nil {
		return nil, fmt.Errorf("bench veth: %w", err)
	}
	thr, err := newVethThread(cfg.GenCPU)
	if err != nil {
		return nil, err
	}
	defer thr.close()
	rep := &VethReport{Machine: ThisMachine(), Started: time.Now().UTC(), Settings: cfg.settings()}
	total := len(cfg.Flows) * len(cfg.Sizes) * len(cfg.DUTs) * cfg.Rounds
	i := 0
	for _, flows := range cfg.Flows {
		for _, size := range cfg.Sizes {
			runs := map[string][]VethResult{}
			for round := range cfg.Rounds {
				// Alternate the order round by round, so that a drift in
				// the machine's state hits every DUT alike.
				order := slices.Clone(cfg.DUTs)
				if round%2 == 1 {
					slices.Reverse(order)
				}
				for _, name := range order {
					if err := ctx.Err(); err != nil {
						return rep, err
					}
					i++
					dut, _ := cfg.dut(name)
					fmt.Fprintf(cfg.Progress, "[%d/%d] %s, %d flows, %d-byte frames", i, total, name, flows, size)
					if cfg.Rounds > 1 {
						fmt.Fprintf(cfg.Progress, ", round %d/%d", round+1, cfg.Rounds)
					}
					fmt.Fprint(cfg.Progress, ": ")
					start := time.Now()
					res, err := runVethCase(ctx, cfg, thr, dut, flows, size)
					if err != nil {
						if ctx.Err() != nil {
							return rep, ctx.Err()
						}
						res.Error = err.Error()
						fmt.Fprintf(cfg.Progress, "failed: %v\n", err)
					} else {
						fmt.Fprintf(cfg.Progress, "%s (%.1fs)\n", res.summary(), time.Since(start).Seconds())
					}
					runs[name] = append(runs[name], res)
				}
			}
			for _, name := range cfg.DUTs {
				rep.Results = append(rep.Results, medianRun(runs[name]))
			}
		}
	}
	rep.Finished = time.Now().UTC()
	return rep, nil
}

// medianRun returns the round with the median delivered rate (the lower
// of the two middle ones for an even count), with the spread of all
// successful rounds; the first failure if no round succeeded.
func medianRun(runs []VethResult) VethResult {
	var ok []VethResult
	for _, r := range runs {
		if r.Error == "" {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		r := runs[0]
		r.Rounds, r.FailedRounds = len(runs), len(runs)
		return r
	}
	slices.SortFunc(ok, func(a, b VethResult) int { return cmp.Compare(a.DeliveredPPS, b.DeliveredPPS) })
	m := ok[(len(ok)-1)/2]
	m.Rounds, m.FailedRounds = len(runs), len(runs)-len(ok)
	m.DeliveredMin, m.DeliveredMax = ok[0].DeliveredPPS, ok[len(ok)-1].DeliveredPPS
	return m
}

// summary is the result in one progress line.
func (r VethResult) summary() string {
	s := fmt.Sprintf("%.3f Mpps delivered of %.3f offered (loss %.1f%%), %v CPU/pkt, latency p50/p99 %v/%v at load, %v/%v at %.0f kpps",
		r.DeliveredPPS/1e6, r.OfferedPPS/1e6, 100*r.Loss, roundDur(r.CPUPerPacket),
		roundDur(r.LatencyAtLoad.P50), roundDur(r.LatencyAtLoad.P99),
		roundDur(r.LatencyAtRate.P50), roundDur(r.LatencyAtRate.P99), r.LatencyRate/1e3)
	if r.NewSessionsPerSec > 0 {
		s += fmt.Sprintf(", %.0f new sessions/s", r.NewSessionsPerSec)
	}
	if r.Untranslated > 0 {
		s += fmt.Sprintf(", %d UNTRANSLATED", r.Untranslated)
	}
	if r.OtherCPU > vethOtherCPUWarn {
		s += fmt.Sprintf(" [other processes used %.0f%% of a CPU]", 100*r.OtherCPU)
	}
	if r.Steal > vethOtherCPUWarn {
		s += fmt.Sprintf(" [the hypervisor stole %.0f%% of a CPU]", 100*r.Steal)
	}
	return s
}

// fill computes the result from the window's two snapshots and the
// probes' latencies.
func (r *VethResult) fill(cfg VethConfig, s0, s1 vethSnapshot, lat []time.Duration) {
	dt := s1.at.Sub(s0.at)
	r.Window = dt
	// Probes replace normal frames in the stream and reach the client's
	// socket, not the counters: they are not part of the offered load.
	offered := s1.completed - s0.completed
	offered -= min(offered, uint64(s1.probes-s0.probes))
	good := s1.sink.Good - s0.sink.Good
	r.OfferedPPS = float64(offered) / dt.Seconds()
	r.DeliveredPPS = float64(good) / dt.Seconds()
	r.DeliveredBPS = 8 * float64(s1.sink.GoodBytes-s0.sink.GoodBytes) / dt.Seconds()
	if offered > 0 && good < offered {
		r.Loss = 1 - float64(good)/float64(offered)
	}
	r.GeneratorBound = good > 0 && r.Loss < vethBoundLoss
	r.Untranslated = (s1.sink.All - s0.sink.All) - good
	var dutTicks, steal, busy uint64
	r.CPUBusy = make([]float64, len(s1.cpus))
	for c := range s1.cpus {
		if c >= len(s0.cpus) {
			break
		}
		d := s1.cpus[c].sub(s0.cpus[c])
		steal += d.Steal
		busy += d.busy()
		if all := d.busy() + d.Idle + d.IOWait; all > 0 {
			r.CPUBusy[c] = float64(d.busy()) / float64(all)
		}
		if c == cfg.GenCPU {
			// The generator's CPU: only interrupt work counts, the
			// router's receive processing that runs where a packet
			// arrives; its user and system time is the generator's.
			dutTicks += d.IRQ + d.SoftIRQ
		} else {
			dutTicks += d.busy()
		}
	}
	if good > 0 {
		r.CPUPerPacket = ticks(dutTicks) / time.Duration(good)
		if s1.process > 0 {
			r.ProcessCPUPerPacket = (s1.process - s0.process) / time.Duration(good)
		}
	}
	known := otherTicks(s0.known, s1.known)
	r.OtherCPU = ticks(busy-min(busy, known)).Seconds() / dt.Seconds()
	r.Steal = ticks(steal).Seconds() / dt.Seconds()
	r.LatencyAtLoad = newVethLatency(lat, uint64(s1.probes-s0.probes))
}

// waitFor polls cond every 5 ms until it holds (true), d passes or ctx
// ends (false).
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// sleepCtx sleeps for d; false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
