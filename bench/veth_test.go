package bench

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/internal/testnet"
)

func TestMedianRun(t *testing.T) {
	run := func(pps float64, err string) VethResult {
		return VethResult{DUT: "kernel", DeliveredPPS: pps, Error: err}
	}
	for _, tc := range []struct {
		name           string
		runs           []VethResult
		want           float64
		lo, hi         float64
		failed         int
		wantErr        bool
		wantRoundCount int
	}{
		{name: "one", runs: []VethResult{run(5, "")}, want: 5, lo: 5, hi: 5, wantRoundCount: 1},
		{name: "odd", runs: []VethResult{run(9, ""), run(3, ""), run(5, "")}, want: 5, lo: 3, hi: 9, wantRoundCount: 3},
		{name: "even takes the lower middle", runs: []VethResult{run(9, ""), run(3, ""), run(5, ""), run(7, "")}, want: 5, lo: 3, hi: 9, wantRoundCount: 4},
		{name: "failures left out", runs: []VethResult{run(0, "boom"), run(4, ""), run(6, "")}, want: 4, lo: 4, hi: 6, failed: 1, wantRoundCount: 3},
		{name: "all failed", runs: []VethResult{run(0, "first"), run(0, "second")}, failed: 2, wantErr: true, wantRoundCount: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := medianRun(tc.runs)
			if (m.Error != "") != tc.wantErr || m.DeliveredPPS != tc.want || m.FailedRounds != tc.failed || m.Rounds != tc.wantRoundCount {
				t.Fatalf("got %+v", m)
			}
			if tc.wantErr {
				if m.Error != "first" {
					t.Fatalf("error %q, want the first", m.Error)
				}
				return
			}
			if m.DeliveredMin != tc.lo || m.DeliveredMax != tc.hi {
				t.Fatalf("spread %v..%v, want %v..%v", m.DeliveredMin, m.DeliveredMax, tc.lo, tc.hi)
			}
		})
	}
}

// TestVethResultFill checks the arithmetic of a window: rates, loss,
// untranslated frames, and the CPU charged to the DUT — everything on the
// DUT's CPUs, only interrupt and softirq time on the generator's.
func TestVethResultFill(t *testing.T) {
	at := time.Unix(1000, 0)
	s0 := vethSnapshot{
		at: at, completed: 1000, probes: 10,
		sink: vethSinkCounts{All: 100, Good: 90, GoodBytes: 90 * 60},
		cpus: []cpuTimes{
			{User: 100, System: 100, Idle: 100, SoftIRQ: 10},
			{User: 100, System: 100, Idle: 100, SoftIRQ: 10},
		},
		process: time.Second,
		known:   map[int]uint64{7: 10, 1: 1000},
	}
	s1 := vethSnapshot{
		at: at.Add(2 * time.Second), completed: 1000 + 2_000_000 + 1000, probes: 1010,
		sink: vethSinkCounts{All: 100 + 1_500_010, Good: 90 + 1_500_000, GoodBytes: 90*60 + 1_500_000*60},
		cpus: []cpuTimes{
			// The generator's CPU: 2 s, of which 0.5 s softirq, 0.1 s irq.
			{User: 100 + 40, System: 100 + 100, Idle: 100, IRQ: 10, SoftIRQ: 10 + 50},
			// The DUT's CPU: 2 s, 1.5 s busy, 0.1 s stolen.
			{User: 100 + 50, System: 100 + 20, Idle: 100 + 50, SoftIRQ: 10 + 80, Steal: 10},
		},
		process: 3 * time.Second,
		// Of the 3.5 s the CPUs were busy, the harness, the DUT and the
		// kernel threads used 3.3 s: 0.2 s was other load.
		known: map[int]uint64{7: 10 + 30, 1: 1000 + 300},
	}
	var r VethResult
	r.fill(VethConfig{GenCPU: 0, DUTCPU: 1}, s0, s1, []time.Duration{1, 2, 3, 4})
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }
	if !near(r.OfferedPPS, 1e6) || !near(r.DeliveredPPS, 750e3) || !near(r.Loss, 0.25) || !near(r.DeliveredBPS, 750e3*60*8) {
		t.Errorf("rates: %+v", r)
	}
	if r.Untranslated != 10 {
		t.Errorf("untranslated %d", r.Untranslated)
	}
	// DUT: 0.6 s on CPU 0 (irq + softirq) + 1.5 s on CPU 1 = 2.1 s for
	// 1.5 M packets.
	if want := 2100 * time.Millisecond / 1_500_000; r.CPUPerPacket != want {
		t.Errorf("cpu per packet %v, want %v", r.CPUPerPacket, want)
	}
	if want := 2 * time.Second / 1_500_000; r.ProcessCPUPerPacket != want {
		t.Errorf("process cpu per packet %v, want %v", r.ProcessCPUPerPacket, want)
	}
	if len(r.CPUBusy) != 2 || !near(r.CPUBusy[0], 1) || !near(r.CPUBusy[1], 150.0/200) {
		t.Errorf("busy %v", r.CPUBusy)
	}
	if !near(r.OtherCPU, 0.1) || !near(r.Steal, 0.05) {
		t.Errorf("other %v steal %v", r.OtherCPU, r.Steal)
	}
	if l := r.LatencyAtLoad; l.Sent != 1000 || l.Received != 4 || l.P50 != 2 || l.P99 != 4 || l.Max != 4 {
		t.Errorf("latency %+v", l)
	}
	if s := r.summary(); !strings.Contains(s, "0.750 Mpps delivered of 1.000 offered (loss 25.0%)") ||
		!strings.Contains(s, "10 UNTRANSLATED") || !strings.Contains(s, "other processes used 10%") {
		t.Errorf("summary %q", s)
	}

	// Nothing delivered: no CPU per packet, no division by zero.
	var z VethResult
	s1.sink = s0.sink
	z.fill(VethConfig{GenCPU: 0}, s0, s1, nil)
	if z.DeliveredPPS != 0 || z.CPUPerPacket != 0 || z.Loss != 1 || z.LatencyAtLoad.P50 != 0 {
		t.Errorf("empty window: %+v", z)
	}
}

// TestFastnatConfig: the configuration the fastnat DUT runs with passes
// fastnat's own parser and says what the benchmark means it to.
func TestFastnatConfig(t *testing.T) {
	for _, env := range []DUTEnv{{CPU: 1, Flows: 65536}, {CPU: -1, Flows: 1 << 20}} {
		text := fastnatConfig("/tmp/x/fastnat.sock", env)
		c, err := config.Parse("bench.toml", []byte(text))
		if err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		if len(c.Warnings) != 0 {
			t.Errorf("warnings: %v", c.Warnings)
		}
		wantCPUs := []int{env.CPU}
		if env.CPU < 0 {
			wantCPUs = nil
		}
		if c.Dataplane.Workers != 1 || !slices.Equal(c.Dataplane.CPUs, wantCPUs) || c.Dataplane.Poll != config.PollAdaptive {
			t.Errorf("dataplane %+v", c.Dataplane)
		}
		if len(c.Interfaces) != 2 || c.Interfaces[0].Name != testnet.RouterOutsideLink || c.Interfaces[0].Role != config.RoleOutside ||
			c.Interfaces[1].Name != testnet.RouterInsideLink || c.Interfaces[1].Role != config.RoleInside {
			t.Errorf("interfaces %+v", c.Interfaces)
		}
		if c.Flows.Max < 2*env.Flows {
			t.Errorf("flows.max %d for %d flows", c.Flows.Max, env.Flows)
		}
		if len(c.NAT.Outbound) != 1 || !slices.Equal(c.NAT.Outbound[0].Pool, []netip.Addr{testnet.PublicAddr}) ||
			c.NAT.Outbound[0].Mapping != config.EndpointIndependent || c.ALG.FTP.Enabled || c.Control.Socket != "/tmp/x/fastnat.sock" {
			t.Errorf("nat %+v alg %+v control %+v", c.NAT, c.ALG, c.Control)
		}
	}
}
