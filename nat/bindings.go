package nat

import "github.com/fastnat/fastnat/internal/prefetch"

// A binding is an endpoint-independent mapping (RFC 4787 REQ-1): while any
// session of inside endpoint (address, port) lives, new sessions from it to
// any destination reuse the same public endpoint. Bindings are touched only
// when sessions are created or end, in an epMap: sharded under mutexes,
// flat, sized from the flow table's capacity.
//
// bindKey names an endpoint of one port class: an inside endpoint in
// bindings, a public one in publicMap.
type bindKey struct {
	addr  uint32
	port  uint16
	class uint8
}

// binding is held by value in its slot (32 bytes with the key).
type binding struct {
	pubAddr uint32
	pubPort uint16
	rule    uint16 // label of the rule that made it (label.go)
	refs    int32
	since   int64 // Unix ms it was made, for its delete event
}

// bindings maps an inside endpoint to its binding.
type bindings struct {
	epMap[binding]
	pub *publicMap // told of every binding gone
}

// prefetch starts loading the slot where k's binding would be, for
// acquire to find it there, and returns k's hash, acquire's h. It is
// written out on the concrete map rather than as a method of the generic
// epMap, which is called through its shape's dictionary and would not
// inline (publicMap.prefetch likewise).
func (b *bindings) prefetch(k bindKey) uint64 {
	h := epHash(b.seed, k.word())
	sh := &b.shards[epShardOf(h)]
	prefetch.Line(&sh.slots[epHome(h, len(sh.slots))].key)
	return h
}

// acquire returns the public endpoint of k's binding (k hashes to h, as
// prefetch returned), taking one more
// reference, or makes the binding: alloc returns a new binding's public
// endpoint, rule and time and Forward, or the verdict that refuses it.
// Both run under k's shard lock, so a binding is made once. made reports
// a new binding, which the caller adds to the public-endpoint map before
// anything can release it (insert): outside this lock, so that the
// public map's slot loads meanwhile.
func (b *bindings) acquire(k bindKey, h uint64, alloc func() (binding, Verdict)) (addr uint32, port uint16, made bool, v Verdict) {
	w := k.word()
	sh := b.lock(h)
	i, ok := sh.find(h, w)
	if ok {
		e := &sh.slots[i].val
		e.refs++
		// Read under the lock: once it is released, a removal may shift
		// another entry into this slot (backward-shift deletion).
		addr, port = e.pubAddr, e.pubPort
		sh.mu.Unlock()
		return addr, port, false, Forward
	}
	if sh.full() {
		sh.mu.Unlock()
		return 0, 0, false, DropTableFull
	}
	e, v := alloc()
	if v != Forward {
		sh.mu.Unlock()
		return 0, 0, false, v
	}
	e.refs = 1
	sh.put(i, w, e)
	sh.mu.Unlock()
	return e.pubAddr, e.pubPort, true, Forward
}

// release drops one reference; at zero the binding goes (from the
// hairpin map first) and free is called with it, under k's shard lock, to
// give its port back and record its end.
func (b *bindings) release(k bindKey, free func(bindKey, binding)) {
	w := k.word()
	h := b.hash(w)
	sh := b.lock(h)
	defer sh.mu.Unlock()
	i, ok := sh.find(h, w)
	if !ok {
		return
	}
	e := sh.slots[i].val
	if e.refs--; e.refs > 0 {
		sh.slots[i].val.refs = e.refs
		return
	}
	sh.remove(&b.epMap, i)
	b.pub.remove(bindKey{addr: e.pubAddr, port: e.pubPort, class: k.class}, k)
	free(k, e)
}

// mapsTo reports whether inside endpoint k's binding is the public
// endpoint (addr, port).
func (b *bindings) mapsTo(k bindKey, addr uint32, port uint16) bool {
	w := k.word()
	h := b.hash(w)
	sh := b.lock(h)
	i, ok := sh.find(h, w)
	ok = ok && sh.slots[i].val.pubAddr == addr && sh.slots[i].val.pubPort == port
	sh.mu.Unlock()
	return ok
}
