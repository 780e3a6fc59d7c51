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
		// (noEntry: none). The session lines of the first two matching
		// tags (two when tags collide) are prefetched. A key with no tag
		// at home whose bucket overflowed may live in the next bucket:
		// that bucket is prefetched and read in a second round (a few
		// percent of the keys of a full table), so that no key's lookup
		// waits on two misses in a row.
		var ids [2 * batchChunk]uint32
		var next [batchChunk]uint32
		var late [batchChunk]uint8
		m, nl := 0, 0
		for i := range ks {
			bk := &t.buckets[bs[i]]
			es[i] = noEntry
			e, e2, ok := candidates(bk, hs[i])
			if !ok {
				if bk.ctrl[1].Load() >= ovfOne {
					b := bs[i] % t.nbPer
					bs[i] += t.next(b) - b
					next[nl], late[nl] = bs[i], uint8(i)
					nl++
				}
				continue
			}
			es[i], ids[m] = e, e>>1
			m++
			if e2 != noEntry {
				ids[m] = e2 >> 1
				m++
			}
		}
		prefetchHots(t.hots, ids[:m])
		if nl > 0 {
			prefetchBuckets(t.buckets, next[:nl])
			m = 0
			for _, i := range late[:nl] {
				if e, _, ok := candidates(&t.buckets[bs[i]], hs[i]); ok {
					es[i], ids[m] = e, e>>1
					m++
				}
			}
			prefetchHots(t.hots, ids[:m])
		}
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

// candidates returns the entries of bucket bk in the first two lanes
// whose tag is hash h's (e2 noEntry when there is one), and whether
// there is any.
func candidates(bk *bucket, h uint64) (e, e2 uint32, ok bool) {
	pat := tagOf(h) * lanes8
	z0, z1 := zeroBytes(bk.ctrl[0].Load()^pat), zeroBytes(bk.ctrl[1].Load()^pat)&ctrl1Tag
	if z0|z1 == 0 {
		return noEntry, noEntry, false
	}
	if z0 == 0 {
		return bk.ids[8+bits.TrailingZeros64(z1)>>3].Load(), noEntry, true
	}
	e = bk.ids[bits.TrailingZeros64(z0)>>3].Load()
	if z0 &= z0 - 1; z0 != 0 {
		return e, bk.ids[bits.TrailingZeros64(z0)>>3].Load(), true
	}
	if z1 != 0 {
		return e, bk.ids[8+bits.TrailingZeros64(z1)>>3].Load(), true
	}
	return e, noEntry, true
}

// noEntry is no index entry: ids are 31 bits, so an entry is never all
// ones.
const noEntry = ^uint32(0)
