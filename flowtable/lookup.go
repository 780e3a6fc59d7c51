package flowtable

import (
	"math/bits"
	"sync/atomic"

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
// enough for the stack (and longer bursts measured slower, 32 no
// faster).
const batchChunk = 64

// LookupBatch looks up keys[i] into out[i] for every i < min(len(keys),
// len(out)). It gives the same answers as Lookup but is faster for a
// burst: in chunks of batchChunk keys it hashes every key and prefetches
// its home bucket, then reads every bucket and prefetches the hot lines
// of the sessions its matching tags name (or, past a home that
// overflowed, the next buckets, read in a second round), then finishes
// each lookup from cache. Prefetch instructions retire at once, so a
// chunk's misses are all in flight together: a chunk costs about two
// memory latencies plus its instructions, not two latencies per key.
// (Software-pipelined schedules, which overlap one group's hashing with
// another's misses, measured slower: see the package documentation.)
func (t *Table) LookupBatch(keys []packet.Tuple, out []Hit) {
	n := min(len(keys), len(out))
	s0, s1 := t.seed, seed2(t.seed)
	shift1, nbPer := t.shardShift-1, t.nbPer
	buckets, hots := t.buckets, t.hots
	var hs [batchChunk]uint64
	var bs, es [batchChunk]uint32
	for lo := 0; lo < n; lo += batchChunk {
		// Resliced to one length, so that the loops below index them
		// without bounds checks.
		ks := keys[lo:min(lo+batchChunk, n)]
		os := out[lo:][:len(ks)]
		hs, bs, es := hs[:len(ks)], bs[:len(ks)], es[:len(ks)]
		stages.Mark(stages.Hash)
		hashChunk(ks, hs, bs, s0, s1, shift1, nbPer)
		stages.Mark(stages.BucketTouch)
		prefetchBuckets(buckets, bs)
		stages.Mark(stages.SessionTouch)
		// The entry of each key's first matching tag in its home bucket.
		// The session lines of the first two matching tags (two when tags
		// collide) are prefetched. A key with no tag at home is absent
		// unless its home overflowed; then it may live in the buckets
		// after it, which are prefetched and read in a second round (3 %
		// of the keys of a full table), so that no key's lookup waits on
		// two misses in a row.
		var ids [2 * batchChunk]uint32
		var next [lateScan * batchChunk]uint32
		var late [batchChunk]uint8
		m, nl := 0, 0
		for i, h := range hs {
			bk := &buckets[bs[i]]
			c0, c1 := bk.ctrl[0].Load(), bk.ctrl[1].Load()
			lanes := tagLanes(c0, c1, h)
			if lanes == 0 {
				es[i] = absent
				if c1 >= ovfOne {
					es[i] = noEntry
					base := t.shardOf(h) * nbPer
					b := t.next(bs[i] - base)
					bs[i] = base + b
					late[nl&(batchChunk-1)] = uint8(i)
					for k := range lateScan {
						next[(lateScan*nl+k)&(len(next)-1)] = base + b
						b = t.next(b)
					}
					nl++
				}
				continue
			}
			e := bk.ids[laneOf(lanes)&15].Load()
			es[i], ids[m&(len(ids)-1)] = e, e>>1
			m++
			if lanes &= lanes - 1; lanes != 0 {
				ids[m&(len(ids)-1)] = bk.ids[laneOf(lanes)&15].Load() >> 1
				m++
			}
		}
		prefetchHots(hots, ids[:m])
		if nl > 0 {
			prefetchBuckets(buckets, next[:lateScan*nl])
			m = 0
			for _, i := range late[:nl] {
				es[i], m = t.lateCandidate(hs[i], bs[i], ids[:], m)
			}
			prefetchHots(hots, ids[:m])
		}
		stages.Mark(stages.FinalCheck)
		// Confirm each candidate against its session (confirm, with the
		// key's fields compared where they lie); a key whose first
		// candidate is not it (a tag shared in the bucket, a key further
		// than the second round looked, a writer in between) takes the
		// whole lookup.
		var slow uint64 // keys that take the whole lookup (a chunk is 64)
		for i, e := range es {
			k, o := &ks[i], &os[i]
			if e < absent {
				// One branch for the key check: the first loads of meta,
				// the addresses and the ports lie in one line and are
				// compared together (liveBit and the protocol as one
				// masked compare); meta is read again after them, the
				// seqlock's second read.
				s, d := &hots[e>>1], e&1
				m := atomic.LoadUint64(&s.meta)
				x := (m&(liveBit|0xff) ^ (liveBit | uint64(k.Proto))) |
					(atomic.LoadUint64(&s.addrs[d]) ^ (uint64(k.SrcAddr)<<32 | uint64(k.DstAddr))) |
					uint64(atomic.LoadUint32(&s.ports[d])^(uint32(k.SrcPort)<<16|uint32(k.DstPort)))
				if x == 0 && atomic.LoadUint64(&s.meta) == m {
					*o = Hit{ID: e >> 1, Gen: genOf(m), Dir: Dir(d), Found: true}
					continue
				}
			} else if e == absent {
				*o = Hit{}
				continue
			}
			slow |= 1 << (i & (batchChunk - 1))
		}
		// The whole lookups after the loop, so that no call in it makes
		// the compiler keep the loop's values in memory.
		for ; slow != 0; slow &= slow - 1 {
			i := bits.TrailingZeros64(slow)
			w0, w1 := words(&ks[i])
			o := &os[i]
			o.ID, o.Dir, o.Gen, o.Found = t.lookup(hs[i], w0, w1)
		}
	}
}

// hashChunk is LookupBatch's first step: hs[i] = hash2 of ks[i] (the
// key's words loaded from its fields, the seed's second word s1
// computed once) and bs[i] its home bucket (bucketOf, with shift1 =
// shardShift-1). It is a call of its own, once per chunk, because
// inlined into LookupBatch the multiplies' fixed registers made the
// compiler move and reload LookupBatch's other values on every key.
//
//go:noinline
func hashChunk(ks []packet.Tuple, hs []uint64, bs []uint32, s0, s1 uint64, shift1 uint, nbPer uint32) {
	hs, bs = hs[:len(ks)], bs[:len(ks)]
	for i := range ks {
		w0, w1 := words(&ks[i])
		h := mix(w0^s0, w1^s1)
		base, j := homeIn(h, shift1, nbPer)
		hs[i], bs[i] = h, base+j
	}
}

// lateScan is how many buckets past home LookupBatch's second round
// reads for a key whose home holds no tag of it but overflowed: at full
// load (designLoad) about 3.4 % of the keys live past home and 0.8 % past
// the second bucket after it, and the lines are adjacent.
const lateScan = 2

// lateCandidate is LookupBatch's second round for one key: it looks for
// the key with hash h in the lateScan buckets from bucket b on (the
// first round prefetched them) and returns the entry of its first
// matching tag, appending the session lines of up to two matching tags
// to ids at m, and the new length. It returns absent when a bucket that
// nothing passed proves the key absent, and noEntry when the key may lie
// further (the whole lookup decides). (m is passed and returned, not by
// pointer: a counter whose address is taken lives in memory in the
// caller's loop.)
func (t *Table) lateCandidate(h uint64, b uint32, ids []uint32, m int) (uint32, int) {
	base := t.shardOf(h) * t.nbPer
	b -= base
	for range lateScan {
		bk := &t.buckets[base+b]
		if e, e2, ok := candidates(bk, h); ok {
			ids[m&(len(ids)-1)] = e >> 1
			m++
			if e2 != noEntry {
				ids[m&(len(ids)-1)] = e2 >> 1
				m++
			}
			return e, m
		}
		if bk.ctrl[1].Load() < ovfOne {
			return absent, m
		}
		b = t.next(b)
	}
	return noEntry, m
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

// noEntry is no index entry: ids are below MaxSessions < 2^31-1, so an
// entry is never all ones, nor all ones but the last bit (absent: a
// lookup proved the key absent).
const (
	noEntry = ^uint32(0)
	absent  = ^uint32(1)
)

// words is Tuple.Words through a pointer: the same two words, loaded
// from the tuple's fields, where a copy of the five-field struct would
// go through memory.
func words(k *packet.Tuple) (uint64, uint64) {
	return uint64(k.SrcAddr)<<32 | uint64(k.DstAddr),
		uint64(k.SrcPort)<<48 | uint64(k.DstPort)<<32 | uint64(k.Proto)
}

// tagLanes returns the lanes of a bucket with control words c0, c1 whose
// tag is hash h's, one bit each (laneOf names the lowest).
func tagLanes(c0, c1, h uint64) uint64 {
	pat := tagOf(h) * lanes8
	return zeroBytes(c0^pat)>>7 | (zeroBytes(c1^pat)&ctrl1Tag)>>6
}

// laneOf returns the lane of the lowest bit of a tagLanes mask: bit 8l
// is lane l of ctrl[0], bit 8l+1 lane 8+l of ctrl[1].
func laneOf(lanes uint64) int {
	z := bits.TrailingZeros64(lanes)
	return z>>3 | (z&1)<<3
}
