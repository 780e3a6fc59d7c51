package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/cli"
	"github.com/fastnat/fastnat/internal/testnet"
)

// requireVeth skips unless the machine can run the veth benchmark.
func requireVeth(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := testnet.CheckTools("ip", "ethtool", "sysctl", "nft", "sh"); err != nil {
		t.Skip(err)
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs")
	}
}

// TestRunVethKernelTiny runs the smallest real benchmark: the kernel DUT,
// half a second, 64-byte frames, one flow and 2,048 flows. It checks that
// traffic is generated, translated and counted, that probes come back with
// a latency, that the CPU is accounted, and that the three outputs are
// written.
func TestRunVethKernelTiny(t *testing.T) {
	requireVeth(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var progress strings.Builder
	rep, err := RunVeth(ctx, VethConfig{
		DUTs: []string{DUTKernel}, Flows: []int{1, 2048}, Sizes: []int{64},
		Duration: 500 * time.Millisecond, Warmup: 200 * time.Millisecond,
		GenCPU: 0, DUTCPU: 1, Progress: &progress,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + progress.String())
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			t.Fatalf("%d flows: %s", r.Flows, r.Error)
		}
		if r.DeliveredPPS < 1000 || r.OfferedPPS < r.DeliveredPPS*0.99 {
			t.Errorf("%d flows: delivered %.0f pps of %.0f offered", r.Flows, r.DeliveredPPS, r.OfferedPPS)
		}
		if r.Untranslated != 0 {
			t.Errorf("%d flows: %d frames reached the sink untranslated", r.Flows, r.Untranslated)
		}
		for _, l := range []VethLatency{r.LatencyAtLoad, r.LatencyAtRate} {
			if l.Received == 0 || uint64(l.Received) > l.Sent || l.P50 <= 0 || l.P90 < l.P50 || l.P99 < l.P90 || l.Max < l.P99 {
				t.Errorf("%d flows: latency %+v", r.Flows, l)
			}
		}
		if r.CPUPerPacket <= 0 || len(r.CPUBusy) != runtime.NumCPU() {
			t.Errorf("%d flows: cpu/pkt %v, busy %v", r.Flows, r.CPUPerPacket, r.CPUBusy)
		}
	}
	if r := rep.Results[1]; r.NewSessionsPerSec <= 0 || r.SessionsFirstPass == 0 || r.SessionsFirstPass > 2048 {
		t.Errorf("2048 flows: %.0f new sessions/s, %d in the first pass", r.NewSessionsPerSec, r.SessionsFirstPass)
	}
	dir := t.TempDir()
	var table strings.Builder
	if err := rep.WriteAll(&table, filepath.Join(dir, "r.json"), filepath.Join(dir, "r.png")); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
	for _, want := range []string{rep.Machine.CPU, "kernel", "2048", "delivered Mpps"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back VethReport
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Results) != 2 || back.Results[1].DeliveredPPS != rep.Results[1].DeliveredPPS {
		t.Errorf("json round trip: %+v", back.Results)
	}
	if fi, err := os.Stat(filepath.Join(dir, "r.png")); err != nil || fi.Size() == 0 {
		t.Errorf("plot: %v", err)
	}
}

// TestRunVethRate: with a target rate the generator offers that rate, not
// more (it sends only the frames due by now), and the kernel, far from
// saturated, delivers all of it.
func TestRunVethRate(t *testing.T) {
	requireVeth(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const rate = 20000
	plain := ForwardDUT()
	plain.Name = "plain" // a custom DUT
	rep, err := RunVeth(ctx, VethConfig{
		DUTs: []string{"plain"}, CustomDUTs: []DUT{plain}, Flows: []int{100}, Sizes: []int{128}, Rate: rate, LatencyRate: -1,
		Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Error != "" || r.DUT != "plain" {
		t.Fatal(r.DUT, r.Error)
	}
	// Upper bound: the schedule, plus one batch of slack at each end of
	// the window. Lower bound loose: a busy machine may starve the thread
	// (4,057 pps of 20,000 once, at a load average of 11).
	if hi := rate*1.02 + 2*vethBatch/r.Window.Seconds(); r.OfferedPPS > hi || r.OfferedPPS < rate/20 {
		t.Errorf("offered %.0f pps at a target of %d", r.OfferedPPS, rate)
	}
	if r.Loss > 0.01 || r.Untranslated != 0 || !r.GeneratorBound {
		t.Errorf("loss %.3f, untranslated %d, generator-bound %v", r.Loss, r.Untranslated, r.GeneratorBound)
	}
	if r.LatencyAtRate.Sent != 0 || r.LatencyRate != 0 {
		t.Errorf("light-load phase ran although skipped: %+v", r.LatencyAtRate)
	}
}

// TestRunVethFastnatUnavailable: a fastnat DUT without a binary is a
// failed case with a clear error, and the run goes on.
func TestRunVethFastnatUnavailable(t *testing.T) {
	requireVeth(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep, err := RunVeth(ctx, VethConfig{
		DUTs: []string{DUTFastnat}, Flows: []int{1}, Sizes: []int{64},
		Duration: 100 * time.Millisecond, Warmup: 100 * time.Millisecond,
		FastnatBinary: filepath.Join(t.TempDir(), "no-such-fastnat"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || !strings.Contains(rep.Results[0].Error, ErrNoDUT.Error()) {
		t.Fatalf("results %+v, want one failed with %v", rep.Results, ErrNoDUT)
	}
}

// TestVethMeasure is the full comparison as a test, for machines without
// the CLI at hand:
//
//	FASTNAT_VETH=1 go test ./bench -run TestVethMeasure -v -timeout 30m
//
// FASTNAT_VETH_DUTS (default "kernel,fastnat"), FASTNAT_VETH_FLOWS,
// FASTNAT_VETH_SIZES, FASTNAT_VETH_DURATION and FASTNAT_VETH_ROUNDS
// override the defaults;
// FASTNAT_VETH_OUT names a directory for veth.json and veth.png. The
// fastnat DUT runs a binary built from ./cmd/fastnat.
func TestVethMeasure(t *testing.T) {
	if os.Getenv("FASTNAT_VETH") == "" {
		t.Skip("set FASTNAT_VETH=1 to run the veth benchmark")
	}
	requireVeth(t)
	cfg := VethConfig{Progress: &testWriter{t: t}, GenCPU: 0, DUTCPU: 1}
	if s := os.Getenv("FASTNAT_VETH_DUTS"); s != "" {
		cfg.DUTs = strings.Split(s, ",")
	}
	if s := os.Getenv("FASTNAT_VETH_FLOWS"); s != "" {
		fs := flag.NewFlagSet("env", flag.ContinueOnError)
		cli.IntListVar(fs, &cfg.Flows, "flows", nil, 1, vethMaxFlows, "")
		if err := fs.Set("flows", s); err != nil {
			t.Fatal(err)
		}
	}
	if s := os.Getenv("FASTNAT_VETH_SIZES"); s != "" {
		fs := flag.NewFlagSet("env", flag.ContinueOnError)
		cli.IntListVar(fs, &cfg.Sizes, "sizes", nil, vethMinFrame, vethMaxFrame, "")
		if err := fs.Set("sizes", s); err != nil {
			t.Fatal(err)
		}
	}
	if s := os.Getenv("FASTNAT_VETH_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Duration = d
	}
	if s := os.Getenv("FASTNAT_VETH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Rounds = n
	}
	duts := cfg.DUTs
	if len(duts) == 0 {
		duts = DefaultVethDUTs
	}
	for _, d := range duts {
		if d == DUTFastnat {
			cfg.FastnatBinary = buildFastnat(t)
		}
	}
	rep, err := RunVeth(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var jsonPath, plotPath string
	if dir := os.Getenv("FASTNAT_VETH_OUT"); dir != "" {
		jsonPath, plotPath = filepath.Join(dir, "veth.json"), filepath.Join(dir, "veth.png")
	}
	var table strings.Builder
	if err := rep.WriteAll(&table, jsonPath, plotPath); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + table.String())
}

// buildFastnat builds ./cmd/fastnat into a temporary directory.
func buildFastnat(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fastnat")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/fastnat")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go build ./cmd/fastnat: %v\n%s", err, b)
		}
		t.Fatal(err)
	}
	return out
}

// testWriter sends complete progress lines to the test log.
type testWriter struct {
	t    *testing.T
	line []byte
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.t.Log(string(w.line[:i]))
		w.line = w.line[i+1:]
	}
}
