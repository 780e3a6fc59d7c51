package nat

import "sync"

// A binding is an endpoint-independent mapping (RFC 4787 REQ-1): while any
// session of inside endpoint (address, port) lives, new sessions from it to
// any destination reuse the same public endpoint. Bindings are touched only
// when sessions are created or expire, so a sharded mutex is cheap enough.
//
// bindKey names an endpoint of one port class: an inside endpoint in
// bindings, a public one in publicMap.
type bindKey struct {
	addr  uint32
	port  uint16
	class uint8
}

type binding struct {
	pubAddr uint32
	pubPort uint16
	refs    int32
	rule    uint16 // label of the rule that made it (label.go)
	since   int64  // Unix ms it was made, for its delete event
}

const bindShards = 64

// shardedMap is a map from endpoint to V split over bindShards mutexes,
// for the slow path's shared maps.
type shardedMap[V any] struct {
	shards [bindShards]shard[V]
}

type shard[V any] struct {
	mu sync.Mutex
	m  map[bindKey]V
	_  [40]byte
}

// lock locks k's shard and returns it, its map made on first use, and its
// index; the caller unlocks sh.mu. (Returning sh.mu.Unlock as a func
// instead cost a heap-allocated method value per call, two per session
// created.)
func (s *shardedMap[V]) lock(k bindKey) (sh *shard[V], i int) {
	h := k.addr*0x9e3779b1 ^ uint32(k.port)*0x85ebca6b ^ uint32(k.class)
	i = int(h>>16) % bindShards
	sh = &s.shards[i]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[bindKey]V)
	}
	return sh, i
}

func (s *shardedMap[V]) count() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// bindings maps an inside endpoint to its binding's index in its shard's
// slab. Bindings are held by value in the slabs, so making one allocates
// nothing (beyond a slab's or map's growth), nothing in them is a pointer
// for the collector to scan, and the map's slots stay 12 bytes — a map
// holding pointers to bindings cost an allocation a binding, and one
// holding the 24-byte bindings themselves grew slower (measured in the
// commit that made this).
type bindings struct {
	shardedMap[uint32]
	slabs [bindShards]bindSlab // slabs[i] belongs to shard i, under its lock
	pub   *publicMap           // told of every binding made and gone
}

// bindSlab is one shard's bindings and the indices free among them.
type bindSlab struct {
	b    []binding
	free []uint32
	_    [16]byte
}

// put stores e and returns its index.
func (s *bindSlab) put(e binding) uint32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		s.b[i] = e
		return i
	}
	s.b = append(s.b, e)
	return uint32(len(s.b) - 1)
}

// acquire returns the public endpoint of k's binding, taking one more
// reference, or makes the binding: alloc returns a new binding's public
// endpoint, rule and time and Forward, or the verdict that refuses it.
// Both run under k's shard lock, so a binding is made once.
func (b *bindings) acquire(k bindKey, alloc func() (binding, Verdict)) (uint32, uint16, Verdict) {
	sh, si := b.lock(k)
	defer sh.mu.Unlock()
	slab := &b.slabs[si]
	if i, ok := sh.m[k]; ok {
		e := &slab.b[i]
		e.refs++
		return e.pubAddr, e.pubPort, Forward
	}
	e, v := alloc()
	if v != Forward {
		return 0, 0, v
	}
	e.refs = 1
	sh.m[k] = slab.put(e)
	b.pub.add(bindKey{addr: e.pubAddr, port: e.pubPort, class: k.class}, k)
	return e.pubAddr, e.pubPort, Forward
}

// release drops one reference; at zero the binding goes (from the
// hairpin map first) and free is called with it, under k's shard lock, to
// give its port back and record its end.
func (b *bindings) release(k bindKey, free func(bindKey, binding)) {
	sh, si := b.lock(k)
	defer sh.mu.Unlock()
	slab := &b.slabs[si]
	i, ok := sh.m[k]
	if !ok {
		return
	}
	e := &slab.b[i]
	if e.refs--; e.refs > 0 {
		return
	}
	delete(sh.m, k)
	slab.free = append(slab.free, i)
	b.pub.remove(bindKey{addr: e.pubAddr, port: e.pubPort, class: k.class}, k)
	free(k, *e)
}
