package nat

import (
	"sync"
	"sync/atomic"

	"github.com/fastnat/fastnat/packet"
)

// Port classes: each public address has one independent port space per
// class. ICMP query identifiers are allocated like ports (RFC 5508).
const (
	classTCP = iota
	classUDP
	classICMP
	numClasses
)

func portClass(proto uint8) (int, bool) {
	switch proto {
	case packet.ProtoTCP:
		return classTCP, true
	case packet.ProtoUDP:
		return classUDP, true
	case packet.ProtoICMP:
		return classICMP, true
	}
	return 0, false
}

// portSpace is the allocation bitmap of one (public address, class): bit p
// set = port p in use. Claims and releases are single atomic
// compare-and-swap operations, so any worker may allocate or release any
// port without a lock; workers start their search in their own partition of
// the range so that they rarely contend for the same word.
type portSpace struct {
	bits  [65536 / 64]uint64 // sync/atomic's functions only (prefetch needs a *uint64)
	inUse atomic.Int64
}

func (s *portSpace) claim(port uint16) bool {
	w, b := &s.bits[port>>6], uint64(1)<<(port&63)
	for {
		old := atomic.LoadUint64(w)
		if old&b != 0 {
			return false
		}
		if atomic.CompareAndSwapUint64(w, old, old|b) {
			s.inUse.Add(1)
			return true
		}
	}
}

func (s *portSpace) release(port uint16) {
	w, b := &s.bits[port>>6], uint64(1)<<(port&63)
	for {
		old := atomic.LoadUint64(w)
		if old&b == 0 {
			return
		}
		if atomic.CompareAndSwapUint64(w, old, old&^b) {
			s.inUse.Add(-1)
			return
		}
	}
}

// claimRange claims a free port in [lo, hi], scanning from start with
// wrap-around, word by word. It returns false when the range is full.
func (s *portSpace) claimRange(lo, hi, start uint16) (uint16, bool) {
	n := uint32(hi) - uint32(lo) + 1
	off := (uint32(start) - uint32(lo)) % n
	for scanned := uint32(0); scanned < n; {
		p := uint32(lo) + off
		w := atomic.LoadUint64(&s.bits[p>>6])
		if w == ^uint64(0) {
			// The whole word is taken: skip to the next word boundary.
			skip := 64 - (p & 63)
			scanned += skip
			off = (off + skip) % n
			continue
		}
		if w&(uint64(1)<<(p&63)) == 0 && s.claim(uint16(p)) {
			return uint16(p), true
		}
		scanned++
		off = (off + 1) % n
	}
	return 0, false
}

// pools holds the port spaces of every public address the NAT has used.
// Spaces outlive configuration reloads so that sessions created under an
// older configuration release their ports into the same bitmaps.
type pools struct {
	mu     sync.Mutex
	spaces atomic.Pointer[map[uint32]*[numClasses]portSpace]
}

func (p *pools) space(addr uint32, class int) *portSpace { return &p.of(addr)[class] }

// of returns the port spaces of addr, made on first use.
func (p *pools) of(addr uint32) *[numClasses]portSpace {
	if m := p.spaces.Load(); m != nil {
		if s, ok := (*m)[addr]; ok {
			return s
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.spaces.Load()
	next := make(map[uint32]*[numClasses]portSpace)
	if old != nil {
		for k, v := range *old {
			next[k] = v
		}
	}
	s, ok := next[addr]
	if !ok {
		s = new([numClasses]portSpace)
		next[addr] = s
		p.spaces.Store(&next)
	}
	return s
}

// PoolUse is the number of ports in use per public address and class, for
// metrics.
type PoolUse struct {
	Addr uint32
	TCP  int64
	UDP  int64
	ICMP int64
}

func (p *pools) use() []PoolUse {
	m := p.spaces.Load()
	if m == nil {
		return nil
	}
	out := make([]PoolUse, 0, len(*m))
	for a, s := range *m {
		out = append(out, PoolUse{Addr: a, TCP: s[classTCP].inUse.Load(), UDP: s[classUDP].inUse.Load(), ICMP: s[classICMP].inUse.Load()})
	}
	return out
}
