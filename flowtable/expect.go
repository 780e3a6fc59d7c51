package flowtable

import (
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/fastnat/fastnat/packet"
)

// Expectation announces a connection an ALG has seen negotiated (an FTP
// data connection) so that its first packet is translated on the first
// try. It matches a new connection once: by protocol, destination address
// and port exactly, by source address exactly or any (SrcAddr 0), and by
// any source port.
type Expectation struct {
	Proto   uint8
	SrcAddr uint32 // 0 = any source address (wildcard)
	DstAddr uint32 // exact
	DstPort uint16 // exact; the source port is always a wildcard
	// Xlate is the new session's Key[Reply] with SrcPort to be filled from
	// the matching packet by nat. Stored opaquely.
	Xlate packet.Tuple
	// Parent and ParentGen are the id and generation of the parent
	// (control) session: the data session created from the expectation
	// gets them as its Session.Parent and ParentGen, and the parent's
	// expectations are found and removed by the pair, so a parent's slot
	// reused by another session never inherits them.
	Parent    uint32
	ParentGen uint32
	App       uint8 // application of the new session, e.g. portmap.AppFTPData
	Expires   Time  // no match at or after this time
}

// expectations is the table's store of Expectations: a slow path behind
// one mutex (MatchExpectation is called on session misses only, and checks
// an atomic count first so that an empty store costs one load). Entries
// live in a preallocated array and are found through two open-addressing
// indexes of entry numbers: by match key, and by parent (the head of a
// doubly linked list of that parent's entries). The indexes use linear
// probing with backward-shift deletion, so they hold no tombstones.
type expectations struct {
	mu       sync.Mutex
	count    atomic.Int32
	seed     uint64
	ents     []expEntry
	free     uint32   // entry+1 of the first free entry, linked through next
	byKey    []uint32 // entry+1, 0 empty
	byParent []uint32 // entry+1 of the head of a parent's list, 0 empty
	cursor   uint32   // next entry expire examines

	inserts, full, matched, expired uint64 // under mu
}

type expEntry struct {
	e          Expectation
	next, prev uint32 // entry+1 in the parent's list (free list: next)
	live       bool
}

func (x *expectations) init(n int, seed uint64) {
	x.seed = seed ^ 0x6578706563746174 // a different seed from the session index
	x.ents = make([]expEntry, n)
	for i := range x.ents {
		x.ents[i].next = uint32(i + 2)
	}
	x.ents[n-1].next = 0
	x.free = 1
	x.byKey = make([]uint32, 2*n)
	x.byParent = make([]uint32, 2*n)
}

func (x *expectations) keyHash(proto uint8, src, dst uint32, port uint16) uint64 {
	return hash2(x.seed, uint64(src)<<32|uint64(dst), uint64(port)<<32|uint64(proto))
}

func (x *expectations) parentHash(parent, gen uint32) uint64 {
	return hash2(x.seed, uint64(parent)<<32|uint64(gen), 1)
}

// slot maps a hash onto an index of length n.
func slot(h uint64, n int) int { return int(uint64(uint32(h>>32)) * uint64(n) >> 32) }

// home returns the home slot of entry i in byKey or byParent.
func (x *expectations) home(byParent bool, i uint32) int {
	e := &x.ents[i].e
	if byParent {
		return slot(x.parentHash(e.Parent, e.ParentGen), len(x.byParent))
	}
	return slot(x.keyHash(e.Proto, e.SrcAddr, e.DstAddr, e.DstPort), len(x.byKey))
}

// findKey returns the byKey slot and entry of the expectation with this
// match key.
func (x *expectations) findKey(proto uint8, src, dst uint32, port uint16) (int, uint32, bool) {
	n := len(x.byKey)
	for i := slot(x.keyHash(proto, src, dst, port), n); ; i = (i + 1) % n {
		v := x.byKey[i]
		if v == 0 {
			return 0, 0, false
		}
		e := &x.ents[v-1].e
		if e.Proto == proto && e.SrcAddr == src && e.DstAddr == dst && e.DstPort == port {
			return i, v - 1, true
		}
	}
}

// findParent returns the byParent slot and head entry of the list of
// parent session (parent, gen).
func (x *expectations) findParent(parent, gen uint32) (int, uint32, bool) {
	n := len(x.byParent)
	for i := slot(x.parentHash(parent, gen), n); ; i = (i + 1) % n {
		v := x.byParent[i]
		if v == 0 {
			return 0, 0, false
		}
		if e := &x.ents[v-1].e; e.Parent == parent && e.ParentGen == gen {
			return i, v - 1, true
		}
	}
}

// place puts entry i in the first empty slot from its home.
func (x *expectations) place(byParent bool, i uint32) {
	tab := x.byKey
	if byParent {
		tab = x.byParent
	}
	j := x.home(byParent, i)
	for tab[j] != 0 {
		j = (j + 1) % len(tab)
	}
	tab[j] = i + 1
}

// vacate empties slot j and shifts later entries of its cluster back so
// that every entry stays reachable from its home without tombstones.
func (x *expectations) vacate(byParent bool, j int) {
	tab := x.byKey
	if byParent {
		tab = x.byParent
	}
	n := len(tab)
	for k := (j + 1) % n; tab[k] != 0; k = (k + 1) % n {
		h := x.home(byParent, tab[k]-1)
		// The entry at k may move to j if its home is not in (j, k].
		if (k > j && (h <= j || h > k)) || (k < j && h <= j && h > k) {
			tab[j] = tab[k]
			j = k
		}
	}
	tab[j] = 0
}

// link adds entry i to its parent's list.
func (x *expectations) link(i uint32) {
	en := &x.ents[i]
	en.prev = 0
	if s, head, ok := x.findParent(en.e.Parent, en.e.ParentGen); ok {
		en.next = head + 1
		x.ents[head].prev = i + 1
		x.byParent[s] = i + 1
		return
	}
	en.next = 0
	x.place(true, i)
}

// drop removes live entry i from both indexes and frees it.
func (x *expectations) drop(i uint32) {
	en := &x.ents[i]
	e := &en.e
	if s, _, ok := x.findKey(e.Proto, e.SrcAddr, e.DstAddr, e.DstPort); ok {
		x.vacate(false, s)
	}
	if en.prev != 0 {
		x.ents[en.prev-1].next = en.next
	} else if s, _, ok := x.findParent(e.Parent, e.ParentGen); ok {
		if en.next != 0 {
			x.byParent[s] = en.next
		} else {
			x.vacate(true, s)
		}
	}
	if en.next != 0 {
		x.ents[en.next-1].prev = en.prev
	}
	en.live = false
	en.next = x.free
	x.free = i + 1
	x.count.Add(-1)
}

// Expect stores e, replacing an expectation with the same Proto, SrcAddr,
// DstAddr and DstPort. It returns Inserted or ErrNoExpectSpace.
func (t *Table) Expect(e Expectation) InsertResult {
	x := &t.exp
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, old, ok := x.findKey(e.Proto, e.SrcAddr, e.DstAddr, e.DstPort); ok {
		x.drop(old)
	}
	if x.free == 0 {
		x.full++
		return ErrNoExpectSpace
	}
	i := x.free - 1
	en := &x.ents[i]
	x.free = en.next
	en.e = e
	en.live = true
	x.place(false, i)
	x.link(i)
	x.count.Add(1)
	x.inserts++
	return Inserted
}

// Expecting reports whether the table may hold an expectation: a caller
// that asks MatchExpectation for every new connection asks this first, a
// load where MatchExpectation is a call.
func (t *Table) Expecting() bool { return t.exp.count.Load() != 0 }

// MatchExpectation finds the expectation a new connection with tuple k
// fulfils — one naming k's source address first, then one with a wildcard
// source — removes it (an expectation is used once) and returns it.
// Expired expectations never match; those it meets are dropped.
func (t *Table) MatchExpectation(k packet.Tuple, now Time) (Expectation, bool) {
	x := &t.exp
	if x.count.Load() == 0 {
		return Expectation{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, src := range [2]uint32{k.SrcAddr, 0} {
		_, i, ok := x.findKey(k.Proto, src, k.DstAddr, k.DstPort)
		if !ok {
			continue
		}
		e := x.ents[i].e
		x.drop(i)
		if expiredAt(e.Expires, now) {
			x.expired++
			continue
		}
		x.matched++
		return e, true
	}
	return Expectation{}, false
}

func expiredAt(deadline, now Time) bool { return int32(uint32(now)-uint32(deadline)) >= 0 }

// RemoveExpectations drops every expectation of parent session (parent,
// gen) and returns how many there were (when the control session ends).
func (t *Table) RemoveExpectations(parent, gen uint32) int {
	x := &t.exp
	if x.count.Load() == 0 {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for {
		_, head, ok := x.findParent(parent, gen)
		if !ok {
			return n
		}
		x.drop(head)
		n++
	}
}

// ExpectationCount returns how many expectations parent session (parent,
// gen) has, for the ALG's per-control-session limit.
func (t *Table) ExpectationCount(parent, gen uint32) int {
	x := &t.exp
	if x.count.Load() == 0 {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	_, head, ok := x.findParent(parent, gen)
	for v := head + 1; ok && v != 0; v = x.ents[v-1].next {
		n++
	}
	return n
}

// RangeExpectations calls fn with a copy of every live expectation until
// fn returns false. The lock is not held while fn runs.
func (t *Table) RangeExpectations(fn func(e Expectation) bool) {
	x := &t.exp
	for i := range x.ents {
		x.mu.Lock()
		e, live := x.ents[i].e, x.ents[i].live
		x.mu.Unlock()
		if live && !fn(e) {
			return
		}
	}
}

// expire drops up to budget expectations whose deadline passed, resuming
// where the previous call stopped.
func (x *expectations) expire(now Time, budget int) {
	if x.count.Load() == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	n := uint32(len(x.ents))
	for range min(budget, int(n)) {
		i := x.cursor
		if x.cursor++; x.cursor == n {
			x.cursor = 0
		}
		if en := &x.ents[i]; en.live && expiredAt(en.e.Expires, now) {
			x.drop(i)
			x.expired++
		}
	}
}

func (x *expectations) stats(st *Stats) {
	x.mu.Lock()
	defer x.mu.Unlock()
	st.Expectations = int(x.count.Load())
	st.ExpectCapacity = len(x.ents)
	st.ExpectInserts = x.inserts
	st.ExpectFull = x.full
	st.ExpectMatched = x.matched
	st.ExpectExpired = x.expired
}

// bytes is the memory of the store: entries and both indexes.
func (x *expectations) bytes() int64 {
	return int64(len(x.ents))*int64(reflect.TypeFor[expEntry]().Size()) + int64(len(x.byKey)+len(x.byParent))*4
}

// RemoveOldestExpectation drops the expectation of parent session
// (parent, gen) that was stored first and returns it (an ALG at its
// per-session limit makes way for a new one).
func (t *Table) RemoveOldestExpectation(parent, gen uint32) (Expectation, bool) {
	x := &t.exp
	if x.count.Load() == 0 {
		return Expectation{}, false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	_, i, ok := x.findParent(parent, gen)
	if !ok {
		return Expectation{}, false
	}
	// link puts a parent's newest entry at the head: the oldest is the tail.
	for x.ents[i].next != 0 {
		i = x.ents[i].next - 1
	}
	e := x.ents[i].e
	x.drop(i)
	return e, true
}
