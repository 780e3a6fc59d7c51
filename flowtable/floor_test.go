package flowtable

import (
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastnat/fastnat/packet"
)

// patternSink keeps lookupPattern's loads from being optimised away.
var patternSink uint64

// lookupPattern does LookupBatch's memory accesses for one chunk of keys
// and as little else as it can: hash each key and prefetch its home
// bucket, read an entry of each bucket and prefetch the hot line it
// names, read each hot line. Its cost is the floor under LookupBatch on
// this machine and table: what the two random lines of every key cost
// when nothing else is done.
func (t *Table) lookupPattern(ks []packet.Tuple) {
	var bs, ids [batchChunk]uint32
	n := min(len(ks), batchChunk)
	for i := range ks[:n] {
		w0, w1 := words(&ks[i])
		bs[i] = t.bucketOf(hash2(t.seed, w0, w1))
	}
	prefetchBuckets(t.buckets, bs[:n])
	for i := range bs[:n] {
		ids[i] = t.buckets[bs[i]].ids[0].Load() >> 1
	}
	prefetchHots(t.hots, ids[:n])
	for _, id := range ids[:n] {
		patternSink += atomic.LoadUint64(&t.hots[id].meta)
	}
}

// TestLookupFloor prints how far LookupBatch is from its own memory
// pattern (lookupPattern) over a full table of FASTNAT_LOOKUP_FLOOR
// sessions, random present keys in chunks of 64, the two alternated in
// short blocks so that a loaded machine slows both alike:
//
//	FASTNAT_LOOKUP_FLOOR=10000000 go test ./flowtable -run TestLookupFloor -v
//
// It is a measurement, not a check: without the variable it skips.
func TestLookupFloor(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FASTNAT_LOOKUP_FLOOR"))
	if n <= 0 {
		t.Skip("set FASTNAT_LOOKUP_FLOOR to a session count to measure")
	}
	tb := mustNew(t, Config{MaxSessions: n})
	for i := range uint64(n) {
		tb.Insert(testSession(i), 0, 60, 0)
	}
	keys := make([]packet.Tuple, 64<<10)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range keys {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		j := x * 2685821657736338717 % uint64(n)
		keys[i] = origKey(j)
		if x&(1<<40) != 0 {
			keys[i] = replyKey(j)
		}
	}
	var out [64]Hit
	steps := []func(ks []packet.Tuple){
		func(ks []packet.Tuple) { tb.LookupBatch(ks, out[:]) },
		tb.lookupPattern,
	}
	const blocks, chunks = 300, 128
	ns := [2][]float64{}
	var ratio []float64
	r := 0
	for range blocks {
		var b [2]float64
		for s, step := range steps {
			start := time.Now()
			for range chunks {
				o := r % (len(keys) / 64) * 64
				step(keys[o : o+64])
				r++
			}
			b[s] = float64(time.Since(start).Nanoseconds()) / (chunks * 64)
			ns[s] = append(ns[s], b[s])
		}
		ratio = append(ratio, b[0]/b[1])
	}
	for s := range ns {
		slices.Sort(ns[s])
	}
	slices.Sort(ratio)
	m := tb.Memory()
	t.Logf("%d sessions: LookupBatch %.1f ns/key (p10 %.1f), its memory pattern alone %.1f (p10 %.1f); per block %.2fx (%.2f-%.2f); %.0f%% of %d MiB on huge pages",
		n, ns[0][blocks/2], ns[0][blocks/10], ns[1][blocks/2], ns[1][blocks/10],
		ratio[blocks/2], ratio[blocks/4], ratio[3*blocks/4], 100*float64(m.Huge)/float64(m.Hot+m.Cold+m.Index), m.Total()>>20)
}
