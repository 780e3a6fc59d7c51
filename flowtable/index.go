package flowtable

import (
	"math/bits"
	"sync/atomic"
)

// bucketLanes is the number of key entries in one 64-byte bucket.
const bucketLanes = 12

// bucket is one cache line of a shard's index. Lane i holds an entry
// ids[i] = session id<<1 | Dir and its 8-bit tag (hash bits the bucket
// position does not use; 0 = empty lane) in byte i of ctrl[0] (lanes 0-7)
// or ctrl[1] (lanes 8-11, bytes 0-3). The upper half of ctrl[1] counts the
// entries that hash to this bucket or an earlier one of the probe sequence
// but sit beyond it (F14's "outbound overflow"); a lookup that reaches a
// bucket with count 0 stops there. Entries never move, so a lookup cannot
// miss an entry that stays in the table while it runs.
//
// All words are atomic: writers (under the shard lock) store, lock-free
// readers load. A writer stores ids[i] before the tag that makes lane i
// visible.
type bucket struct {
	ctrl [2]atomic.Uint64
	ids  [bucketLanes]atomic.Uint32
}

const (
	lanes8   = 0x0101010101010101
	lows7    = 0x7f7f7f7f7f7f7f7f
	ctrl1Tag = 0x0000000080808080 // lanes of ctrl[1] that are tags, in zeroBytes results
	ovfOne   = 1 << 32            // overflow count unit in ctrl[1]
)

// zeroBytes returns x with 0x80 in every byte that is zero and 0 in every
// other byte, exactly (no borrow false positives).
func zeroBytes(x uint64) uint64 {
	return ^((x&lows7 + lows7) | x | lows7)
}

// tagOf returns the 8-bit tag of a hash, never 0 (the empty lane).
func tagOf(h uint64) uint64 {
	if t := h & 0xff; t != 0 {
		return t
	}
	return 1
}

// home returns the first bucket of h's probe sequence: the base of its
// shard and the offset in it. Bits 16..47 choose the bucket (by
// multiply-shift, so shards need not be a power of two in buckets), the
// top bits the shard, the low byte the tag.
func (t *Table) home(h uint64) (base, i uint32) { return homeIn(h, t.shardShift-1, t.nbPer) }

// homeIn is home for a table of shardShift shift1+1 and nbPer buckets a
// shard, for a loop that keeps both in registers (hashChunk). The shard
// is h>>1>>(shift1&63), which is h>>shardShift: shardShift is 1..64, and
// a count the compiler knows is below 64 needs no test for 64.
func homeIn(h uint64, shift1 uint, nbPer uint32) (base, i uint32) {
	base = uint32(h>>1>>(shift1&63)) * nbPer
	i = uint32(uint64(uint32(h>>16)) * uint64(nbPer) >> 32)
	return base, i
}

// lookup finds the live session with key words (w0, w1) whose hash is h.
// It takes no lock and writes nothing. For each lane whose tag matches it
// confirms the entry against the session's own copy of the key in its
// hot line, reading it as a seqlock on hot.meta: meta, the key's
// addresses and ports, meta again. A slot deleted and reused between the
// two reads of meta changes its generation, so an unchanged word means
// that the key belongs to the generation meta names.
func (t *Table) lookup(h, w0, w1 uint64) (id uint32, dir Dir, gen uint32, ok bool) {
	pat := tagOf(h) * lanes8
	base, i := t.home(h)
	for range t.nbPer {
		bk := &t.buckets[base+i]
		c0 := bk.ctrl[0].Load()
		c1 := bk.ctrl[1].Load()
		m0, m1 := zeroBytes(c0^pat), zeroBytes(c1^pat)&ctrl1Tag
		for m0|m1 != 0 {
			var lane int
			if m0 != 0 {
				lane = bits.TrailingZeros64(m0) >> 3
				m0 &= m0 - 1
			} else {
				lane = 8 + bits.TrailingZeros64(m1)>>3
				m1 &= m1 - 1
			}
			e := bk.ids[lane].Load()
			if g, ok := t.confirm(e, w0, w1); ok {
				return e >> 1, Dir(e & 1), g, true
			}
		}
		if c1 < ovfOne {
			return 0, 0, 0, false
		}
		if i++; i == t.nbPer {
			i = 0
		}
	}
	return 0, 0, 0, false
}

// confirm reports whether index entry e (id<<1 | dir) names a live
// session whose key in that direction has words (w0, w1), and its
// generation: the seqlock read of the session's hot line.
func (t *Table) confirm(e uint32, w0, w1 uint64) (gen uint32, ok bool) {
	s := &t.hots[e>>1]
	m := atomic.LoadUint64(&s.meta)
	ok = m&liveBit != 0 && uint8(m) == uint8(w1) && atomic.LoadUint64(&s.addrs[e&1]) == w0 &&
		atomic.LoadUint32(&s.ports[e&1]) == uint32(w1>>32) && atomic.LoadUint64(&s.meta) == m
	return genOf(m), ok
}

// add stores entry e with hash h in the first free lane of h's probe
// sequence, raising the overflow count of every bucket it passes. It
// returns how many buckets it probed, or 0 if the shard has no free lane.
// The caller holds h's shard lock.
func (t *Table) add(h uint64, e uint32) int {
	base, i := t.home(h)
	tag := tagOf(h)
	j := i
	for n := 1; n <= int(t.nbPer); n++ {
		bk := &t.buckets[base+j]
		c0 := bk.ctrl[0].Load()
		c1 := bk.ctrl[1].Load()
		free0, free1 := zeroBytes(c0), zeroBytes(c1)&ctrl1Tag
		if free0|free1 != 0 {
			for k := i; k != j; k = t.next(k) {
				c := &t.buckets[base+k].ctrl[1]
				c.Store(c.Load() + ovfOne)
			}
			if free0 != 0 {
				lane := bits.TrailingZeros64(free0) >> 3
				bk.ids[lane].Store(e)
				bk.ctrl[0].Store(c0 | tag<<(8*lane))
			} else {
				lane := bits.TrailingZeros64(free1) >> 3
				bk.ids[8+lane].Store(e)
				bk.ctrl[1].Store(c1 | tag<<(8*lane))
			}
			return n
		}
		j = t.next(j)
	}
	return 0
}

// remove clears the lane holding entry e (hash h) and lowers the overflow
// counts add raised. It reports whether e was found. The caller holds h's
// shard lock.
func (t *Table) remove(h uint64, e uint32) bool {
	base, i := t.home(h)
	pat := tagOf(h) * lanes8
	j := i
	for range t.nbPer {
		bk := &t.buckets[base+j]
		c0 := bk.ctrl[0].Load()
		c1 := bk.ctrl[1].Load()
		for m := zeroBytes(c0 ^ pat); m != 0; m &= m - 1 {
			lane := bits.TrailingZeros64(m) >> 3
			if bk.ids[lane].Load() == e {
				bk.ctrl[0].Store(c0 &^ (0xff << (8 * lane)))
				t.unwind(base, i, j)
				return true
			}
		}
		for m := zeroBytes(c1^pat) & ctrl1Tag; m != 0; m &= m - 1 {
			lane := bits.TrailingZeros64(m) >> 3
			if bk.ids[8+lane].Load() == e {
				bk.ctrl[1].Store(c1 &^ (0xff << (8 * lane)))
				t.unwind(base, i, j)
				return true
			}
		}
		if c1 < ovfOne {
			return false
		}
		j = t.next(j)
	}
	return false
}

// unwind lowers the overflow counts of buckets i..j-1 of a shard.
func (t *Table) unwind(base, i, j uint32) {
	for k := i; k != j; k = t.next(k) {
		c := &t.buckets[base+k].ctrl[1]
		c.Store(c.Load() - ovfOne)
	}
}

func (t *Table) next(i uint32) uint32 {
	if i++; i == t.nbPer {
		return 0
	}
	return i
}

// bucketOf returns the home bucket of h: base+i of home.
func (t *Table) bucketOf(h uint64) uint32 {
	base, i := t.home(h)
	return base + i
}

// A free (probe's result) is a free lane of a key's home bucket, where
// its index entry may go, packed in a word so that a writer keeps two in
// registers: the bucket's index in Table.buckets <<32 | lane<<8 | 1; 0
// for none.
type free uint64

func makeFree(bucket uint32, lane int) free {
	return free(uint64(bucket)<<32 | uint64(lane)<<8 | 1)
}

func (f free) bucket() uint32 { return uint32(f >> 32) }
func (f free) lane() int      { return int(uint32(f) >> 8) }

// probe walks the probe sequence of a key with words (w0, w1) and hash h
// once, as lookup and add would each walk it: it reports false if a live
// session has the key, else true and the first free lane, where add would
// put the key's entry (place puts it there) if that is in the key's home
// bucket, else 0 (add then finds it). The caller holds h's shard
// lock and changes nothing in the shard between probe and place but the
// place of another key into a different bucket.
func (t *Table) probe(h, w0, w1 uint64) (f free, absent bool) {
	pat := tagOf(h) * lanes8
	b := t.bucketOf(h)
	bk := &t.buckets[b]
	c0, c1 := bk.ctrl[0].Load(), bk.ctrl[1].Load()
	if c1 < ovfOne && zeroBytes(c0^pat)|zeroBytes(c1^pat)&ctrl1Tag == 0 {
		// The common case: the chain ends at the home bucket, and no
		// lane's tag matches the key's.
		if free0 := zeroBytes(c0); free0 != 0 {
			return makeFree(b, bits.TrailingZeros64(free0)>>3), true
		}
		if free1 := zeroBytes(c1) & ctrl1Tag; free1 != 0 {
			return makeFree(b, 8+bits.TrailingZeros64(free1)>>3), true
		}
		return 0, true
	}
	return t.probeChain(h, w0, w1)
}

// probeChain is probe past the common case: a lookup proves the key
// absent, and add, which walks the sequence again, finds its lane.
func (t *Table) probeChain(h, w0, w1 uint64) (f free, absent bool) {
	_, _, _, found := t.lookup(h, w0, w1)
	return 0, !found
}

// place stores entry e with hash h in the lane of its home bucket probe
// found (no bucket before it to count the entry as overflow, unlike add's
// farther lanes). It returns 1, the buckets probed, as add would.
func (t *Table) place(h uint64, f free, e uint32) int {
	bk := &t.buckets[f.bucket()]
	tag := tagOf(h)
	lane := f.lane()
	bk.ids[lane].Store(e)
	if lane < 8 {
		bk.ctrl[0].Store(bk.ctrl[0].Load() | tag<<(8*lane))
	} else {
		bk.ctrl[1].Store(bk.ctrl[1].Load() | tag<<(8*(lane-8)))
	}
	return 1
}
