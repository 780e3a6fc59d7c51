package afxdp

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

// shared stands in for the ring header the kernel maps.
type shared struct {
	producer, consumer, flags atomic.Uint32
}

func testRing(sh *shared, start uint32, size uint32) ring {
	sh.producer.Store(start)
	sh.consumer.Store(start)
	return ring{producer: &sh.producer, consumer: &sh.consumer, flags: &sh.flags, mask: size - 1, size: size}
}

func TestRingIndices(t *testing.T) {
	tests := []struct {
		name       string
		start      uint32
		kernelUsed uint32 // slots the kernel has consumed (producer side) / produced (consumer side)
		produced   uint32
		wantFree   uint32
		wantAvail  uint32
	}{
		{"empty", 0, 0, 0, 8, 0},
		{"full", 0, 0, 8, 0, 0},
		{"half consumed", 0, 4, 8, 4, 4},
		{"across uint32 wrap", 0xfffffffc, 6, 8, 6, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sh shared
			r := testRing(&sh, tt.start, 8)
			r.initProducer()
			r.submit(tt.produced)
			sh.consumer.Add(tt.kernelUsed)
			if got := r.free(8); got != tt.wantFree {
				t.Errorf("free = %d, want %d", got, tt.wantFree)
			}
			if got := r.pending(); got != tt.produced-tt.kernelUsed {
				t.Errorf("pending = %d, want %d", got, tt.produced-tt.kernelUsed)
			}

			var sh2 shared
			c := testRing(&sh2, tt.start, 8)
			c.initConsumer()
			sh2.producer.Add(tt.kernelUsed)
			if got := c.avail(8); got != tt.wantAvail {
				t.Errorf("avail = %d, want %d", got, tt.wantAvail)
			}
		})
	}
}

// TestRingRandom runs a producer ring and a consumer ring against a
// simulated kernel and checks the values arrive in order, none lost or
// duplicated, and the producer never overruns the consumer.
func TestRingRandom(t *testing.T) {
	const size = 16
	rng := rand.New(rand.NewPCG(3, 4))
	for _, start := range []uint32{0, 0xffffff00} {
		var sh shared
		slots := make([]uint64, size)
		r := testRing(&sh, start, size)
		r.initProducer()
		var next, want uint64 // next value produced, next value the "kernel" expects
		for range 20000 {
			// user side: produce up to k
			k := uint32(rng.IntN(size + 4))
			n := min(r.free(k), k)
			for i := range n {
				slots[(r.cachedProd+i)&r.mask] = next
				next++
			}
			r.submit(n)
			if inFlight := sh.producer.Load() - sh.consumer.Load(); inFlight > size {
				t.Fatalf("producer overran: %d in flight", inFlight)
			}
			// kernel side: consume some
			avail := sh.producer.Load() - sh.consumer.Load()
			c := uint32(rng.IntN(int(avail) + 1))
			for i := range c {
				if v := slots[(sh.consumer.Load()+i)&(size-1)]; v != want {
					t.Fatalf("kernel read %d, want %d", v, want)
				}
				want++
			}
			sh.consumer.Add(c)
		}

		// consumer ring
		var sh2 shared
		c := testRing(&sh2, start, size)
		c.initConsumer()
		next, want = 0, 0
		for range 20000 {
			room := size - (sh2.producer.Load() - sh2.consumer.Load())
			k := uint32(rng.IntN(int(room) + 1))
			for i := range k {
				slots[(sh2.producer.Load()+i)&(size-1)] = next
				next++
			}
			sh2.producer.Add(k)
			m := uint32(rng.IntN(size + 4))
			n := c.avail(m)
			if n > m {
				t.Fatalf("avail(%d) = %d", m, n)
			}
			for i := range n {
				if v := slots[(c.cachedCons+i)&c.mask]; v != want {
					t.Fatalf("user read %d, want %d", v, want)
				}
				want++
			}
			c.release(n)
		}
		if want == 0 {
			t.Fatal("nothing consumed")
		}
	}
}

func TestRingAllocs(t *testing.T) {
	var sh shared
	r := testRing(&sh, 0, 64)
	r.initProducer()
	if n := testing.AllocsPerRun(1000, func() {
		if r.free(8) >= 8 {
			r.submit(8)
		}
		sh.consumer.Add(8)
		_ = r.needWakeup()
	}); n != 0 {
		t.Fatalf("ring operations allocate %v times", n)
	}
}
