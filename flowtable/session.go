package flowtable

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/packet"
)

// Dir is the direction of a packet relative to its session.
type Dir uint8

// Directions. A session's Key is indexed by Dir.
const (
	Orig  Dir = 0 // as the session's first packet travelled
	Reply Dir = 1 // the opposite direction
)

// String returns "orig" or "reply".
func (d Dir) String() string {
	if d == Orig {
		return "orig"
	}
	return "reply"
}

// Time is the table's coarse clock in seconds since an epoch the caller
// chooses. The pipeline reads its clock once per burst. Comparisons are
// modulo 2^32 (a time more than 68 years ahead counts as the past).
type Time uint32

// MaxTimeout is the largest session timeout the table stores (about 194
// days); Insert and SetState clamp longer ones to it.
const MaxTimeout = 1<<24 - 1

// Session is the description of one translated flow: what Insert stores
// and what Read and Range copy out. It is a plain value; the table keeps
// its own storage, written by Insert and read by every worker without a
// lock, and never hands out a pointer to it.
type Session struct {
	// Key[Orig] is the tuple of the first packet as it arrived;
	// Key[Reply] is the tuple a reply arrives with (after NAT: the reverse
	// of the translated first packet).
	Key [2]packet.Tuple

	// L3Delta and L4Delta are, per direction, the checksum adjustments
	// (packet.Delta values) nat precomputes at creation. Opaque here.
	L3Delta [2]uint32
	L4Delta [2]uint32 // see L3Delta

	// Parent and ParentGen name the parent session (an ALG control
	// connection) by id and generation; ParentGen 0 means none (a live
	// generation is odd). The generation makes the reference safe to keep:
	// once the parent ends, Read(Parent, ParentGen) fails even after its
	// slot holds another session.
	Parent    uint32
	ParentGen uint32

	App      uint8 // portmap.App of the session
	Flags    uint8 // nat-owned bits
	MapEntry int16 // index of the port-mapping entry that classified it, -1 none
}

// Hot is what the per-packet path reads of a session for a packet of one
// direction, copied out of the table by Table.Hot. It is kept small: one
// direction's rewrite, the flags and the protocol state.
type Hot struct {
	// Xlate is the packet's tuple after translation: the other direction's
	// key reversed (Key[1-dir].Reverse()).
	Xlate packet.Tuple
	// L3Delta and L4Delta are the checksum deltas of this direction.
	L3Delta, L4Delta uint32
	Flags            uint8 // nat-owned bits, as inserted
	State            uint8 // protocol state, as last set by Insert or SetState
}

// entry is the table's storage of one session slot. Every word a
// lock-free reader loads while a writer may reuse the slot is accessed
// atomically (see the package documentation); the struct holds no
// pointers, so the garbage collector never scans the array.
type entry struct {
	// ports[d] mirrors the ports and protocol of Key[d], in the layout of
	// the second word of packet.Tuple.Words, with the slot's generation in
	// the bits Words leaves zero (genShift). The generation is odd while
	// the session lives. ports[Orig] is the seqlock word: written last by
	// Insert, first when the session dies.
	ports [2]uint64
	// addrs[d] is the first word of Key[d].Words: both addresses.
	addrs [2]uint64
	l3    [2]uint32 // L3Delta
	l4    [2]uint32 // L4Delta
	meta  uint32    // Flags | App<<8 | uint16(MapEntry)<<16
	seen  uint32    // Time of the last packet
	life  uint32    // state<<24 | timeout in seconds
	// parent is Session.Parent while the slot lives and links the free
	// list (id+1 of the next free slot) while it is free.
	parent    uint32
	parentGen uint32
	_         uint32
	pkts      [2]uint64 // per direction
	bytes     [2]uint64 // per direction
}

// The generation field of entry.ports: bits 8..31, which a Tuple's second
// word never uses.
const (
	genShift = 8
	genBits  = 24
	genMask  = (1<<genBits - 1) << genShift
	keyMask  = ^uint64(genMask)
	liveBit  = 1 << genShift // generation odd: the session lives
)

func genOf(p uint64) uint32 { return uint32(p&genMask) >> genShift }

func packMeta(s *Session) uint32 {
	return uint32(s.Flags) | uint32(s.App)<<8 | uint32(uint16(s.MapEntry))<<16
}

// Live reports whether slot id holds a live session.
func (t *Table) Live(id uint32) bool {
	return id < uint32(len(t.sessions)) && atomic.LoadUint64(&t.sessions[id].ports[Orig])&liveBit != 0
}

// Gen returns the current generation of slot id: odd while a session
// lives there, bumped by every insert and delete.
func (t *Table) Gen(id uint32) uint32 {
	return genOf(atomic.LoadUint64(&t.sessions[id].ports[Orig]))
}

// Valid reports whether slot id still holds the session of generation gen
// (as returned by a lookup or Insert). Read, Hot and Range validate what
// they copy themselves; Valid is for a reader of State, Counters or
// LastSeen, which it calls after reading them.
func (t *Table) Valid(id, gen uint32) bool {
	if id >= uint32(len(t.sessions)) {
		return false
	}
	p := atomic.LoadUint64(&t.sessions[id].ports[Orig])
	return p&liveBit != 0 && genOf(p) == gen
}

// Hot copies into h what a packet travelling in direction dir of session
// (id, gen) needs — the translated tuple, that direction's checksum
// deltas, the flags and the protocol state — and reports whether the slot
// still held generation gen after the copy. On false h is garbage: the
// session ended (and its slot may hold another session), and the packet
// is a miss. It is a seqlock reader: atomic loads of the fields, then the
// generation. It takes no lock, writes nothing and allocates nothing.
func (t *Table) Hot(id, gen uint32, dir Dir, h *Hot) bool {
	if id >= uint32(len(t.sessions)) {
		return false
	}
	s := &t.sessions[id]
	o := (dir ^ 1) & 1
	p := atomic.LoadUint64(&s.ports[o])
	a := atomic.LoadUint64(&s.addrs[o])
	h.L3Delta = atomic.LoadUint32(&s.l3[dir&1])
	h.L4Delta = atomic.LoadUint32(&s.l4[dir&1])
	h.Flags = uint8(atomic.LoadUint32(&s.meta))
	h.State = uint8(atomic.LoadUint32(&s.life) >> 24)
	// Key[o] reversed: its destination is the new source.
	h.Xlate = packet.Tuple{
		SrcAddr: uint32(a), DstAddr: uint32(a >> 32),
		SrcPort: uint16(p >> 32), DstPort: uint16(p >> 48), Proto: uint8(p),
	}
	return genOf(atomic.LoadUint64(&s.ports[Orig])) == gen && gen&1 != 0
}

// Read copies session (id, gen) into s and reports whether the slot still
// held generation gen after the copy (false: the session ended; s is
// garbage). It is the slow-path reader of everything Insert stored.
func (t *Table) Read(id, gen uint32, s *Session) bool {
	if id >= uint32(len(t.sessions)) {
		return false
	}
	t.copyOut(&t.sessions[id], s)
	return t.Valid(id, gen)
}

// copyOut copies e's Session fields with atomic loads.
func (t *Table) copyOut(e *entry, s *Session) {
	for d := range 2 {
		a, p := atomic.LoadUint64(&e.addrs[d]), atomic.LoadUint64(&e.ports[d])
		s.Key[d] = packet.TupleFromWords(a, p&keyMask)
		s.L3Delta[d] = atomic.LoadUint32(&e.l3[d])
		s.L4Delta[d] = atomic.LoadUint32(&e.l4[d])
	}
	m := atomic.LoadUint32(&e.meta)
	s.Flags, s.App, s.MapEntry = uint8(m), uint8(m>>8), int16(m>>16)
	s.Parent = atomic.LoadUint32(&e.parent)
	s.ParentGen = atomic.LoadUint32(&e.parentGen)
}

// Key returns Key[dir] of the session in slot id, read without a data race
// even while the slot is being reused, and the generation it belongs to.
// The key is consistent with the generation; check the generation with
// Valid (or compare it with the one a lookup returned) to know whether it
// is still the same session.
func (t *Table) Key(id uint32, dir Dir) (packet.Tuple, uint32) {
	s := &t.sessions[id]
	for {
		p := atomic.LoadUint64(&s.ports[dir])
		a := atomic.LoadUint64(&s.addrs[dir])
		if atomic.LoadUint64(&s.ports[dir]) == p {
			return packet.TupleFromWords(a, p&keyMask), genOf(p)
		}
	}
}

// Touch records a packet of bytes bytes in direction dir at time now:
// last-seen time and the per-direction counters, with atomic operations
// and no lock. It does not check the generation: a packet that raced its
// session's expiry may count once on the slot's next session.
func (t *Table) Touch(id uint32, dir Dir, bytes int, now Time) {
	s := &t.sessions[id]
	atomic.StoreUint32(&s.seen, uint32(now))
	atomic.AddUint64(&s.pkts[dir&1], 1)
	atomic.AddUint64(&s.bytes[dir&1], uint64(bytes))
}

// State returns the protocol state and the idle timeout in seconds that
// nat last set for session id. Check Valid after reading it.
func (t *Table) State(id uint32) (state uint8, timeout uint32) {
	l := atomic.LoadUint32(&t.sessions[id].life)
	return uint8(l >> 24), l & MaxTimeout
}

// SetState replaces the protocol state and idle timeout of session (id,
// gen), if the slot still holds that generation. Timeouts above
// MaxTimeout are clamped. The check and the store are not one atomic
// step: a session that expires and whose slot is reused in between may
// receive the state once (the next packet of its own sets it again).
func (t *Table) SetState(id, gen uint32, state uint8, timeout uint32) bool {
	if !t.Valid(id, gen) {
		return false
	}
	atomic.StoreUint32(&t.sessions[id].life, packLife(state, timeout))
	return true
}

func packLife(state uint8, timeout uint32) uint32 {
	return uint32(state)<<24 | min(timeout, MaxTimeout)
}

// Counters returns the packets and bytes seen per direction. Check Valid
// after reading them.
func (t *Table) Counters(id uint32) (pkts, bytes [2]uint64) {
	s := &t.sessions[id]
	for d := range 2 {
		pkts[d] = atomic.LoadUint64(&s.pkts[d])
		bytes[d] = atomic.LoadUint64(&s.bytes[d])
	}
	return pkts, bytes
}

// LastSeen returns the time of the last Touch (or of Insert). Check Valid
// after reading it.
func (t *Table) LastSeen(id uint32) Time {
	return Time(atomic.LoadUint32(&t.sessions[id].seen))
}

// expired reports whether the live session s idled past its timeout at
// now. A last-seen time after now (another worker's clock ran ahead) is
// not expired.
func expired(s *entry, now Time) bool {
	idle := int64(int32(uint32(now) - atomic.LoadUint32(&s.seen)))
	return idle >= int64(atomic.LoadUint32(&s.life)&MaxTimeout)
}
