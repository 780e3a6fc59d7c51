package flowtable

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/internal/prefetch"
	"github.com/fastnat/fastnat/packet"
)

// Insert stores *s in a free slot with protocol state state, timeout
// timeout (clamped to MaxTimeout) and last-seen time now, and publishes
// both keys. It returns the slot's id and the session's generation, the
// pair every later read of the session names. Readers see either no
// session or the complete one. It fails with ErrExists if either key is
// present, ErrSameKey if the two keys are equal, ErrFull if no slot is
// free; existing sessions are never disturbed. Each refusal is counted in
// Stats. It allocates nothing.
func (t *Table) Insert(s *Session, state uint8, timeout uint32, now Time) (id, gen uint32, r InsertResult) {
	h0, h1 := t.Hash(s.Key[Orig]), t.Hash(s.Key[Reply])
	t.touch(h0, h1)
	return t.InsertHashed(s, h0, h1, state, timeout, now)
}

// Hash returns the hash of key k under the table's seed: what
// InsertHashed, PrefetchInsert and PrefetchKey take, so that a creation
// hashes each of its keys once.
func (t *Table) Hash(k packet.Tuple) uint64 {
	a0, a1 := k.Words()
	return hash2(t.seed, a0, a1)
}

// InsertHashed is Insert of a session whose keys hash (Hash) to h0 and
// h1, for a caller that has started loading both keys' home buckets
// already (a creation: its lookup read the Orig key's, and PrefetchKey
// the Reply key's): it does not load them again before it locks.
func (t *Table) InsertHashed(s *Session, h0, h1 uint64, state uint8, timeout uint32, now Time) (id, gen uint32, r InsertResult) {
	a0, a1 := s.Key[Orig].Words()
	b0, b1 := s.Key[Reply].Words()
	sa, sc := t.shardOf(h0), t.shardOf(h1)
	home := &t.shards[sa]
	if a0 == b0 && a1 == b1 {
		home.refused[ErrSameKey].Add(1)
		return 0, 0, ErrSameKey
	}

	t.lock2(sa, sc)
	// One look at each key's home bucket both proves the key absent and
	// finds where it goes, in the common case (probe).
	f0, ok0 := t.probe(h0, a0, a1)
	f1, ok1 := t.probe(h1, b0, b1)
	if !ok0 || !ok1 {
		t.unlock2(sa, sc)
		home.refused[ErrExists].Add(1)
		return 0, 0, ErrExists
	}
	id, ok := t.alloc(sa)
	if !ok {
		t.unlock2(sa, sc)
		home.refused[ErrFull].Add(1)
		return 0, 0, ErrFull
	}
	gen = t.fill(id, s, a0, a1, b0, b1, packLife(state, s.Flags, timeout), now)

	n0, n1 := 0, 0
	if f0 != 0 {
		n0 = t.place(h0, f0, id<<1|uint32(Orig))
	} else {
		n0 = t.add(h0, id<<1|uint32(Orig))
	}
	if n0 != 0 {
		if f0 != 0 && f1 != 0 && f1.bucket() != f0.bucket() {
			n1 = t.place(h1, f1, id<<1|uint32(Reply))
		} else {
			// The probe found no lane, or the one it found is in the
			// bucket the Orig key's entry just took (its first free lane
			// is then that one): add looks again.
			n1 = t.add(h1, id<<1|uint32(Reply))
		}
		if n1 == 0 {
			t.remove(h0, id<<1|uint32(Orig))
		}
	}
	if n1 == 0 {
		// An index shard is full: far beyond its design load, which only a
		// hash flood or a tiny table with many shards reaches.
		t.kill(id, gen)
		t.unlock2(sa, sc)
		t.free(sa, id)
		home.refused[ErrFull].Add(1)
		return 0, 0, ErrFull
	}
	home.inserts++
	t.countProbe(sa, n0)
	t.countProbe(sc, n1)
	t.unlock2(sa, sc)
	return id, gen, Inserted
}

// touch loads the home buckets of two keys before a writer locks their
// shards: taking a lock is a full memory barrier on amd64, so misses
// started before it overlap, while misses under it run one after another.
func (t *Table) touch(h0, h1 uint64) {
	b0, i0 := t.home(h0)
	b1, i1 := t.home(h1)
	t.buckets[b0+i0].ctrl[0].Load()
	t.buckets[b1+i1].ctrl[0].Load()
}

// fill writes a free slot and publishes it with a new odd generation. A
// reader that raced the slot's previous session may still be loading it
// (and discards what it loaded when it checks the generation), so every
// word is stored whole — with plain stores (store32, store64: an atomic
// store is a locked instruction and a full fence on amd64, and twenty of
// them, each waiting for its line, were a quarter of a session's
// creation) — and meta goes last with an atomic store, whose release
// makes everything before it visible to a reader that sees the new
// generation.
func (t *Table) fill(id uint32, s *Session, a0, a1, b0, b1 uint64, life uint32, now Time) uint32 {
	e, c := &t.hots[id], &t.colds[id]
	gen := (genOf(atomic.LoadUint64(&e.meta)) + 1) & (1<<genBits - 1)
	// (a0, a1) and (b0, b1) are the keys' words (packet.Tuple.Words):
	// addresses, then SrcPort<<48 | DstPort<<32 | protocol.
	store64(&e.addrs[Orig], a0)
	store64(&e.addrs[Reply], b0)
	store32(&e.ports[Orig], uint32(a1>>32))
	store32(&e.ports[Reply], uint32(b1>>32))
	store64(&e.track[Orig], s.Track[Orig])
	store64(&e.track[Reply], s.Track[Reply])
	store32(&e.cnt[Orig], 0)
	store32(&e.cnt[Reply], 0)
	store32(&e.seen, uint32(now))
	store32(&e.life, life)
	store64(&c.pkts[Orig], 0)
	store64(&c.pkts[Reply], 0)
	store64(&c.bytes[Orig], 0)
	store64(&c.bytes[Reply], 0)
	store32(&c.parent, s.Parent)
	store32(&c.parentGen, s.ParentGen)
	store32(&c.start, uint32(now))
	store32(&c.origin, uint32(s.Rule)<<16|uint32(s.Ingress))
	store32(&c.labels, uint32(s.App)|uint32(uint16(s.MapEntry))<<8|uint32(s.Flags)<<24)
	atomic.StoreUint64(&e.meta, packMeta(s, gen))
	return gen
}

// kill marks a slot dead by moving it to the next (even) generation, so
// that seqlock readers fail from then on. Its fields stay as they were
// until the slot is reused.
func (t *Table) kill(id, gen uint32) {
	e := &t.hots[id]
	m := atomic.LoadUint64(&e.meta)
	atomic.StoreUint64(&e.meta, m&^genMask|uint64((gen+1)&(1<<genBits-1))<<genShift)
}

// countProbe records an index insert that probed n buckets in shard s.
// The caller holds s's lock.
func (t *Table) countProbe(s uint32, n int) {
	sh := &t.shards[s]
	sh.probes[min(n, NumProbeBins)-1]++
	sh.maxProbe = max(sh.maxProbe, uint64(n))
}

// Delete removes the live session in slot id, both keys, and recycles the
// slot. It returns false if the slot holds no live session. A caller that
// may hold a stale id (the session may have expired and the slot been
// reused) uses DeleteGen.
func (t *Table) Delete(id uint32) bool { return t.unpublish(id, 0, anyGen, 0, nil) }

// DeleteGen is Delete only if slot id still holds generation gen.
func (t *Table) DeleteGen(id, gen uint32) bool { return t.unpublish(id, gen, sameGen, 0, nil) }

// End is DeleteGen that, like Expire, calls onEnd with a copy of the
// session between its removal and the slot's reuse, so that the caller
// releases what it held: a session ended before its time (a closed TCP
// connection whose tuple a new one reuses).
func (t *Table) End(id, gen uint32, onEnd func(id, gen uint32, s Session)) bool {
	return t.unpublish(id, gen, sameGen, 0, onEnd)
}

// Conditions of unpublish.
const (
	anyGen  = iota // whatever session is live in the slot
	sameGen        // only the given generation
	expiry         // only the given generation, and only if expired at now
)

// unpublish removes the session in slot id from the index, marks it dead
// and frees the slot, if cond holds. Between removal and reuse it calls
// onExpire, if not nil, outside any lock, with a copy of the session.
func (t *Table) unpublish(id, gen uint32, cond int, now Time, onExpire func(id, gen uint32, s Session)) bool {
	if id >= uint32(len(t.hots)) {
		return false
	}
	e := &t.hots[id]
	for {
		k0, g := t.Key(id, Orig)
		if g&1 == 0 || cond != anyGen && g != gen {
			return false
		}
		k1, g1 := t.Key(id, Reply)
		if g1 != g {
			continue // a writer reused the slot between the two reads
		}
		a0, a1 := k0.Words()
		b0, b1 := k1.Words()
		h0, h1 := hash2(t.seed, a0, a1), hash2(t.seed, b0, b1)
		sa, sc := t.shardOf(h0), t.shardOf(h1)
		t.touch(h0, h1)
		t.lock2(sa, sc)
		if genOf(atomic.LoadUint64(&e.meta)) != g {
			t.unlock2(sa, sc)
			continue
		}
		if cond == expiry && !expired(e, now) {
			t.unlock2(sa, sc)
			return false // touched since the caller looked
		}
		if !t.remove(h0, id<<1|uint32(Orig)) || !t.remove(h1, id<<1|uint32(Reply)) {
			panic("flowtable: live session missing from the index")
		}
		t.kill(id, g)
		if cond == expiry {
			t.shards[sa].expired++
		} else {
			t.shards[sa].deletes++
		}
		t.unlock2(sa, sc)
		if onExpire != nil {
			// The slot is unlinked and dead but not yet free: nobody
			// writes what Insert stored, so the copy is the session's.
			var c Session
			t.copyOut(id, &c)
			onExpire(id, g, c)
		}
		t.free(sa, id)
		return true
	}
}

// alloc takes a free slot, from shard s's free list if it has one, else
// from the next shard that does.
func (t *Table) alloc(s uint32) (uint32, bool) {
	if id, ok := t.pop(s); ok {
		return id, true
	}
	for k := uint32(1); k <= t.shardMask; k++ {
		j := (s + k) & t.shardMask
		if t.shards[j].freeCount.Load() == 0 {
			continue
		}
		if id, ok := t.pop(j); ok {
			return id, true
		}
	}
	return 0, false
}

func (t *Table) pop(s uint32) (uint32, bool) {
	sh := &t.shards[s]
	sh.freeMu.Lock()
	if h := sh.freeHead; h != 0 && t.reclaimable(atomic.LoadUint64(&t.colds[h-1].pkts[0])) {
		id := h - 1
		if sh.freeHead = atomic.LoadUint32(&t.colds[id].parent); sh.freeHead == 0 {
			sh.freeTail = 0
		}
		sh.freeCount.Add(-1)
		sh.setHint()
		sh.freeMu.Unlock()
		return id, true
	}
	if sh.freeNext < sh.freeEnd {
		id := sh.freeNext
		sh.freeNext++
		sh.freeCount.Add(-1)
		sh.setHint()
		sh.freeMu.Unlock()
		return id, true
	}
	sh.freeMu.Unlock()
	return 0, false
}

// setHint records which slot the next pop most likely returns: the
// oldest freed one (unless its grace period is still running), else the
// next never-used one. The caller holds freeMu.
func (sh *shard) setHint() {
	h := sh.freeHead
	if h == 0 && sh.freeNext < sh.freeEnd {
		h = sh.freeNext + 1
	}
	store32(&sh.hint, h)
}

// PrefetchInsert starts loading the lines an Insert of a session whose
// Orig key hashes (Hash) to h will write first: the hot line and cold
// entry of the slot its shard will most likely hand out (shard.hint). A
// creation calls it as soon as it knows the key, so that the misses run
// while it decides the translation instead of one after another under
// the shard locks (a fresh slot is two lines nobody has read for a
// timeout or ever). It takes no lock and writes nothing.
func (t *Table) PrefetchInsert(h uint64) {
	id := atomic.LoadUint32(&t.shards[t.shardOf(h)].hint) - 1 // 0 (none): ^0
	if id < uint32(len(t.hots)) && id < uint32(len(t.colds)) {
		prefetch.Slot(&t.hots[id].meta, &t.colds[id].pkts[0])
	}
}

// PrefetchKey starts loading the index bucket where a key of hash h (Hash)
// is looked up and inserted first: a creation calls it for its reply key
// as soon as it has chosen the translation (the Orig key's bucket is in
// cache from the lookup that missed). It takes no lock and writes nothing.
func (t *Table) PrefetchKey(h uint64) {
	prefetch.Word(&t.buckets[t.bucketOf(h)].ctrl[0])
}

// free appends a dead slot to shard s's free list, to wait there for the
// end of the grace period that begins now (qsbr.go).
func (t *Table) free(s uint32, id uint32) {
	tok := t.retire()
	sh := &t.shards[s]
	sh.freeMu.Lock()
	c := &t.colds[id]
	atomic.StoreUint64(&c.pkts[0], tok)
	atomic.StoreUint32(&c.parent, 0)
	if sh.freeTail != 0 {
		atomic.StoreUint32(&t.colds[sh.freeTail-1].parent, id+1)
	} else {
		sh.freeHead = id + 1
	}
	sh.freeTail = id + 1
	sh.freeCount.Add(1)
	sh.setHint()
	sh.freeMu.Unlock()
}
