package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// VethGoal is the target of the fast-path work (issue 12; 1.5 before
// it): fastnat delivers at least this multiple of the kernel's packets
// per second in every case.
const VethGoal = 2.0

// vethOtherCPUWarn is the share of a CPU other processes may use during a
// measurement before the table warns.
const vethOtherCPUWarn = 0.05

// VethReport is the outcome of RunVeth: where it ran, how, and one result
// per case in run order.
type VethReport struct {
	Machine  Machine       `json:"machine"`
	Settings VethSettings  `json:"settings"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Results  []VethResult  `json:"results"`
	Ratios   []VethRatio   `json:"ratios"` // filled by Compare
	Goal     *VethGoalInfo `json:"goal,omitempty"`
}

// VethSettings are the parameters a report was measured with.
type VethSettings struct {
	DUTs      []string `json:"duts"`
	Flows     []int    `json:"flows"`
	Sizes     []int    `json:"sizes"`
	Duration  string   `json:"duration"`
	Warmup    string   `json:"warmup"`
	Rate      float64  `json:"rate_pps"` // 0: as fast as the generator goes
	ProbeRate float64  `json:"probe_rate"`
	// LatencyRate is the light load of the second latency measurement.
	LatencyRate float64 `json:"latency_rate_pps"`
	Rounds      int     `json:"rounds"`
	GenCPU      int     `json:"generator_cpu"`
	DUTCPU      int     `json:"dut_cpu"`
}

func (c VethConfig) settings() VethSettings {
	return VethSettings{DUTs: c.DUTs, Flows: c.Flows, Sizes: c.Sizes,
		Duration: c.Duration.String(), Warmup: c.Warmup.String(), Rate: c.Rate,
		ProbeRate: c.ProbeRate, LatencyRate: c.LatencyRate, Rounds: c.Rounds, GenCPU: c.GenCPU, DUTCPU: c.DUTCPU}
}

// VethRatio compares one DUT with the kernel in one case (flows, size).
type VethRatio struct {
	DUT       string  `json:"dut"`
	Flows     int     `json:"flows"`
	FrameSize int     `json:"frame_size"`
	PPS       float64 `json:"pps"`                    // delivered pps ÷ the kernel's
	CPU       float64 `json:"cpu_per_packet"`         // CPU per packet ÷ the kernel's
	Sessions  float64 `json:"new_sessions,omitempty"` // new sessions/s ÷ the kernel's
	// Bound says the DUT was generator-bound: PPS is a lower bound.
	Bound bool `json:"lower_bound,omitempty"`
}

// VethGoalInfo says whether fastnat met VethGoal in every case.
type VethGoalInfo struct {
	Want  float64 `json:"want"`  // VethGoal
	Worst float64 `json:"worst"` // the lowest fastnat/kernel pps ratio
	Met   bool    `json:"met"`
	// Undecided: every case below the goal was generator-bound, so its
	// ratio is a lower bound and the goal may or may not be met.
	Undecided bool `json:"undecided,omitempty"`
}

// caseKey identifies a case across DUTs.
type caseKey struct{ flows, size int }

// Compare fills Ratios (every DUT but the kernel against the kernel, case
// by case) and Goal (when fastnat and the kernel both ran).
func (r *VethReport) Compare() {
	kernel := map[caseKey]VethResult{}
	for _, x := range r.Results {
		if x.DUT == DUTKernel && x.Error == "" {
			kernel[caseKey{x.Flows, x.FrameSize}] = x
		}
	}
	r.Ratios, r.Goal = nil, nil
	for _, x := range r.Results {
		k, ok := kernel[caseKey{x.Flows, x.FrameSize}]
		if x.DUT == DUTKernel || x.Error != "" || !ok || k.DeliveredPPS == 0 {
			continue
		}
		q := VethRatio{DUT: x.DUT, Flows: x.Flows, FrameSize: x.FrameSize, PPS: x.DeliveredPPS / k.DeliveredPPS,
			Bound: x.GeneratorBound}
		if k.CPUPerPacket > 0 {
			q.CPU = float64(x.CPUPerPacket) / float64(k.CPUPerPacket)
		}
		if k.NewSessionsPerSec > 0 {
			q.Sessions = x.NewSessionsPerSec / k.NewSessionsPerSec
		}
		r.Ratios = append(r.Ratios, q)
		if x.DUT == DUTFastnat {
			if r.Goal == nil {
				r.Goal = &VethGoalInfo{Want: VethGoal, Worst: q.PPS}
			}
			r.Goal.Worst = min(r.Goal.Worst, q.PPS)
		}
	}
	if r.Goal != nil {
		r.Goal.Met = r.Goal.Worst >= VethGoal
		if !r.Goal.Met {
			r.Goal.Undecided = true
			for _, q := range r.Ratios {
				if q.DUT == DUTFastnat && q.PPS < VethGoal && !q.Bound {
					r.Goal.Undecided = false
				}
			}
		}
		// A fastnat case that failed or has no kernel counterpart cannot
		// have met the goal.
		for _, x := range r.Results {
			if x.DUT == DUTFastnat && (x.Error != "" || kernel[caseKey{x.Flows, x.FrameSize}].DeliveredPPS == 0) {
				r.Goal.Met, r.Goal.Undecided = false, false
			}
		}
	}
}

// ratio returns the comparison of x with the kernel, if there is one.
func (r *VethReport) ratio(x VethResult) (VethRatio, bool) {
	for _, q := range r.Ratios {
		if q.DUT == x.DUT && q.Flows == x.Flows && q.FrameSize == x.FrameSize {
			return q, true
		}
	}
	return VethRatio{}, false
}

// WriteTable prints the machine, the settings and one row per case, with
// the ratio to the kernel beside every other DUT.
func (r *VethReport) WriteTable(w io.Writer) error {
	r.Compare()
	var b strings.Builder
	fmt.Fprintf(&b, "fastnat bench veth — %s\n", r.Machine)
	s := r.Settings
	rate := "as fast as the generator goes"
	if s.Rate > 0 {
		rate = fmt.Sprintf("%.0f pps", s.Rate)
	}
	fmt.Fprintf(&b, "UDP inside→outside through the router namespace; %s per case after %s warm-up; offered load: %s;\n",
		s.Duration, s.Warmup, rate)
	fmt.Fprintf(&b, "generator on CPU %d, DUT on CPU %d; latency from %g probes/s, at load and at a light load of %.0f pps\n\n",
		s.GenCPU, s.DUTCPU, s.ProbeRate, s.LatencyRate)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\tlatency at load\t\tat light load\t\t\t")
	fmt.Fprintln(tw, "dut\tflows\tframe\toffered Mpps\tdelivered Mpps\tloss\tCPU/pkt\tnew sess/s\tp50\tp99\tp50\tp99\tvs kernel\t")
	for _, x := range r.Results {
		if x.Error != "" {
			fmt.Fprintf(tw, "%s\t%d\t%d\tfailed\t-\t-\t-\t-\t-\t-\t-\t-\t\t\n", x.DUT, x.Flows, x.FrameSize)
			continue
		}
		sess := "-"
		if x.NewSessionsPerSec > 0 {
			sess = fmt.Sprintf("%.0fk", x.NewSessionsPerSec/1e3)
		}
		vs, ge := "", ""
		if x.GeneratorBound {
			ge = "≥"
		}
		if q, ok := r.ratio(x); ok {
			vs = fmt.Sprintf("%s%.2fx", ge, q.PPS)
		}
		loss := fmt.Sprintf("%.1f%%", 100*x.Loss)
		if x.Untranslated > 0 {
			loss += fmt.Sprintf(" (+%d untranslated)", x.Untranslated)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.3f\t%s%.3f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			x.DUT, x.Flows, x.FrameSize, x.OfferedPPS/1e6, ge, x.DeliveredPPS/1e6, loss,
			roundDur(x.CPUPerPacket), sess, roundDur(x.LatencyAtLoad.P50), roundDur(x.LatencyAtLoad.P99),
			roundDur(x.LatencyAtRate.P50), roundDur(x.LatencyAtRate.P99), vs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	busiest, stolen, spread := 0.0, 0.0, 0.0
	for _, x := range r.Results {
		busiest, stolen = max(busiest, x.OtherCPU), max(stolen, x.Steal)
		if x.Rounds > 1 && x.DeliveredPPS > 0 {
			spread = max(spread, (x.DeliveredMax-x.DeliveredMin)/x.DeliveredPPS)
		}
	}
	bound := false
	for _, x := range r.Results {
		bound = bound || x.GeneratorBound
		if x.Error != "" {
			fmt.Fprintf(&b, "\n%s, %d flows, %d-byte frames failed: %s\n", x.DUT, x.Flows, x.FrameSize, firstLine(x.Error))
		}
	}
	if bound {
		fmt.Fprintf(&b, "\n≥: the DUT lost under %.0f%% of what the generator offered, so the generator set the rate; the DUT can do at least this\n", 100*vethBoundLoss)
	}
	if s.Rounds > 1 {
		fmt.Fprintf(&b, "\nmedian of %d rounds per case; delivered rates of a case's rounds spread by up to %.0f%% of the median\n", s.Rounds, 100*spread)
	}
	if busiest > vethOtherCPUWarn {
		fmt.Fprintf(&b, "\nwarning: other processes used up to %.0f%% of a CPU during a measurement; the numbers are skewed\n", 100*busiest)
	}
	if stolen > vethOtherCPUWarn {
		fmt.Fprintf(&b, "\nwarning: the hypervisor stole up to %.0f%% of a CPU during a measurement; the numbers are skewed\n", 100*stolen)
	}
	if g := r.Goal; g != nil {
		verdict := "NOT met"
		switch {
		case g.Met:
			verdict = "met"
		case g.Undecided:
			verdict = "undecided (the generator could not offer enough)"
		}
		fmt.Fprintf(&b, "\ngoal: fastnat ≥ %.1fx the kernel's delivered pps in every case: %s (worst %.2fx)\n", g.Want, verdict, g.Worst)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report, ratios included, to path.
func (r *VethReport) WriteJSON(path string) error {
	r.Compare()
	return writeJSON(path, r)
}

// writeJSON writes report v to path as indented JSON.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteAll prints the table to w and writes the JSON and the chart where
// jsonPath and plotPath say ("" skips one).
func (r *VethReport) WriteAll(w io.Writer, jsonPath, plotPath string) error {
	var errs []error
	errs = append(errs, r.WriteTable(w))
	if jsonPath != "" {
		errs = append(errs, r.WriteJSON(jsonPath))
	}
	if plotPath != "" {
		errs = append(errs, r.Plot(plotPath))
	}
	return errors.Join(errs...)
}

// roundDur prints d with three significant digits ("812ns", "1.23µs",
// "819µs"); "-" for no value.
func roundDur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	unit := time.Duration(1)
	for d >= 1000*unit {
		unit *= 10
	}
	return d.Round(unit).String()
}

// firstLine returns s up to its first newline, at most 300 bytes.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
