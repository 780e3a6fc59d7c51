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

// lock locks k's shard and returns it, its map made on first use; the
// caller unlocks sh.mu. (Returning sh.mu.Unlock as a func instead cost a
// heap-allocated method value per call, two per session created.)
func (s *shardedMap[V]) lock(k bindKey) *shard[V] {
	h := k.addr*0x9e3779b1 ^ uint32(k.port)*0x85ebca6b ^ uint32(k.class)
	sh := &s.shards[int(h>>16)%bindShards]
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[bindKey]V)
	}
	return sh
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

type bindings struct {
	shardedMap[*binding]
	pub *publicMap // told of every binding made and gone
}

// acquire returns the public endpoint of k's binding, taking one more
// reference, or makes the binding: alloc fills in a new binding's public
// endpoint, rule and time and returns Forward, or the verdict that
// refuses it. Both run under k's shard lock, so a binding is made once.
func (b *bindings) acquire(k bindKey, alloc func(*binding) Verdict) (uint32, uint16, Verdict) {
	sh := b.lock(k)
	defer sh.mu.Unlock()
	m := sh.m
	if e, ok := m[k]; ok {
		e.refs++
		return e.pubAddr, e.pubPort, Forward
	}
	e := &binding{refs: 1}
	if v := alloc(e); v != Forward {
		return 0, 0, v
	}
	m[k] = e
	b.pub.add(bindKey{addr: e.pubAddr, port: e.pubPort, class: k.class}, k)
	return e.pubAddr, e.pubPort, Forward
}

// release drops one reference; at zero the binding goes (from the
// hairpin map first) and free is called with it, under k's shard lock, to
// give its port back and record its end.
func (b *bindings) release(k bindKey, free func(bindKey, *binding)) {
	sh := b.lock(k)
	defer sh.mu.Unlock()
	m := sh.m
	e, ok := m[k]
	if !ok {
		return
	}
	if e.refs--; e.refs <= 0 {
		delete(m, k)
		b.pub.remove(bindKey{addr: e.pubAddr, port: e.pubPort, class: k.class}, k)
		free(k, e)
	}
}
