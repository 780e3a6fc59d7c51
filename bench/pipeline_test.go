package bench

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/pipeline"
)

var (
	rigsMu sync.Mutex
	rigs   = map[int]*PipelineRig{}
)

// rigFor returns the rig for flows established flows, built once; flows
// 0 is the baseline rig.
func rigFor(b *testing.B, flows int) *PipelineRig {
	b.Helper()
	rigsMu.Lock()
	defer rigsMu.Unlock()
	if r, ok := rigs[flows]; ok {
		return r
	}
	r, err := NewPipelineRig(PipelineConfig{Flows: max(flows, 1), Baseline: flows == 0})
	if err != nil {
		b.Fatal(err)
	}
	rigs[flows] = r
	return r
}

// BenchmarkPipeline: 64-byte UDP frames over established sessions spread
// uniformly, one worker, memory ports. Reports ns/pkt and Mpps, and the
// new-session rate measured while creating the sessions. The baseline case
// is the harness alone (generator, memory ports, sink; see
// PipelineConfig.Baseline): the worker's own cost is a case's ns/pkt minus
// the baseline's.
func BenchmarkPipeline(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		r := rigFor(b, 0)
		b.ReportAllocs()
		b.ResetTimer()
		n, d := r.Run(b.N)
		b.StopTimer()
		ns := float64(d.Nanoseconds()) / float64(n)
		b.ReportMetric(ns, "ns/pkt")
		b.ReportMetric(1e3/ns, "Mpps")
	})
	for _, flows := range []int{1, 1 << 10, 1 << 16, 1 << 20} {
		b.Run(fmt.Sprintf("flows=%s", count(flows)), func(b *testing.B) {
			r := rigFor(b, flows)
			b.ReportAllocs()
			b.ResetTimer()
			n, d := r.Run(b.N)
			b.StopTimer()
			if r.Drops() != 0 {
				b.Fatalf("%d drops", r.Drops())
			}
			ns := float64(d.Nanoseconds()) / float64(n)
			b.ReportMetric(ns, "ns/pkt")
			b.ReportMetric(1e3/ns, "Mpps")
			b.ReportMetric(float64(flows)/r.Setup.Seconds(), "new-sessions/s")
		})
	}
}

func count(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dM", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dK", n>>10)
	}
	return fmt.Sprint(n)
}

// TestPipelineRigFramesAreValid checks the generator's frames with
// gopacket, both into fresh buffers and into buffers holding frames the
// worker translated (which the generator patches rather than rewrites),
// and that the worker forwards them all.
func TestPipelineRigFramesAreValid(t *testing.T) {
	r, err := NewPipelineRig(PipelineConfig{Flows: 100})
	if err != nil {
		t.Fatal(err)
	}
	fresh := make([]pipeline.Frame, 20)
	for i := range fresh {
		fresh[i].Buf = make([]byte, 0, 2048)
	}
	rng := r.rng
	r.generate(fresh)
	for i, f := range fresh {
		d := testutil.Decode(t, f.Buf)
		if d.UDP == nil || len(f.Buf) != 60 {
			t.Fatalf("frame %d: not a 60-byte UDP frame", i)
		}
	}
	// What translation and forwarding change, scribbled over.
	used := make([]pipeline.Frame, len(fresh))
	for i, f := range fresh {
		b := append([]byte(nil), f.Buf...)
		for _, off := range []int{0, 1, 5, 6, 11, 22, 24, 25, 26, 29, 34, 35, 40, 41} {
			b[off] ^= 0x5a
		}
		used[i].Buf = b[:0]
	}
	r.rng = rng
	r.generate(used)
	for i := range used {
		if !bytes.Equal(used[i].Buf, fresh[i].Buf) {
			t.Fatalf("frame %d regenerated into a used buffer:\n% x\nwant\n% x", i, used[i].Buf, fresh[i].Buf)
		}
	}
	if n, _ := r.Run(1000); n < 1000 || r.Drops() != 0 {
		t.Fatalf("ran %d packets with %d drops", n, r.Drops())
	}
}

// TestBaselineRigSwapsMACs checks the baseline step: a frame comes out
// with its addresses swapped and nothing else changed.
func TestBaselineRigSwapsMACs(t *testing.T) {
	r, err := NewPipelineRig(PipelineConfig{Baseline: true})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := r.Run(1000); n < 1000 {
		t.Fatalf("ran %d packets", n)
	}
	pool := pipeline.NewMemPool(4, 2048)
	in := pipeline.NewMemPort("in", [6]byte{2, 0, 0, 0, 0, 1}, pool)
	out := pipeline.NewMemPort("out", [6]byte{2, 0, 0, 0, 0, 2}, pool)
	frame := append([]byte(nil), r.base...)
	in.Inject(frame)
	baselineStep(in, out, 4)()
	want := append([]byte(nil), frame...)
	copy(want[0:6], frame[6:12])
	copy(want[6:12], frame[0:6])
	if got := out.Sent(); len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("sent %x, want %x", got, want)
	}
}

// BenchmarkNewSessions creates 65,536 sessions through the worker's slow
// path per iteration (a fresh rig each time) and reports the rate, by
// the wall clock and by the creating thread's CPU time (new-sessions/cpu-s,
// where it is read: the steadier of the two on a shared machine).
func BenchmarkNewSessions(b *testing.B) {
	var total, cpu time.Duration
	for range b.N {
		r, err := NewPipelineRig(PipelineConfig{Flows: 1 << 16})
		if err != nil {
			b.Fatal(err)
		}
		total += r.Setup
		cpu += r.SetupCPU
		r.Close()
	}
	b.ReportMetric(float64(b.N<<16)/total.Seconds(), "new-sessions/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N<<16)/cpu.Seconds(), "new-sessions/cpu-s")
	}
}

// TestPipelineRigLogs: with the event log on, creating the sessions
// records each one and its binding, and the worker's ring drops none.
func TestPipelineRigLogs(t *testing.T) {
	r, err := NewPipelineRig(PipelineConfig{Flows: 1000, Logging: true})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	if made, dropped := r.Events(); made != 2000 || dropped != 0 {
		t.Fatalf("%d events made, %d dropped; want 2000 and 0", made, dropped)
	}
}
