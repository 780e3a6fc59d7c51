package nat

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
)

// Port block allocation (PBA): an outbound rule with a block size hands
// each inside host whole blocks of consecutive ports on one public
// address (paired pooling, RFC 4787 REQ-2), and the host's sessions take
// their public ports from its blocks only. One event per block allocated
// and released, instead of one per session, is what a carrier-grade NAT
// must log (RFC 6888 §4 on logging volume): "who used 198.18.0.204:40123"
// is answered by the block that held the port at the time. A host that
// fills its blocks gets another, on the same address, up to the rule's
// blocks per host; beyond that its new sessions are refused with a
// quota-exceeded event and counted.
//
// Blocks of one address are numbered from the rule's first port: block i
// covers lo+i*size to lo+(i+1)*size-1 in every port class (TCP, UDP and
// ICMP identifiers alike), so one block event covers all of a host's
// protocols. Ports are claimed in the address's shared portSpace bitmaps,
// as without blocks, so the rest of the NAT releases them the same way;
// the allocator owns which host holds which block and counts each
// block's ports in use, and gives a block back when its count reaches 0.
//
// Locking: a host's blocks are changed under its shard's mutex (64
// shards, slow path only, like endpoint-independent bindings); the block
// bitmaps of the rule's addresses under one mutex taken inside a host
// shard's, only when a block changes hands. Any worker may allocate or
// release for any host.

// blockResult is what allocation decided.
type blockResult uint8

const (
	blockOK                 blockResult = iota
	blockQuotaExceeded                  // the host holds its limit of full blocks
	blockPortsExhausted                 // the host's address has no free block left
	blockAddressesExhausted             // a new host: no address of the rule has a free block
)

const hostShards = 64

// blockPool is the port block allocator of one outbound rule.
type blockPool struct {
	rule    uint16 // index of the rule, for events
	lo      uint16 // first port of the rule's range
	size    uint16 // ports per block
	perAddr int    // blocks per address
	limit   int    // blocks per host
	addrs   []uint32
	index   map[uint32]int // address → its index in addrs
	spaces  *pools

	mu    sync.Mutex // guards used and free
	used  [][]uint64 // per address: bit i set = block i is held
	free  []int      // per address: blocks not held
	hosts [hostShards]hostShard

	allocated atomic.Int64 // blocks held now
	quota     atomic.Uint64
	exhausted atomic.Uint64
}

// hostShard holds the blocks of the inside hosts that hash to it.
type hostShard struct {
	mu sync.Mutex
	m  map[uint32]*hostBlocks
	_  [40]byte
}

// hostBlocks is what one inside host holds: blocks on one address.
type hostBlocks struct {
	addr   uint32
	blocks []heldBlock // oldest first
}

type heldBlock struct {
	index uint16 // block number on addr
	inUse int32  // ports of the block the host holds, every class
	since int64  // Unix ms it was allocated, for the release event
}

// newBlockPool builds the allocator for rule (index) whose pool is addrs
// and port range lo-hi, in blocks of size ports, at most limit per host.
func newBlockPool(rule int, addrs []uint32, lo, hi uint16, size, limit int, spaces *pools) (*blockPool, error) {
	span := int(hi) - int(lo) + 1
	if size < 1 || size > span || limit < 1 || len(addrs) == 0 {
		return nil, fmt.Errorf("outbound rule %d: blocks of %d ports, %d per host, in %d-%d on %d addresses: %w",
			rule, size, limit, lo, hi, len(addrs), ErrRules)
	}
	b := &blockPool{rule: uint16(rule), lo: lo, size: uint16(size), perAddr: span / size, limit: limit,
		addrs: addrs, index: make(map[uint32]int, len(addrs)), spaces: spaces,
		used: make([][]uint64, len(addrs)), free: make([]int, len(addrs))}
	for i, a := range addrs {
		b.index[a] = i
		b.used[i] = make([]uint64, (b.perAddr+63)/64)
		b.free[i] = b.perAddr
	}
	return b, nil
}

func (b *blockPool) shard(host uint32) int { return int(mix32(host) >> 26) } // top 6 bits: 64 shards

// blockRange returns the first and last port of block i.
func (b *blockPool) blockRange(i uint16) (uint16, uint16) {
	first := b.lo + i*b.size
	return first, first + b.size - 1
}

// allocate claims a public port of class for inside endpoint (host,
// sport): the source port itself when it lies free in one of the host's
// blocks, else a free port of its newest block that has one, searching
// from offset start in the block (the caller's random draw, RFC 6056),
// else in a new block. It records block and pool events through log at
// now (Unix ms). reserved reports ports a nat server owns, which are
// left claimed and never handed out.
func (b *blockPool) allocate(class int, host uint32, sport uint16, start uint32, reserved func(addr uint32, port uint16) bool,
	log *eventLog, now int64) (uint32, uint16, blockResult) {
	s := &b.hosts[b.shard(host)]
	s.mu.Lock()
	defer s.mu.Unlock()
	hb := s.m[host]
	if hb != nil {
		space := b.spaces.space(hb.addr, class)
		// Port preservation first, then the newest blocks.
		if i, ok := b.indexOf(sport); ok {
			for k := range hb.blocks {
				if hb.blocks[k].index == i && !reserved(hb.addr, sport) && space.claim(sport) {
					hb.blocks[k].inUse++
					return hb.addr, sport, blockOK
				}
			}
		}
		for k := len(hb.blocks) - 1; k >= 0; k-- {
			if p, ok := b.claimIn(space, hb.addr, hb.blocks[k].index, start, reserved); ok {
				hb.blocks[k].inUse++
				return hb.addr, p, blockOK
			}
		}
		if len(hb.blocks) >= b.limit {
			b.quota.Add(1)
			log.emitLimited(&natlog.Event{Type: natlog.QuotaExceeded, Time: now, RuleKind: natlog.RuleOutbound, Rule: b.rule,
				Inside: packet.Tuple{SrcAddr: host}, Limit: uint32(b.limit) * uint32(b.size)},
				natlog.ThrottleKey(natlog.QuotaExceeded, host, b.rule))
			return 0, 0, blockQuotaExceeded
		}
	}
	// A new block: on the host's address if it has one, else on the
	// address its inside address hashes to, else on any with room.
	ai, index, ok := 0, uint16(0), false
	if hb != nil {
		ai = b.addrIndex(hb.addr)
		index, ok = b.take(ai, start)
		if !ok {
			b.exhausted.Add(1)
			log.emitLimited(&natlog.Event{Type: natlog.PortsExhausted, Time: now, RuleKind: natlog.RuleOutbound, Rule: b.rule,
				Inside: packet.Tuple{Proto: protoOfClass(class)}, Outside: packet.Tuple{SrcAddr: hb.addr}},
				natlog.ThrottleKey(natlog.PortsExhausted, hb.addr, uint16(class)))
			return 0, 0, blockPortsExhausted
		}
	} else {
		first := int(mix32(host) % uint32(len(b.addrs)))
		for k := range b.addrs {
			ai = (first + k) % len(b.addrs)
			if index, ok = b.take(ai, start); ok {
				break
			}
		}
		if !ok {
			b.exhausted.Add(1)
			log.emitLimited(&natlog.Event{Type: natlog.AddressesExhausted, Time: now, RuleKind: natlog.RuleOutbound, Rule: b.rule},
				natlog.ThrottleKey(natlog.AddressesExhausted, 0, b.rule))
			return 0, 0, blockAddressesExhausted
		}
		hb = &hostBlocks{addr: b.addrs[ai]}
		if s.m == nil {
			s.m = make(map[uint32]*hostBlocks)
		}
		s.m[host] = hb
	}
	hb.blocks = append(hb.blocks, heldBlock{index: index, since: now})
	b.allocated.Add(1)
	first, last := b.blockRange(index)
	log.emit(&natlog.Event{Type: natlog.BlockAlloc, Time: now, RuleKind: natlog.RuleOutbound, Rule: b.rule,
		Inside: packet.Tuple{SrcAddr: host}, Outside: packet.Tuple{SrcAddr: hb.addr}, First: first, Last: last})
	k := len(hb.blocks) - 1
	space := b.spaces.space(hb.addr, class)
	p, ok := uint16(0), false
	if i, in := b.indexOf(sport); in && i == index && !reserved(hb.addr, sport) && space.claim(sport) {
		p, ok = sport, true
	} else {
		p, ok = b.claimIn(space, hb.addr, index, start, reserved)
	}
	if !ok {
		// Only nat server ports in a fresh block: give it back.
		b.drop(s, host, hb, k, log, now)
		return 0, 0, blockPortsExhausted
	}
	hb.blocks[k].inUse++
	return hb.addr, p, blockOK
}

// release gives back port of class on addr that inside host held, and
// the port's block when it was the block's last port in use.
func (b *blockPool) release(class int, host, addr uint32, port uint16, log *eventLog, now int64) {
	b.spaces.space(addr, class).release(port)
	i, ok := b.indexOf(port)
	if !ok {
		return
	}
	s := &b.hosts[b.shard(host)]
	s.mu.Lock()
	defer s.mu.Unlock()
	hb := s.m[host]
	if hb == nil || hb.addr != addr {
		return
	}
	for k := range hb.blocks {
		if hb.blocks[k].index == i {
			if hb.blocks[k].inUse--; hb.blocks[k].inUse <= 0 {
				b.drop(s, host, hb, k, log, now)
			}
			return
		}
	}
}

// drop frees the host's k-th block. The host's shard is locked.
func (b *blockPool) drop(s *hostShard, host uint32, hb *hostBlocks, k int, log *eventLog, now int64) {
	blk := hb.blocks[k]
	hb.blocks = append(hb.blocks[:k], hb.blocks[k+1:]...)
	if len(hb.blocks) == 0 {
		delete(s.m, host)
	}
	ai := b.addrIndex(hb.addr)
	b.mu.Lock()
	b.used[ai][blk.index>>6] &^= 1 << (blk.index & 63)
	b.free[ai]++
	b.mu.Unlock()
	b.allocated.Add(-1)
	first, last := b.blockRange(blk.index)
	log.emit(&natlog.Event{Type: natlog.BlockRelease, Time: now, Start: blk.since, RuleKind: natlog.RuleOutbound, Rule: b.rule,
		Inside: packet.Tuple{SrcAddr: host}, Outside: packet.Tuple{SrcAddr: hb.addr}, First: first, Last: last})
}

// take marks a free block of address ai as held, searching from a block
// the random start picks, and returns its number.
func (b *blockPool) take(ai int, start uint32) (uint16, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free[ai] == 0 {
		return 0, false
	}
	used := b.used[ai]
	for k, i := 0, int(start%uint32(b.perAddr)); k < b.perAddr; k, i = k+1, (i+1)%b.perAddr {
		if w := used[i>>6]; w&(1<<(i&63)) == 0 {
			used[i>>6] = w | 1<<(i&63)
			b.free[ai]--
			return uint16(i), true
		}
		if used[i>>6] == ^uint64(0) {
			// A full word: skip to the next one.
			skip := 63 - i&63
			k, i = k+skip, i+skip
		}
	}
	return 0, false
}

// claimIn claims a free port of block i on addr, from offset start.
func (b *blockPool) claimIn(space *portSpace, addr uint32, i uint16, start uint32, reserved func(uint32, uint16) bool) (uint16, bool) {
	first, last := b.blockRange(i)
	from := first + uint16(start%uint32(b.size))
	for tries := 0; tries < int(b.size); tries++ {
		p, ok := space.claimRange(first, last, from)
		if !ok {
			return 0, false
		}
		if !reserved(addr, p) {
			return p, true
		}
		// A nat server owns it: leave it claimed and look further.
		from = p + 1
		if p == last {
			from = first
		}
	}
	return 0, false
}

// indexOf returns the block a port belongs to, if any.
func (b *blockPool) indexOf(port uint16) (uint16, bool) {
	if port < b.lo {
		return 0, false
	}
	i := int(port-b.lo) / int(b.size)
	return uint16(i), i < b.perAddr
}

func (b *blockPool) addrIndex(addr uint32) int {
	i, ok := b.index[addr]
	if !ok {
		panic(fmt.Sprintf("nat: %v is not an address of the block pool of outbound rule %d", Addr(addr), b.rule))
	}
	return i
}

// BlockUse is a rule's port blocks, for metrics.
type BlockUse struct {
	Rule          int
	Held          int64  // blocks held by hosts now
	Capacity      int    // blocks the pool has
	QuotaExceeded uint64 // allocations refused at the per-host limit
	Exhausted     uint64 // allocations refused for want of a free block
}

func (b *blockPool) use() BlockUse {
	return BlockUse{Rule: int(b.rule), Held: b.allocated.Load(), Capacity: b.perAddr * len(b.addrs),
		QuotaExceeded: b.quota.Load(), Exhausted: b.exhausted.Load()}
}

// protoOfClass is the IP protocol of a port class.
func protoOfClass(class int) uint8 {
	switch class {
	case classTCP:
		return packet.ProtoTCP
	case classUDP:
		return packet.ProtoUDP
	}
	return packet.ProtoICMP
}
