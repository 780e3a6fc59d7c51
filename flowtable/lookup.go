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
// burst: in chunks of batchChunk keys it first loads the home bucket of
// every key, then the session line(s) of every key's first tag match,
// then finishes each lookup from cache, so that the cache misses of a
// burst overlap instead of running one after the other. Each stage is a
// tight loop of independent loads, so that many are in flight at once.
func (t *Table) LookupBatch(keys []packet.Tuple, out []Hit) {
	n := min(len(keys), len(out))
	var hs [batchChunk]uint64
	var bs [batchChunk]uint32
	for lo := 0; lo < n; lo += batchChunk {
		ks := keys[lo:min(lo+batchChunk, n)]
		for i := range ks {
			w0, w1 := ks[i].Words()
			h := hash2(t.seed, w0, w1)
			base, b := t.home(h)
			hs[i], bs[i] = h, base+b
		}
		for i := range ks {
			t.buckets[bs[i]].ctrl[0].Load()
		}
		for i := range ks {
			bk := &t.buckets[bs[i]]
			m := zeroBytes(bk.ctrl[0].Load() ^ tagOf(hs[i])*lanes8)
			if m == 0 {
				continue
			}
			e := bk.ids[bits.TrailingZeros64(m)>>3].Load()
			s := &t.sessions[e>>1]
			// The key's address word and its ports word may lie on two
			// cache lines: touch both.
			atomic.LoadUint64(&s.addrs[e&1])
			atomic.LoadUint64(&s.ports[e&1])
		}
		for i := range ks {
			w0, w1 := ks[i].Words()
			o := &out[lo+i]
			o.ID, o.Dir, o.Gen, o.Found = t.lookup(hs[i], w0, w1)
		}
	}
}
