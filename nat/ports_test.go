package nat

import (
	"sync"
	"testing"
)

func TestPortSpaceClaimRelease(t *testing.T) {
	var s portSpace
	if !s.claim(1024) || s.claim(1024) {
		t.Fatal("a port must be claimable exactly once")
	}
	s.release(1024)
	if !s.claim(1024) {
		t.Fatal("a released port must be claimable again")
	}
	if s.inUse.Load() != 1 {
		t.Fatalf("inUse %d, want 1", s.inUse.Load())
	}
}

func TestPortSpaceClaimRangeFillsEveryPortOnce(t *testing.T) {
	var s portSpace
	const lo, hi = 1000, 1199 // spans several 64-bit words, unaligned
	seen := map[uint16]bool{}
	for i := 0; i < hi-lo+1; i++ {
		p, ok := s.claimRange(lo, hi, uint16(lo+(i*37)%(hi-lo+1)))
		if !ok {
			t.Fatalf("range full after %d claims", i)
		}
		if p < lo || p > hi || seen[p] {
			t.Fatalf("claim %d returned %d (dup %v)", i, p, seen[p])
		}
		seen[p] = true
	}
	if _, ok := s.claimRange(lo, hi, lo); ok {
		t.Fatal("claim from a full range succeeded")
	}
	s.release(1100)
	if p, ok := s.claimRange(lo, hi, lo); !ok || p != 1100 {
		t.Fatalf("after release got %d %v, want 1100", p, ok)
	}
}

func TestPortSpaceConcurrentClaimsAreUnique(t *testing.T) {
	var s portSpace
	const workers, each = 4, 2000
	got := make([][]uint16, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				p, ok := s.claimRange(1024, 65535, uint16(1024+w*1000+i))
				if !ok {
					t.Error("range full")
					return
				}
				got[w] = append(got[w], p)
			}
		}(w)
	}
	wg.Wait()
	seen := map[uint16]bool{}
	for _, ps := range got {
		for _, p := range ps {
			if seen[p] {
				t.Fatalf("port %d claimed twice", p)
			}
			seen[p] = true
		}
	}
}
