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
	// nat precomputes at creation: packet.Delta values, which are below
	// 2^17 (the table keeps those 17 bits). Opaque here otherwise.
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

	// Track is nat's protocol tracking, one opaque word per direction
	// (TCP: what that direction has sent and advertised), written after
	// Insert by SetTrack.
	Track [2]uint64

	// Start is when the session was inserted: Insert sets it to its now
	// argument, whatever the caller put here.
	Start Time
	// Rule and Ingress are opaque labels for display and logging: nat's
	// name of the rule that created the session, and the caller's index of
	// the interface its first packet arrived on.
	Rule    uint16
	Ingress uint16
}

// Hot is one direction of a session as the per-packet path reads it,
// copied out of the table by Table.Hot: the translated tuple, that
// direction's checksum deltas and the flags. It is three words, as the
// table stores them, so that Hot inlines and the copy stays in
// registers; the accessors take the words apart and inline too.
type Hot struct {
	addrs  uint64 // the other direction's key: SrcAddr<<32 | DstAddr
	ports  uint64 // its ports and protocol, as packet.Tuple.Words' second word
	deltas uint64 // L3Delta<<32 | Flags<<24 | L4Delta (entry.deltas)
}

// Xlate returns the packet's tuple after translation: the other
// direction's key reversed (Key[1-dir].Reverse()).
func (h Hot) Xlate() packet.Tuple {
	return packet.Tuple{SrcAddr: h.SrcAddr(), DstAddr: h.DstAddr(), SrcPort: h.SrcPort(), DstPort: h.DstPort(), Proto: uint8(h.ports)}
}

// SrcAddr is the translated packet's source address.
func (h Hot) SrcAddr() uint32 { return uint32(h.addrs) }

// DstAddr is the translated packet's destination address.
func (h Hot) DstAddr() uint32 { return uint32(h.addrs >> 32) }

// SrcPort is the translated packet's source port (an ICMP query's
// identifier).
func (h Hot) SrcPort() uint16 { return uint16(h.ports >> 32) }

// DstPort is the translated packet's destination port.
func (h Hot) DstPort() uint16 { return uint16(h.ports >> 48) }

// L3Delta is the direction's IPv4 header checksum delta (packet.Delta).
func (h Hot) L3Delta() uint32 { return uint32(h.deltas>>32) & deltaMask }

// L4Delta is the direction's transport checksum delta (packet.Delta).
func (h Hot) L4Delta() uint32 { return uint32(h.deltas) & deltaMask }

// Flags are the session's nat-owned bits, as inserted.
func (h Hot) Flags() uint8 { return uint8(h.deltas >> 24) }

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
	// deltas[d] is label<<52 | L3Delta[d]<<32 | Flags<<24 | L4Delta[d]: a
	// direction's whole rewrite beside the other's key is three words.
	// The deltas' spare high bits hold the session's labels (App,
	// MapEntry; see packLabels), 12 bits in each direction's word, so that
	// the entry stays small (120 bytes with the start time and origin).
	deltas [2]uint64
	track  [2]uint64 // Track
	seen   uint32    // Time of the last packet
	life   uint32    // state<<24 | timeout in seconds
	// parent is Session.Parent while the slot lives and links the free
	// list (id+1 of the next free slot) while it is free.
	parent    uint32
	parentGen uint32
	pkts      [2]uint64 // per direction
	bytes     [2]uint64 // per direction
	start     uint32    // Session.Start
	origin    uint32    // Session.Rule<<16 | Session.Ingress
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

// deltaMask keeps the 17 bits of a packet.Delta; labelShift is where a
// deltas word keeps its 12 bits of the session's labels.
const (
	deltaMask  = 1<<17 - 1
	labelShift = 52
)

// packLabels returns a session's App and MapEntry as 24 bits, spread
// 12 and 12 over the two deltas words.
func packLabels(s *Session) uint32 { return uint32(s.App) | uint32(uint16(s.MapEntry))<<8 }

func packDeltas(s *Session, d Dir) uint64 {
	label := uint64(packLabels(s)>>(12*d)) & 0xfff
	return label<<labelShift | uint64(s.L3Delta[d]&deltaMask)<<32 | uint64(s.Flags)<<24 | uint64(s.L4Delta[d]&deltaMask)
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

// Hot copies out what a packet travelling in direction dir of session
// (id, gen) needs and reports whether the slot still held generation gen
// after the copy. On false the copy is garbage: the session ended (and
// its slot may hold another session), and the packet is a miss. It is a
// seqlock reader: atomic loads of the fields, then the generation. It
// takes no lock, writes nothing shared, allocates nothing and inlines;
// id must be below Capacity, as every id the table hands out is.
func (t *Table) Hot(id, gen uint32, dir Dir) (h Hot, ok bool) {
	s := &t.sessions[id]
	h.ports = atomic.LoadUint64(&s.ports[(dir^1)&1])
	h.addrs = atomic.LoadUint64(&s.addrs[(dir^1)&1])
	h.deltas = atomic.LoadUint64(&s.deltas[dir&1])
	return h, atomic.LoadUint64(&s.ports[Orig])&genMask == uint64(gen)<<genShift && gen&1 != 0
}

// HotTCP is Hot for a TCP packet: under the same check it also copies
// the protocol state and both directions' tracking words (Session.Track,
// indexed by Dir).
func (t *Table) HotTCP(id, gen uint32, dir Dir) (h Hot, state uint8, track [2]uint64, ok bool) {
	s := &t.sessions[id]
	h.ports = atomic.LoadUint64(&s.ports[(dir^1)&1])
	h.addrs = atomic.LoadUint64(&s.addrs[(dir^1)&1])
	h.deltas = atomic.LoadUint64(&s.deltas[dir&1])
	state = uint8(atomic.LoadUint32(&s.life) >> 24)
	track[0] = atomic.LoadUint64(&s.track[0])
	track[1] = atomic.LoadUint64(&s.track[1])
	return h, state, track, atomic.LoadUint64(&s.ports[Orig])&genMask == uint64(gen)<<genShift && gen&1 != 0
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
	var labels uint32
	for d := range 2 {
		a, p := atomic.LoadUint64(&e.addrs[d]), atomic.LoadUint64(&e.ports[d])
		s.Key[d] = packet.TupleFromWords(a, p&keyMask)
		w := atomic.LoadUint64(&e.deltas[d])
		s.L3Delta[d], s.L4Delta[d] = uint32(w>>32)&deltaMask, uint32(w)&deltaMask
		s.Flags = uint8(w >> 24)
		labels |= uint32(w>>labelShift) << (12 * d)
		s.Track[d] = atomic.LoadUint64(&e.track[d])
	}
	s.App, s.MapEntry = uint8(labels), int16(labels>>8)
	s.Parent = atomic.LoadUint32(&e.parent)
	s.ParentGen = atomic.LoadUint32(&e.parentGen)
	s.Start = Time(atomic.LoadUint32(&e.start))
	o := atomic.LoadUint32(&e.origin)
	s.Rule, s.Ingress = uint16(o>>16), uint16(o)
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

// SetTrack replaces the tracking word of direction dir of session (id,
// gen), if the slot still holds that generation, like SetState. It is one
// plain atomic store: nat keeps each direction's word written by the
// packets of that direction, so concurrent workers rarely write the same
// word, and a lost update is repaired by the direction's next packet.
func (t *Table) SetTrack(id, gen uint32, dir Dir, w uint64) bool {
	if !t.Valid(id, gen) {
		return false
	}
	atomic.StoreUint64(&t.sessions[id].track[dir&1], w)
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
