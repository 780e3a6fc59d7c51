package flowtable

import (
	"math/bits"
	"sync/atomic"

	"github.com/fastnat/fastnat/packet"
)

// Lookup finds the session k belongs to and the direction k travels in it.
// It takes no lock, writes nothing shared and allocates nothing.
func (t *Table) Lookup(k packet.Tuple) (id uint32, dir Dir, ok bool) {
	w0, w1 := k.Words()
	id, dir, _, ok = t.lookup(hash2(t.seed, w0, w1), w0, w1)
	return id, dir, ok
}

// LookupGen is Lookup that also returns the generation of the session it
// found, for Valid and DeleteGen.
func (t *Table) LookupGen(k packet.Tuple) (id uint32, dir Dir, gen uint32, ok bool) {
	w0, w1 := k.Words()
	return t.lookup(hash2(t.seed, w0, w1), w0, w1)
}

// Hit is the result of one lookup of LookupBatch.
type Hit struct {
	ID    uint32 // session id
	Gen   uint32 // its generation (see Valid)
	Dir   Dir    // direction of the key in the session
	Found bool   // false: no session has this key
}

// batchChunk is how many keys LookupBatch has in flight: enough to cover
// a DRAM latency with independent loads, few enough for the stack.
const batchChunk = 32

// LookupBatch looks up keys[i] into out[i] for every i < min(len(keys),
// len(out)). It gives the same answers as Lookup but is faster for a
// burst: it first loads the home bucket of every key, then the session of
// every key's first tag match, then finishes each lookup from cache, so
// the cache misses of a burst overlap instead of running one after the
// other.
func (t *Table) LookupBatch(keys []packet.Tuple, out []Hit) {
	n := min(len(keys), len(out))
	var hs [batchChunk]uint64
	for lo := 0; lo < n; lo += batchChunk {
		hi := min(lo+batchChunk, n)
		ks := keys[lo:hi]
		for i := range ks {
			w0, w1 := ks[i].Words()
			h := hash2(t.seed, w0, w1)
			hs[i] = h
			base, b := t.home(h)
			t.buckets[base+b].ctrl[0].Load()
		}
		for i := range ks {
			t.prefetchSession(hs[i])
		}
		for i := range ks {
			w0, w1 := ks[i].Words()
			o := &out[lo+i]
			o.ID, o.Dir, o.Gen, o.Found = t.lookup(hs[i], w0, w1)
		}
	}
}

// prefetchSession touches the session named by the first entry of h's
// home bucket whose tag matches, by loading its ports word.
func (t *Table) prefetchSession(h uint64) {
	base, b := t.home(h)
	bk := &t.buckets[base+b]
	m := zeroBytes(bk.ctrl[0].Load() ^ tagOf(h)*lanes8)
	if m == 0 {
		return
	}
	e := bk.ids[bits.TrailingZeros64(m)>>3].Load()
	atomic.LoadUint64(&t.sessions[e>>1].ports[e&1])
}
