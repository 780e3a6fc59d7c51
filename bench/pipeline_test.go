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

func rigFor(b *testing.B, flows int) *PipelineRig {
	b.Helper()
	rigsMu.Lock()
	defer rigsMu.Unlock()
	if r, ok := rigs[flows]; ok {
		return r
	}
	r, err := NewPipelineRig(PipelineConfig{Flows: flows})
	if err != nil {
		b.Fatal(err)
	}
	rigs[flows] = r
	return r
}

// BenchmarkPipeline: 64-byte UDP frames over established sessions spread
// uniformly, one worker, memory ports. Reports ns/pkt and Mpps, and the
// new-session rate measured while creating the sessions.
func BenchmarkPipeline(b *testing.B) {
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
