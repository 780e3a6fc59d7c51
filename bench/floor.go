package bench

import (
	"math/rand/v2"
	"time"

	"github.com/fastnat/fastnat/internal/hugepage"
)

// Floor is the machine's memory floor under a flow-table lookup: the cost
// of one random cache-line read from an array of a given size, alone
// (each read waits for the one before: pure latency) and overlapped
// (floorChains independent reads in flight at once, as a burst's
// prefetched lookups are). A packet of a large table reads at least two
// random lines, its index bucket and its session's hot line, so twice
// Overlapped is what a packet cannot beat.
type Floor struct {
	Bytes      int64   `json:"bytes"`         // the array's size
	Huge       int64   `json:"huge_bytes"`    // of it on huge pages, as the flow table's
	Alone      float64 `json:"alone_ns"`      // ns per dependent read
	Overlapped float64 `json:"overlapped_ns"` // ns per read with floorChains in flight
}

// floorChains is how many reads MeasureFloor keeps in flight: more than a
// core's outstanding misses, so that the memory system, not the loop,
// sets the pace.
const floorChains = 16

// MeasureFloor measures the floor for an array of bytes (at least 64
// MiB), allocated like the flow table's storage (huge pages where the
// kernel has them), with reads random reads per measurement; the best of
// three is kept (noise only ever adds time). The reads are pointer chases
// around one random cycle through every line, so no hardware prefetcher
// can guess the next.
func MeasureFloor(bytes int64, reads int) (Floor, error) {
	lines := max(bytes, 64<<20) / 64
	a, err := hugepage.Alloc[[8]uint64](int(lines))
	if err != nil {
		return Floor{}, err
	}
	defer a.Free()
	s := a.S
	// Sattolo's algorithm: a random cyclic permutation, so a chase from
	// any line visits every line before it returns.
	perm := make([]uint32, len(s))
	for i := range perm {
		perm[i] = uint32(i)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := len(perm) - 1; i > 0; i-- {
		j := r.IntN(i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	for i := range perm {
		s[perm[i]][0] = uint64(perm[(i+1)%len(perm)])
	}
	f := Floor{Bytes: a.Bytes(), Huge: a.Huge(), Alone: 1e18, Overlapped: 1e18}
	for range 3 {
		f.Alone = min(f.Alone, chase(s, 1, reads))
		f.Overlapped = min(f.Overlapped, chase(s, floorChains, reads))
	}
	return f, nil
}

// floorSink keeps the chases from being optimised away.
var floorSink uint64

// chase follows k chains through s, reads reads in all, and returns ns
// per read.
func chase(s [][8]uint64, k, reads int) float64 {
	var p [floorChains]uint64
	for c := range k {
		p[c] = uint64(c * len(s) / k)
	}
	start := time.Now()
	for range reads / k {
		for c := range k {
			p[c] = s[p[c]][0]
		}
	}
	d := time.Since(start)
	for c := range k {
		floorSink += p[c]
	}
	return float64(d.Nanoseconds()) / float64(reads/k*k)
}
