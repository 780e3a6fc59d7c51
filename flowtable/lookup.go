package flowtable

import (
	"math/bits"

	"github.com/fastnat/fastnat/internal/stages"
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

// batchChunk is how many keys LookupBatch has in flight: a default
// burst, enough to cover a DRAM latency with independent misses, few
// enough for the stack (and longer bursts measured slower).
const batchChunk = 64

// LookupBatch looks up keys[i] into out[i] for every i < min(len(keys),
// len(out)). It gives the same answers as Lookup but is faster for a
// burst: in chunks of batchChunk keys it hashes every key and prefetches
// its home bucket, then reads every bucket and prefetches the hot line of
// the session its first matching tag names, then finishes each lookup
// from cache. Prefetch instructions retire at once, so a chunk's misses
// are all in flight together: a chunk costs about two memory latencies
// plus its instructions, not two latencies per key.
func (t *Table) LookupBatch(keys []packet.Tuple, out []Hit) {
	n := min(len(keys), len(out))
	var hs [batchChunk]uint64
	var bs, es [batchChunk]uint32
	for lo := 0; lo < n; lo += batchChunk {
		ks := keys[lo:min(lo+batchChunk, n)]
		os := out[lo : lo+len(ks)]
		stages.Mark(stages.Hash)
		for i := range ks {
			w0, w1 := ks[i].Words()
			h := hash2(t.seed, w0, w1)
			base, b := t.home(h)
			hs[i], bs[i] = h, base+b
		}
		stages.Mark(stages.BucketTouch)
		prefetchBuckets(t.buckets, bs[:len(ks)])
		stages.Mark(stages.SessionTouch)
		// The entry of each key's first matching tag in its home bucket
		// (noEntry: none); its session's line is prefetched.
		var ids [batchChunk]uint32
		m := 0
		for i := range ks {
			bk := &t.buckets[bs[i]]
			pat := tagOf(hs[i]) * lanes8
			es[i] = noEntry
			if z := zeroBytes(bk.ctrl[0].Load() ^ pat); z != 0 {
				es[i] = bk.ids[bits.TrailingZeros64(z)>>3].Load()
			} else if z := zeroBytes(bk.ctrl[1].Load()^pat) & ctrl1Tag; z != 0 {
				es[i] = bk.ids[8+bits.TrailingZeros64(z)>>3].Load()
			} else {
				continue
			}
			ids[m] = es[i] >> 1
			m++
		}
		prefetchHots(t.hots, ids[:m])
		stages.Mark(stages.FinalCheck)
		// Confirm each candidate against its session; a key whose first
		// candidate is not it (a tag shared in the bucket, a key beyond
		// its home bucket, a writer in between) takes the whole lookup.
		for i := range ks {
			w0, w1 := ks[i].Words()
			o := &os[i]
			if e := es[i]; e != noEntry {
				if g, ok := t.confirm(e, w0, w1); ok {
					*o = Hit{ID: e >> 1, Gen: g, Dir: Dir(e & 1), Found: true}
					continue
				}
			}
			o.ID, o.Dir, o.Gen, o.Found = t.lookup(hs[i], w0, w1)
		}
	}
}

// noEntry is no index entry: ids are 31 bits, so an entry is never all
// ones.
const noEntry = ^uint32(0)
