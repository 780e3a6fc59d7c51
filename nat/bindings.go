package nat

import "sync"

// A binding is an endpoint-independent mapping (RFC 4787 REQ-1): while any
// session of inside endpoint (address, port) lives, new sessions from it to
// any destination reuse the same public endpoint. Bindings are touched only
// when sessions are created or expire, so a sharded mutex is cheap enough.
type bindKey struct {
	addr  uint32
	port  uint16
	class uint8
}

type binding struct {
	pubAddr uint32
	pubPort uint16
	refs    int32
}

const bindShards = 64

type bindings struct {
	shards [bindShards]struct {
		mu sync.Mutex
		m  map[bindKey]*binding
		_  [40]byte
	}
}

func (b *bindings) shard(k bindKey) int {
	h := k.addr*0x9e3779b1 ^ uint32(k.port)*0x85ebca6b ^ uint32(k.class)
	return int(h>>16) % bindShards
}

// acquire returns the existing binding of k with one more reference, or
// calls alloc to create it. ok is false when alloc fails.
func (b *bindings) acquire(k bindKey, alloc func() (uint32, uint16, bool)) (uint32, uint16, bool) {
	s := &b.shards[b.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[k]; ok {
		e.refs++
		return e.pubAddr, e.pubPort, true
	}
	a, p, ok := alloc()
	if !ok {
		return 0, 0, false
	}
	if s.m == nil {
		s.m = make(map[bindKey]*binding)
	}
	s.m[k] = &binding{pubAddr: a, pubPort: p, refs: 1}
	return a, p, true
}

// release drops one reference; at zero the binding goes and release is
// called with its public endpoint so the port returns to the pool.
func (b *bindings) release(k bindKey, free func(uint32, uint16)) {
	s := &b.shards[b.shard(k)]
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok {
		return
	}
	if e.refs--; e.refs <= 0 {
		delete(s.m, k)
		free(e.pubAddr, e.pubPort)
	}
}

func (b *bindings) count() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
