package bench

import (
	"encoding/json"
	"flag"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testReport is a made-up report with two cases, fastnat 2x and 1.2x the
// kernel, a plain-forwarding row and a failed case.
func testReport() *VethReport {
	res := func(dut string, flows, size int, pps float64, cpu time.Duration, sess float64) VethResult {
		return VethResult{DUT: dut, Flows: flows, FrameSize: size, OfferedPPS: pps * 1.1, DeliveredPPS: pps,
			Loss: 1 - 1/1.1, CPUPerPacket: cpu, NewSessionsPerSec: sess,
			LatencyAtLoad: VethLatency{P50: 5 * time.Microsecond, P90: 8 * time.Microsecond, P99: 21 * time.Microsecond},
			LatencyAtRate: VethLatency{P50: 3 * time.Microsecond, P90: 4 * time.Microsecond, P99: 7 * time.Microsecond}}
	}
	bound := res(DUTFastnat, 1, 64, 1.8e6, 550*time.Nanosecond, 0)
	bound.Loss, bound.GeneratorBound = 0.001, true
	return &VethReport{
		Machine:  Machine{CPU: "Test CPU", Cores: 2, Kernel: "6.18", Go: "go1.26"},
		Settings: VethConfig{Duration: 5 * time.Second, Warmup: time.Second, ProbeRate: 500, DUTCPU: 1}.settings(),
		Results: []VethResult{
			res(DUTKernel, 1, 64, 0.9e6, 1100*time.Nanosecond, 0),
			bound,
			res(DUTNone, 1, 64, 1.2e6, 800*time.Nanosecond, 0),
			res(DUTKernel, 65536, 64, 0.7e6, 1400*time.Nanosecond, 300e3),
			res(DUTFastnat, 65536, 64, 0.84e6, 1200*time.Nanosecond, 600e3),
			{DUT: DUTFastnat, Flows: 65536, FrameSize: 1518, Error: "fastnat dut: device under test unavailable\nmore"},
		},
	}
}

func TestVethReportCompare(t *testing.T) {
	r := testReport()
	r.Compare()
	want := []VethRatio{
		{DUT: DUTFastnat, Flows: 1, FrameSize: 64, PPS: 2, CPU: 0.5},
		{DUT: DUTNone, Flows: 1, FrameSize: 64, PPS: 1.2 / 0.9, CPU: 800.0 / 1100},
		{DUT: DUTFastnat, Flows: 65536, FrameSize: 64, PPS: 1.2, CPU: 1200.0 / 1400, Sessions: 2},
	}
	if len(r.Ratios) != len(want) {
		t.Fatalf("ratios %+v", r.Ratios)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for i, w := range want {
		g := r.Ratios[i]
		if g.DUT != w.DUT || g.Flows != w.Flows || g.FrameSize != w.FrameSize || !near(g.PPS, w.PPS) || !near(g.CPU, w.CPU) || !near(g.Sessions, w.Sessions) {
			t.Errorf("ratio %d: %+v, want %+v", i, g, w)
		}
	}
	if r.Goal == nil || r.Goal.Met || !near(r.Goal.Worst, 1.2) {
		t.Fatalf("goal %+v", r.Goal)
	}

	// Every fastnat case at 2x and none failed: met.
	r.Results[4].DeliveredPPS = 1.4e6
	r.Results = r.Results[:5]
	r.Compare()
	if !r.Goal.Met || !near(r.Goal.Worst, 2) {
		t.Fatalf("goal %+v", r.Goal)
	}
	// A fastnat case without its kernel counterpart cannot count as met.
	r.Results = append(r.Results, VethResult{DUT: DUTFastnat, Flows: 1, FrameSize: 1518, DeliveredPPS: 1e6})
	r.Compare()
	if r.Goal.Met {
		t.Fatalf("goal met without a kernel run: %+v", r.Goal)
	}
	// Below the goal only where the generator set the rate: undecided.
	r.Results = r.Results[:5]
	r.Results[4].DeliveredPPS, r.Results[4].GeneratorBound = 0.84e6, true
	r.Compare()
	if r.Goal.Met || !r.Goal.Undecided {
		t.Fatalf("generator-bound goal %+v", r.Goal)
	}
	// Without fastnat there is no goal.
	r.Results = r.Results[:1]
	r.Compare()
	if r.Goal != nil || len(r.Ratios) != 0 {
		t.Fatalf("goal %+v ratios %+v", r.Goal, r.Ratios)
	}
}

func TestVethReportTable(t *testing.T) {
	var b strings.Builder
	if err := testReport().WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"Test CPU, 2 cores, Linux 6.18, go1.26", // the machine
		"5s per case after 1s warm-up",
		"≥1.800", "≥2.00x", "1.20x", "the generator set the rate", // ratios, bounds
		"300k", "600k", // new sessions/s
		"1.1µs", "21µs", "7µs", // CPU per packet, p99 at load and at light load
		"fastnat, 65536 flows, 1518-byte frames failed: fastnat dut: device under test unavailable", // first line only
		"NOT met (worst 1.20x)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if strings.Contains(out, "more") {
		t.Errorf("table shows more than an error's first line")
	}
}

func TestVethReportJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	r := testReport()
	if err := r.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"delivered_pps": 1800000`, `"cpu_ns_per_packet": 550`, `"p99_ns": 21000`, `"ratios"`, `"goal"`, `"machine"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("json lacks %s", key)
		}
	}
	var back VethReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(back.Results, r.Results, func(a, b VethResult) bool {
		return a.DUT == b.DUT && a.DeliveredPPS == b.DeliveredPPS && a.CPUPerPacket == b.CPUPerPacket && a.Error == b.Error
	}) || back.Machine != r.Machine || len(back.Ratios) != 3 {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestVethReportPlot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.png")
	if err := testReport().Plot(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 300 {
		t.Fatalf("image %v", b)
	}
	if err := (&VethReport{}).Plot(path); err == nil {
		t.Fatal("empty report plotted")
	}
}

func TestVethFlags(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		check   func(*VethConfig) bool
		wantErr bool
	}{
		{name: "defaults", check: func(c *VethConfig) bool {
			return slices.Equal(c.DUTs, DefaultVethDUTs) && slices.Equal(c.Flows, DefaultVethFlows) &&
				slices.Equal(c.Sizes, DefaultVethSizes) && c.Duration == 5*time.Second && c.Warmup == time.Second &&
				c.GenCPU == 0 && c.DUTCPU == 1 && c.ProbeRate == 500 && c.Rate == 0 && c.LatencyRate == 100000 && c.Rounds == 1
		}},
		{name: "everything", args: []string{"--dut", "kernel, none", "--flows", "1,64k,1000", "--sizes", "64,1518",
			"--duration", "2s", "--warmup", "500ms", "--rate", "1e6", "--probe-rate", "100", "--latency-rate", "-1", "--rounds", "3", "--gen-cpu", "1",
			"--dut-cpu", "-1", "--fastnat-bin", "/x/fastnat", "--json", "o.json", "--plot", "o.png"},
			check: func(c *VethConfig) bool {
				return slices.Equal(c.DUTs, []string{"kernel", "none"}) && slices.Equal(c.Flows, []int{1, 65536, 1000}) &&
					slices.Equal(c.Sizes, []int{64, 1518}) && c.Duration == 2*time.Second && c.Warmup == 500*time.Millisecond &&
					c.Rate == 1e6 && c.ProbeRate == 100 && c.LatencyRate == -1 && c.Rounds == 3 && c.GenCPU == 1 && c.DUTCPU == -1 &&
					c.FastnatBinary == "/x/fastnat" && c.JSON == "o.json" && c.Plot == "o.png"
			}},
		{name: "bad count", args: []string{"--flows", "1,x"}, wantErr: true},
		{name: "negative count", args: []string{"--sizes", "-64"}, wantErr: true},
		{name: "empty list", args: []string{"--dut", " , "}, wantErr: true},
		{name: "unknown dut", args: []string{"--dut", "kernel,pf"}, wantErr: true},
		{name: "zero duration", args: []string{"--duration", "0s"}, wantErr: true},
		{name: "too short a window", args: []string{"--duration", "1ms"}, wantErr: true},
		{name: "zero rounds", args: []string{"--rounds", "0"}, wantErr: true},
		{name: "frame too big", args: []string{"--sizes", "64,9000"}, wantErr: true},
		{name: "negative rate", args: []string{"--rate", "-5"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("veth", flag.ContinueOnError)
			fs.SetOutput(&strings.Builder{})
			c := VethFlags(fs)
			err := fs.Parse(tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !tc.check(c) {
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestVethConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    VethConfig
		ok   bool
	}{
		{"zero", VethConfig{}, true},
		{"unknown dut", VethConfig{DUTs: []string{"pf"}}, false},
		{"zero flows", VethConfig{Flows: []int{0}}, false},
		{"small frame", VethConfig{Sizes: []int{60}}, false},
		{"negative rate", VethConfig{Rate: -1}, false},
		{"negative rounds", VethConfig{Rounds: -1}, false},
		{"negative duration", VethConfig{Duration: -time.Second}, false},
		{"cpu out of range", VethConfig{DUTCPU: 4096}, false},
		{"shared cpu", VethConfig{GenCPU: 1, DUTCPU: 1}, false},
		{"placement left to the kernel", VethConfig{GenCPU: -1, DUTCPU: -1}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.c.withDefaults()
			if (err == nil) != tc.ok {
				t.Fatalf("err %v", err)
			}
			if tc.name == "zero" && (c.GenCPU != 0 || c.DUTCPU != 1) {
				t.Fatalf("cpus %d, %d", c.GenCPU, c.DUTCPU)
			}
			if tc.ok && (c.Duration != 5*time.Second || len(c.DUTs) != 2 || c.Progress == nil) {
				t.Fatalf("defaults not filled: %+v", c)
			}
		})
	}
}

func TestRoundDur(t *testing.T) {
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "-"}, {812, "812ns"}, {1234, "1.23µs"}, {818_150, "818µs"}, {21_004_567, "21ms"},
		{1_234_567, "1.23ms"}, {2_345_678_901, "2.35s"}, {-5, "-"},
	} {
		if got := roundDur(tc.in); got != tc.want {
			t.Errorf("roundDur(%d) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
