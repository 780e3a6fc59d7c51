package bench

import (
	"fmt"
	"sync"
	"testing"

	"github.com/fastnat/fastnat/internal/testutil"
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

// TestPipelineRigFramesAreValid checks the generator's frames and what the
// worker makes of them with gopacket.
func TestPipelineRigFramesAreValid(t *testing.T) {
	r, err := NewPipelineRig(PipelineConfig{Flows: 100})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	for i := 0; i < 20; i++ {
		n := r.generate(buf)
		d := testutil.Decode(t, buf[:n])
		if d.UDP == nil || len(buf[:n]) != 60 {
			t.Fatalf("frame %d: not a 60-byte UDP frame", i)
		}
	}
	if n, _ := r.Run(1000); n < 1000 || r.Drops() != 0 {
		t.Fatalf("ran %d packets with %d drops", n, r.Drops())
	}
}
