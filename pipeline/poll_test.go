package pipeline

import (
	"sync/atomic"
	"testing"
	"time"

	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
)

// yieldWaker is a Waker over a MemPool that counts the worker's yields
// and sleeps.
type yieldWaker struct {
	*MemPool
	yields, waits atomic.Int64
}

func (y *yieldWaker) Wait(d time.Duration) {
	y.waits.Add(1)
	y.MemPool.Wait(d)
}

func (y *yieldWaker) Yield() { y.yields.Add(1) }

// An adaptive worker whose Waker can yield yields once every yieldEvery
// empty polls while it spins, and not at all once it sleeps: exactly
// (adaptiveSpins-1)/yieldEvery times before its first sleep, and as many
// again after frames woke it.
func TestAdaptiveYields(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	y := &yieldWaker{MemPool: r.pool}
	r.w = NewWorker(Config{
		Ports: []PortSpec{{Port: r.in, Side: nat.Inside}, {Port: r.out, Side: nat.Outside}},
		Poll:  PollAdaptive, Waker: y, Batch: 32, NAT: r.nat.Engine(0), Table: r.table,
	})
	done := make(chan struct{})
	go func() { r.w.Run(); close(done) }()
	defer func() { r.w.Stop(); <-done }()
	const spinYields = (adaptiveSpins - 1) / yieldEvery
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (yields %d, waits %d)", what, y.yields.Load(), y.waits.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("the first sleep", func() bool { return y.waits.Load() >= 1 })
	if got := y.yields.Load(); got != spinYields {
		t.Fatalf("yields before the first sleep = %d, want %d", got, spinYields)
	}
	waits := y.waits.Load()
	if !r.in.Inject(UDP(t, inClient+":5000", remote1+":7777", []byte("x"))) {
		t.Fatal("pool exhausted")
	}
	waitFor("the frame", func() bool { return r.w.Counters().RxPackets.Load() > 0 })
	waitFor("the next sleep", func() bool { return y.waits.Load() > waits+1 })
	if got := y.yields.Load(); got != 2*spinYields {
		t.Fatalf("yields after a frame woke the worker = %d, want %d", got, 2*spinYields)
	}
}
