package afxdp

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func mustPanic(t *testing.T, want string, fn func()) {
	t.Helper()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", want)
		}
		if s, _ := r.(string); !strings.Contains(s, want) {
			t.Fatalf("panic %v, want one containing %q", r, want)
		}
	}()
	fn()
}

func TestFramePool(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, p *framePool)
	}{
		{"pops lowest address first", func(t *testing.T, p *framePool) {
			for want := uint64(0); want < 4; want++ {
				addr, ok := p.pop(frameUser)
				if !ok || addr != want*2048 {
					t.Fatalf("pop = %#x, %v; want %#x", addr, ok, want*2048)
				}
			}
		}},
		{"empty pool", func(t *testing.T, p *framePool) {
			for range 4 {
				p.pop(frameKernel)
			}
			if _, ok := p.pop(frameKernel); ok || p.available() != 0 {
				t.Fatalf("pop from empty pool succeeded")
			}
		}},
		{"push takes any address inside the frame", func(t *testing.T, p *framePool) {
			addr, _ := p.pop(frameUser)
			p.release(addr+256+100, frameUser)
			if p.available() != 4 || p.state[0] != frameFree {
				t.Fatalf("available %d, state %v", p.available(), p.state[0])
			}
		}},
		{"lifo", func(t *testing.T, p *framePool) {
			a, _ := p.pop(frameUser)
			b, _ := p.pop(frameUser)
			p.release(a, frameUser)
			p.release(b, frameUser)
			if got, _ := p.pop(frameUser); got != b {
				t.Fatalf("pop = %#x, want the last pushed %#x", got, b)
			}
		}},
		{"double release panics", func(t *testing.T, p *framePool) {
			a, _ := p.pop(frameUser)
			p.release(a, frameUser)
			mustPanic(t, "is free, not user", func() { p.release(a, frameUser) })
		}},
		{"release of a frame in flight panics", func(t *testing.T, p *framePool) {
			a, _ := p.pop(frameUser)
			p.move(a, frameUser, frameTx)
			mustPanic(t, "is tx, not user", func() { p.release(a, frameUser) })
		}},
		{"address outside the umem panics", func(t *testing.T, p *framePool) {
			mustPanic(t, "outside the UMEM", func() { p.release(4*2048, frameUser) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newFramePool(4, 2048)) })
	}
}

// TestFramePoolRandom checks the pool against a map of owners under random
// operations.
func TestFramePoolRandom(t *testing.T) {
	const frames = 64
	p := newFramePool(frames, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	owner := map[uint64]frameState{} // oracle: frames not free
	for range 100000 {
		if rng.IntN(2) == 0 {
			to := frameState(1 + rng.IntN(3))
			addr, ok := p.pop(to)
			if ok != (len(owner) < frames) {
				t.Fatalf("pop ok = %v with %d frames out", ok, len(owner))
			}
			if !ok {
				continue
			}
			if _, out := owner[addr]; out || addr%4096 != 0 || addr >= frames*4096 {
				t.Fatalf("pop returned %#x, already out or misaligned", addr)
			}
			owner[addr] = to
		} else {
			for addr, st := range owner {
				p.release(addr+uint64(rng.IntN(4096)), st)
				delete(owner, addr)
				break
			}
		}
		if p.available() != frames-len(owner) {
			t.Fatalf("available %d, oracle %d", p.available(), frames-len(owner))
		}
	}
}

func TestFramePoolAllocs(t *testing.T) {
	p := newFramePool(8, 2048)
	if n := testing.AllocsPerRun(1000, func() {
		a, _ := p.pop(frameUser)
		p.release(a, frameUser)
	}); n != 0 {
		t.Fatalf("pop+push allocates %v times", n)
	}
}
