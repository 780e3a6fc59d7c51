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
// bitmaps under the NAT's one block mutex (blockPools), taken inside a
// host shard's, only when a block changes hands. Any worker may allocate
// or release for any host.

// blockResult is what allocation decided.
type blockResult uint8

const (
	blockOK                 blockResult = iota
	blockQuotaExceeded                  // the host holds its limit of full blocks
	blockPortsExhausted                 // the host's address has no free block left
	blockAddressesExhausted             // a new host: no address of the rule has a free block
)

const hostShards = 64

// blockPools is a NAT's registry of port block pools, one per layout —
// pool addresses, port range and block size — kept across reloads like
// the port spaces, so that a reload that leaves a rule's layout as it was
// keeps every host's blocks (and its blocks per host, an argument of
// allocate, may change). A reload that changes the layout of addresses
// whose blocks are still held makes a new pool; blocks never overlap
// across pools: a pool takes a block on an address only while no other
// pool holds blocks there (take), so a new layout waits until the old
// one's sessions are gone (`fastnat clear sessions` hastens that). The
// mutex guards every pool's block bitmaps and users; it is taken only
// when a block changes hands.
type blockPools struct {
	mu    sync.Mutex
	byKey map[string]*blockPool
	users atomic.Pointer[map[uint32][]*blockPool] // per address, the pools that have held blocks on it
}

// pool returns the pool of addrs, ports lo-hi and blocks of size, made on
// first use.
func (bp *blockPools) pool(addrs []uint32, lo, hi uint16, size int, spaces *pools) (*blockPool, error) {
	key := fmt.Sprintf("%v|%d-%d|%d", addrs, lo, hi, size)
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if b, ok := bp.byKey[key]; ok {
		return b, nil
	}
	b, err := newBlockPool(addrs, lo, hi, size, spaces, bp)
	if err != nil {
		return nil, err
	}
	if bp.byKey == nil {
		bp.byKey = map[string]*blockPool{}
	}
	bp.byKey[key] = b
	return b, nil
}

// release gives back port of class on addr that inside host held in a
// port block, and the block when the port was its last in use. It
// reports false, having changed nothing, when no pool's block of the host
// holds the port.
func (bp *blockPools) release(class int, host, addr uint32, port uint16, log *eventLog, now int64) bool {
	m := bp.users.Load()
	if m == nil {
		return false
	}
	for _, b := range (*m)[addr] {
		if b.release(class, host, addr, port, log, now) {
			return true
		}
	}
	return false
}

// use reports every pool, for metrics.
func (bp *blockPools) use() []*blockPool {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	out := make([]*blockPool, 0, len(bp.byKey))
	for _, b := range bp.byKey {
		out = append(out, b)
	}
	return out
}

// blockPool is the port block allocator of one layout: pool addresses,
// port range and block size.
type blockPool struct {
	lo      uint16 // first port of the range
	size    uint16 // ports per block
	perAddr int    // blocks per address
	addrs   []uint32
	index   map[uint32]int // address → its index in addrs
	spaces  *pools
	shared  *blockPools

	used  [][]uint64 // per address: bit i set = block i is held; under shared.mu
	free  []int      // per address: blocks not held; under shared.mu
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
	rule  uint16 // the rule's index when the block was taken, for its release event
	inUse int32  // ports of the block the host holds, every class
	since int64  // Unix ms it was allocated, for the release event
}

// newBlockPool builds the allocator for pool addrs and port range lo-hi,
// in blocks of size ports, under shared's lock (a pool of its own when
// nil).
func newBlockPool(addrs []uint32, lo, hi uint16, size int, spaces *pools, shared *blockPools) (*blockPool, error) {
	span := int(hi) - int(lo) + 1
	if size < 1 || size > span || len(addrs) == 0 {
		return nil, fmt.Errorf("blocks of %d ports in %d-%d on %d addresses: %w", size, lo, hi, len(addrs), ErrRules)
	}
	if shared == nil {
		shared = &blockPools{}
	}
	b := &blockPool{lo: lo, size: uint16(size), perAddr: span / size,
		addrs: addrs, index: make(map[uint32]int, len(addrs)), spaces: spaces, shared: shared,
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
// else in a new block, while the host holds fewer than limit. A host's
// blocks all lie on one address (paired pooling, RFC 4787 REQ-2): on
// address on if it is not 0 (an ALG's data connection on the address the
// peer knows the host by), else the address the host's inside address
// hashes to, else any with room. It records block and pool events
// through log at now (Unix ms), naming the rule by index. reserved
// reports ports a nat server owns, which are left claimed and never
// handed out.
func (b *blockPool) allocate(class int, host uint32, sport uint16, start uint32, reserved func(addr uint32, port uint16) bool,
	limit int, rule uint16, on uint32, log *eventLog, now int64) (uint32, uint16, blockResult) {
	s := &b.hosts[b.shard(host)]
	s.mu.Lock()
	defer s.mu.Unlock()
	hb := s.m[host]
	if hb != nil && on != 0 && hb.addr != on {
		return 0, 0, blockPortsExhausted // its blocks are on another address
	}
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
		if len(hb.blocks) >= limit {
			b.quota.Add(1)
			log.emitLimited(&natlog.Event{Type: natlog.QuotaExceeded, Time: now, RuleKind: natlog.RuleOutbound, Rule: rule,
				Inside: packet.Tuple{SrcAddr: host}, Limit: uint32(limit) * uint32(b.size)},
				natlog.ThrottleKey(natlog.QuotaExceeded, host, rule))
			return 0, 0, blockQuotaExceeded
		}
	}
	// A new block: on the host's address if it has one (or the one asked
	// for), else on the address its inside address hashes to, else on
	// any with room.
	ai, index, ok := 0, uint16(0), false
	switch {
	case hb != nil || on != 0:
		a := on
		if hb != nil {
			a = hb.addr
		}
		ai, ok = b.index[a]
		if ok {
			index, ok = b.take(ai, start)
		}
		if !ok {
			b.exhausted.Add(1)
			log.emitLimited(&natlog.Event{Type: natlog.PortsExhausted, Time: now, RuleKind: natlog.RuleOutbound, Rule: rule,
				Inside: packet.Tuple{Proto: protoOfClass(class)}, Outside: packet.Tuple{SrcAddr: a}},
				natlog.ThrottleKey(natlog.PortsExhausted, a, uint16(class)))
			return 0, 0, blockPortsExhausted
		}
	default:
		first := int(mix32(host) % uint32(len(b.addrs)))
		for k := range b.addrs {
			ai = (first + k) % len(b.addrs)
			if index, ok = b.take(ai, start); ok {
				break
			}
		}
		if !ok {
			b.exhausted.Add(1)
			log.emitLimited(&natlog.Event{Type: natlog.AddressesExhausted, Time: now, RuleKind: natlog.RuleOutbound, Rule: rule},
				natlog.ThrottleKey(natlog.AddressesExhausted, 0, rule))
			return 0, 0, blockAddressesExhausted
		}
	}
	if hb == nil {
		hb = &hostBlocks{addr: b.addrs[ai]}
		if s.m == nil {
			s.m = make(map[uint32]*hostBlocks)
		}
		s.m[host] = hb
	}
	hb.blocks = append(hb.blocks, heldBlock{index: index, rule: rule, since: now})
	b.allocated.Add(1)
	first, last := b.blockRange(index)
	log.emit(&natlog.Event{Type: natlog.BlockAlloc, Time: now, RuleKind: natlog.RuleOutbound, Rule: rule,
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

// release gives back port of class on addr that inside host held in one
// of its blocks of this pool — the port's bit in its port space, and the
// block when it was the block's last port in use — and reports true; if
// the host holds no block of this pool with the port, it changes nothing
// and reports false.
func (b *blockPool) release(class int, host, addr uint32, port uint16, log *eventLog, now int64) bool {
	i, ok := b.indexOf(port)
	if !ok {
		return false
	}
	s := &b.hosts[b.shard(host)]
	s.mu.Lock()
	defer s.mu.Unlock()
	hb := s.m[host]
	if hb == nil || hb.addr != addr {
		return false
	}
	for k := range hb.blocks {
		if hb.blocks[k].index == i {
			b.spaces.space(addr, class).release(port)
			if hb.blocks[k].inUse--; hb.blocks[k].inUse <= 0 {
				b.drop(s, host, hb, k, log, now)
			}
			return true
		}
	}
	return false
}

// drop frees the host's k-th block. The host's shard is locked.
func (b *blockPool) drop(s *hostShard, host uint32, hb *hostBlocks, k int, log *eventLog, now int64) {
	blk := hb.blocks[k]
	hb.blocks = append(hb.blocks[:k], hb.blocks[k+1:]...)
	if len(hb.blocks) == 0 {
		delete(s.m, host)
	}
	ai := b.addrIndex(hb.addr)
	b.shared.mu.Lock()
	b.used[ai][blk.index>>6] &^= 1 << (blk.index & 63)
	b.free[ai]++
	b.shared.mu.Unlock()
	b.allocated.Add(-1)
	first, last := b.blockRange(blk.index)
	log.emit(&natlog.Event{Type: natlog.BlockRelease, Time: now, Start: blk.since, RuleKind: natlog.RuleOutbound, Rule: blk.rule,
		Inside: packet.Tuple{SrcAddr: host}, Outside: packet.Tuple{SrcAddr: hb.addr}, First: first, Last: last})
}

// take marks a free block of address ai as held, searching from a block
// the random start picks, and returns its number. It takes none while
// another pool holds blocks on the address (see blockPools).
func (b *blockPool) take(ai int, start uint32) (uint16, bool) {
	b.shared.mu.Lock()
	defer b.shared.mu.Unlock()
	if b.free[ai] == 0 || !b.mayTake(b.addrs[ai]) {
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

// mayTake reports whether b may take a block on addr — no other pool
// holds one there — and records b as a user of addr. shared.mu held.
func (b *blockPool) mayTake(addr uint32) bool {
	var users []*blockPool
	if m := b.shared.users.Load(); m != nil {
		users = (*m)[addr]
	}
	mine := false
	for _, o := range users {
		if o == b {
			mine = true
		} else if o.free[o.index[addr]] < o.perAddr {
			return false
		}
	}
	if !mine {
		next := map[uint32][]*blockPool{}
		if m := b.shared.users.Load(); m != nil {
			for k, v := range *m {
				next[k] = v
			}
		}
		next[addr] = append(append([]*blockPool(nil), users...), b)
		b.shared.users.Store(&next)
	}
	return true
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
		panic(fmt.Sprintf("nat: %v is not an address of the block pool %v", Addr(addr), b.addrs))
	}
	return i
}

// BlockUse is a port-block rule's blocks, for metrics.
type BlockUse struct {
	Rule          int    // index of the nat.outbound rule
	Size          int    // ports per block
	Held          int64  // blocks held by hosts now
	Capacity      int    // blocks the pool has
	QuotaExceeded uint64 // allocations refused at the per-host limit
	Exhausted     uint64 // allocations refused for want of a free block
}

func (b *blockPool) use() BlockUse {
	return BlockUse{Size: int(b.size), Held: b.allocated.Load(), Capacity: b.perAddr * len(b.addrs),
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
