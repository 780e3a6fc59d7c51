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

// BenchmarkLookupFloor measures how far LookupBatch is from its own
// memory pattern (lookupPattern) over a full table of
// FASTNAT_LOOKUP_FLOOR sessions (1M if unset), random present keys in
// chunks of 64, the two alternated in short blocks so that a loaded
// machine slows both alike; each iteration is one block of each:
//
//	FASTNAT_LOOKUP_FLOOR=10000000 go test ./flowtable -run '^$' -bench BenchmarkLookupFloor -benchtime 300x
//
// It reports the medians: batch-ns/key, pattern-ns/key and their
// per-block ratio.
func BenchmarkLookupFloor(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("FASTNAT_LOOKUP_FLOOR"))
	if n <= 0 {
		n = 1 << 20
	}
	tb := mustNew(b, Config{MaxSessions: n})
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
	const chunks = 128
	ns := [2][]float64{}
	var ratio []float64
	r := 0
	b.ResetTimer()
	for range b.N {
		var blk [2]float64
		for s, step := range steps {
			start := time.Now()
			for range chunks {
				o := r % (len(keys) / 64) * 64
				step(keys[o : o+64])
				r++
			}
			blk[s] = float64(time.Since(start).Nanoseconds()) / (chunks * 64)
			ns[s] = append(ns[s], blk[s])
		}
		ratio = append(ratio, blk[0]/blk[1])
	}
	b.StopTimer()
	for s := range ns {
		slices.Sort(ns[s])
	}
	slices.Sort(ratio)
	m := tb.Memory()
	b.ReportMetric(ns[0][b.N/2], "batch-ns/key")
	b.ReportMetric(ns[1][b.N/2], "pattern-ns/key")
	b.ReportMetric(ratio[b.N/2], "batch/pattern")
	b.ReportMetric(100*float64(m.Huge)/float64(m.Hot+m.Cold+m.Index), "%huge")
}
