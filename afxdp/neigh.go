package afxdp

import (
	"net/netip"
	"sync/atomic"

	"github.com/fastnat/fastnat/pipeline"
)

// prefix4 is an IPv4 prefix in host byte order.
type prefix4 struct {
	addr, mask uint32
}

func (p prefix4) contains(a uint32) bool { return a&p.mask == p.addr }

// neighSnapshot is an immutable view of one interface's next hops: its
// connected prefixes (its own addresses with their prefix lengths), its
// gateway, the MAC addresses the kernel has resolved, and its MTU.
// Workers read it through an atomic pointer; the resolver replaces it
// whole.
type neighSnapshot struct {
	onLink  []prefix4
	addrs   []uint32 // the interface's own addresses, in onLink's order
	gateway uint32   // 0: none
	macs    map[uint32][6]byte
	mtu     int
}

// defaultMTU is an interface's MTU until the resolver has read it.
const defaultMTU = 1500

// pendingSlots is how many resolution requests can wait at once; a request
// that lands on a busy slot replaces it, and the loser asks again on its
// next packet.
const pendingSlots = 64

// neighTable is the per-interface next-hop cache behind Port.NextHop.
// Lookups are wait-free: one atomic pointer load and a map read. A miss
// stores the address in a request slot (an atomic store, no lock, no
// channel) that the resolver goroutine sweeps; only when the resolver has
// gone to sleep (asleep) does the first new miss wake it (kick, one
// system call), so an idle resolver costs nothing and a miss still waits
// at most the resolver's sweep interval.
type neighTable struct {
	snap    atomic.Pointer[neighSnapshot]
	pending [pendingSlots]atomic.Uint32
	asleep  atomic.Bool
	kick    func() // set by the resolver before it first sleeps
}

func newNeighTable() *neighTable {
	t := &neighTable{}
	t.snap.Store(&neighSnapshot{macs: map[uint32][6]byte{}, mtu: defaultMTU})
	return t
}

// nextHop implements Port.NextHop for addr in host byte order.
func (t *neighTable) nextHop(addr uint32) pipeline.Hop {
	s := t.snap.Load()
	hop := addr
	if !s.isOnLink(addr) {
		hop = s.gateway
		if hop == 0 {
			return pipeline.Hop{}
		}
	}
	if mac, ok := s.macs[hop]; ok {
		return pipeline.Hop{State: pipeline.HopResolved, Addr: hop, MAC: mac}
	}
	t.request(hop)
	return pipeline.Hop{State: pipeline.HopPending, Addr: hop}
}

// addr implements Port.Addr: the interface address whose prefix holds
// dst, else its first, else 0.
func (t *neighTable) addr(dst uint32) uint32 {
	s := t.snap.Load()
	for i, p := range s.onLink {
		if p.contains(dst) {
			return s.addrs[i]
		}
	}
	if len(s.addrs) > 0 {
		return s.addrs[0]
	}
	return 0
}

// broadcast implements Port.Broadcast: a is the all-ones host address of
// one of the connected prefixes (a /31 or /32 has none, RFC 3021).
func (t *neighTable) broadcast(a uint32) bool {
	for _, p := range t.snap.Load().onLink {
		if p.mask < 0xfffffffe && a == p.addr|^p.mask {
			return true
		}
	}
	return false
}

// mtu implements Port.MTU.
func (t *neighTable) mtu() int { return t.snap.Load().mtu }

func (s *neighSnapshot) isOnLink(addr uint32) bool {
	for _, p := range s.onLink {
		if p.contains(addr) {
			return true
		}
	}
	return false
}

// request asks the resolver to resolve addr. Repeated misses for the same
// address only read the slot, so a flood of packets to one unresolved host
// does not bounce a cache line between workers.
func (t *neighTable) request(addr uint32) {
	slot := &t.pending[(addr*0x9e3779b1)>>(32-6)]
	if slot.Load() != addr {
		slot.Store(addr)
		// The resolver sets asleep, then looks at the slots; a miss stores
		// its slot, then looks at asleep: one of the two sees the other.
		if t.asleep.Load() && t.asleep.CompareAndSwap(true, false) {
			t.kick()
		}
	}
}

// hasRequests reports whether a request is waiting.
func (t *neighTable) hasRequests() bool {
	for i := range t.pending {
		if t.pending[i].Load() != 0 {
			return true
		}
	}
	return false
}

// takeRequests calls fn for every pending request and clears it.
func (t *neighTable) takeRequests(fn func(addr uint32)) {
	for i := range t.pending {
		if a := t.pending[i].Swap(0); a != 0 {
			fn(a)
		}
	}
}

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func netipAddr(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

func newPrefix4(p netip.Prefix) prefix4 {
	p = p.Masked()
	var mask uint32
	if b := p.Bits(); b > 0 {
		mask = ^uint32(0) << (32 - b)
	}
	return prefix4{addr: addr4(p.Addr()), mask: mask}
}
