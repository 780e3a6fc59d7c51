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

// batchChunk is how many keys a Batch holds: a default burst, enough to
// cover a DRAM latency with independent misses, few enough for the stack
// (and longer bursts measured slower).
const batchChunk = 64

// LookupBatch looks up keys[i] into out[i] for every i < min(len(keys),
// len(out)). It gives the same answers as Lookup but is faster for a
// burst: in chunks of batchChunk keys it runs the three steps of a Batch
// back to back — hash every key and prefetch its home bucket, read every
// bucket and prefetch the hot line of the session its first matching tag
// names, confirm each key — so that a chunk's misses are all in flight
// together: a chunk costs about two memory latencies plus its
// instructions, not two latencies per key. A caller with work of its own
// to overlap with the misses runs the steps itself (Batch).
func (t *Table) LookupBatch(keys []packet.Tuple, out []Hit) {
	n := min(len(keys), len(out))
	var b Batch
	for lo := 0; lo < n; lo += batchChunk {
		ks := keys[lo:min(lo+batchChunk, n)]
		t.Start(&b, ks)
		t.Candidates(&b)
		t.Finish(&b, ks, out[lo:lo+len(ks)])
	}
}

// Batch is a lookup of up to batchChunk keys cut into three steps, so
// that a caller can do other work while each step's cache misses are in
// flight: Start hashes the keys and prefetches their home buckets;
// Candidates reads the buckets and prefetches the hot line of each key's
// first candidate session; Finish confirms each candidate against its key
// (a key whose first candidate is not it takes the whole lookup) and
// writes the hits. The pipeline runs the steps of consecutive chunks of a
// burst interleaved with translating the chunk before. The answers are
// those of Lookup whatever happens between the steps (Finish validates
// everything). A Batch is one goroutine's.
type Batch struct {
	n  int
	hs [batchChunk]uint64 // hash of each key
	bs [batchChunk]uint32 // its home bucket
	es [batchChunk]uint32 // its first candidate's index entry, or noEntry
}

// MaxBatch is the most keys a Batch holds.
const MaxBatch = batchChunk

// Start is a Batch's first step for keys (at most MaxBatch of them).
func (t *Table) Start(b *Batch, keys []packet.Tuple) {
	stages.Mark(stages.Hash)
	keys = keys[:min(len(keys), batchChunk)]
	b.n = len(keys)
	for i := range keys {
		w0, w1 := keys[i].Words()
		h := hash2(t.seed, w0, w1)
		base, k := t.home(h)
		b.hs[i], b.bs[i] = h, base+k
	}
	stages.Mark(stages.BucketTouch)
	prefetchBuckets(t.buckets, b.bs[:b.n])
}

// Candidates is a Batch's second step.
func (t *Table) Candidates(b *Batch) {
	stages.Mark(stages.SessionTouch)
	var ids [batchChunk]uint32
	m := 0
	for i := range b.n {
		bk := &t.buckets[b.bs[i]]
		pat := tagOf(b.hs[i]) * lanes8
		b.es[i] = noEntry
		if z := zeroBytes(bk.ctrl[0].Load() ^ pat); z != 0 {
			b.es[i] = bk.ids[bits.TrailingZeros64(z)>>3].Load()
		} else if z := zeroBytes(bk.ctrl[1].Load()^pat) & ctrl1Tag; z != 0 {
			b.es[i] = bk.ids[8+bits.TrailingZeros64(z)>>3].Load()
		} else {
			continue
		}
		ids[m] = b.es[i] >> 1
		m++
	}
	prefetchHots(t.hots, ids[:m])
}

// Finish is a Batch's last step: out[i] is the hit of keys[i], the keys
// Start was given, for every i < min(len(keys), len(out)).
func (t *Table) Finish(b *Batch, keys []packet.Tuple, out []Hit) {
	stages.Mark(stages.FinalCheck)
	n := min(b.n, len(keys), len(out))
	for i := range n {
		w0, w1 := keys[i].Words()
		o := &out[i]
		if e := b.es[i]; e != noEntry {
			if g, ok := t.confirm(e, w0, w1); ok {
				*o = Hit{ID: e >> 1, Gen: g, Dir: Dir(e & 1), Found: true}
				continue
			}
		}
		o.ID, o.Dir, o.Gen, o.Found = t.lookup(b.hs[i], w0, w1)
	}
}

// noEntry is no index entry: ids are 31 bits, so an entry is never all
// ones.
const noEntry = ^uint32(0)
