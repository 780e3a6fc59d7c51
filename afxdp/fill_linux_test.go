package afxdp

import (
	"testing"

	"github.com/fastnat/fastnat/pipeline"
)

// TestRefillBatches checks the fill ring's bookkeeping against the fake
// kernel: a port refills once the ring lacks refillAt frames, not on
// every Receive or Flush; what a refill cannot give for want of free
// frames stays owed and a later Flush gives it once frames come back; and
// no frame is lost or given twice on the way (the pool's state checks
// would panic); and a worker that fell behind refills at once, before it
// has received what the rx ring holds.
func TestRefillBatches(t *testing.T) {
	const size, frames = 64, 96
	k := newFakeKernel(size)
	p := newFakePort(frames, 2048, k)
	if got := k.fill.producer.Load(); got != size {
		t.Fatalf("fill ring holds %d frames after the start, want %d", got, size)
	}
	if p.refillAt != size/16 {
		t.Fatalf("refillAt %d, want %d", p.refillAt, size/16)
	}
	fs := make([]pipeline.Frame, size)

	// Fewer frames received than refillAt: the ring is left as it is.
	k.receive(p.refillAt-1, 64)
	n := p.Receive(fs)
	p.Flush()
	if got := k.fill.producer.Load(); got != size {
		t.Errorf("refilled after %d frames (producer %d), want no refill below %d", n, got, p.refillAt)
	}
	p.Release(fs[:n])

	// One more: the ring is topped up to full in one go.
	k.receive(1, 64)
	n = p.Receive(fs)
	if got, want := k.fill.producer.Load()-k.fill.consumer.Load(), uint32(size); got != want {
		t.Errorf("fill ring holds %d frames after reaching refillAt, want %d", got, want)
	}
	p.Release(fs[:n])

	// Take every free frame away: a refill then finds none and the frames
	// stay owed until they come back.
	k.receive(size, 64)
	n = p.Receive(fs)
	held := make([]pipeline.Frame, frames)
	h := p.Alloc(held)
	p.Flush()
	before := k.fill.producer.Load() - k.fill.consumer.Load()
	if p.owed == 0 {
		t.Fatalf("nothing owed with %d frames received and no free frame (fill ring holds %d)", n, before)
	}
	p.Release(fs[:n])
	p.Release(held[:h])
	p.Flush()
	if got := k.fill.producer.Load() - k.fill.consumer.Load(); got != size {
		t.Errorf("fill ring holds %d frames after the frames came back, want %d", got, size)
	}
	if p.owed != 0 {
		t.Errorf("still owed %d", p.owed)
	}
	if c := p.pool.census(); c[frameKernel] != size || c[frameFree] != frames-size {
		t.Errorf("census %v: want %d in the kernel and %d free", c, size, frames-size)
	}
}

func TestRefillWhenBehind(t *testing.T) {
	const size, frames = 1024, 2048
	k := newFakeKernel(size)
	p := newFakePort(frames, 2048, k)
	fs := make([]pipeline.Frame, 16)

	// The kernel fills the rx ring and empties the fill ring while the
	// worker is away; the worker's first burst counts only 16 frames, but
	// the 1,008 behind them took fill slots too.
	k.receive(size, 64)
	if got := k.fill.producer.Load() - k.fill.consumer.Load(); got != 0 {
		t.Fatalf("fill ring holds %d, want 0", got)
	}
	n := p.Receive(fs)
	if n != len(fs) {
		t.Fatalf("received %d, want %d", n, len(fs))
	}
	if got := k.fill.producer.Load() - k.fill.consumer.Load(); got != size {
		t.Errorf("fill ring holds %d frames after the first burst behind, want %d", got, size)
	}
	p.Release(fs[:n])
}
