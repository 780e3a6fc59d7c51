package afxdp

import "testing"

// TestPrefetchRx runs the prefetch over the cases that could go wrong in
// its index arithmetic: a burst that wraps the ring, free-running indices
// that wrap uint32, the UMEM's last byte, the whole ring. A prefetch has
// no effect to observe; the test shows that none of these faults or
// writes, and that the call does not allocate.
func TestPrefetchRx(t *testing.T) {
	const size = 8
	umem := make([]byte, 4*2048)
	descs := make([]desc, size)
	for i := range descs {
		descs[i] = desc{Addr: uint64(i%4)*2048 + headroom, Len: 64}
	}
	descs[size-1].Addr = uint64(len(umem) - 1)
	want := append([]desc(nil), descs...)
	tests := []struct {
		name     string
		start, n uint32
	}{
		{"none", 3, 0},
		{"one", 0, 1},
		{"wraps the ring", size - 2, 5},
		{"wraps uint32", 0xfffffffe, 4},
		{"whole ring", 5, size},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(10, func() { prefetchRx(umem, descs, tt.start, tt.n) })
			if allocs != 0 {
				t.Errorf("%v allocations", allocs)
			}
			for i := range descs {
				if descs[i] != want[i] {
					t.Fatalf("descriptor %d changed: %+v, want %+v", i, descs[i], want[i])
				}
			}
		})
	}
}
