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

// Session is one translated flow. It lives in a preallocated array of the
// Table and is addressed by a uint32 id; it holds no pointers, so the
// garbage collector never scans the array.
//
// The exported fields are written once by Insert (from the caller's copy)
// and are immutable while the session lives; read them through the pointer
// Get returns, and never copy a live Session (its unexported counters are
// updated atomically by other workers). See the package documentation for
// when a slot may be reused under a reader.
type Session struct {
	// Key[Orig] is the tuple of the first packet as it arrived;
	// Key[Reply] is the tuple a reply arrives with (after NAT: the reverse
	// of the translated first packet).
	Key [2]packet.Tuple

	// ports[d] mirrors the ports and protocol of Key[d] for lock-free
	// readers, in the layout of the second word of packet.Tuple.Words, with
	// the slot's generation in the bits Words leaves zero (genShift). The
	// generation is odd while the session lives. Atomic.
	ports [2]uint64

	// L3Delta and L4Delta are, per direction, the checksum adjustments
	// (packet.Delta values) nat precomputes at creation. Opaque here.
	L3Delta [2]uint32
	L4Delta [2]uint32 // see L3Delta

	// Parent is the id+1 of the parent session (an ALG control
	// connection), 0 for none. While the slot is free it links the free
	// list.
	Parent uint32

	App      uint8 // portmap.App of the session
	Flags    uint8 // nat-owned bits
	MapEntry int16 // index of the port-mapping entry that classified it, -1 none

	pkts  [2]uint64 // atomic, per direction
	bytes [2]uint64 // atomic, per direction
	seen  uint32    // atomic: Time of the last packet
	life  uint32    // atomic: state<<24 | timeout in seconds
}

// The generation field of Session.ports: bits 8..31, which a Tuple's
// second word never uses.
const (
	genShift = 8
	genBits  = 24
	genMask  = (1<<genBits - 1) << genShift
	keyMask  = ^uint64(genMask)
	liveBit  = 1 << genShift // generation odd: the session lives
)

func genOf(p uint64) uint32 { return uint32(p&genMask) >> genShift }

// Get returns the record in slot id, or nil if id is out of range. The
// pointer stays valid for the life of the table, but what it points to is
// only the session a lookup found while the slot keeps that generation: a
// deleted session's fields stay readable until the slot is reused, then
// they are another session's (see Valid and the package documentation).
func (t *Table) Get(id uint32) *Session {
	if id >= uint32(len(t.sessions)) {
		return nil
	}
	return &t.sessions[id]
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
// (as returned by LookupGen or Gen). A worker that read a session's fields
// after a lookup checks Valid before acting on them if the session may
// have been deleted and its slot reused meanwhile.
func (t *Table) Valid(id, gen uint32) bool {
	p := atomic.LoadUint64(&t.sessions[id].ports[Orig])
	return p&liveBit != 0 && genOf(p) == gen
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
		a := atomic.LoadUint32(&s.Key[dir].SrcAddr)
		b := atomic.LoadUint32(&s.Key[dir].DstAddr)
		if atomic.LoadUint64(&s.ports[dir]) == p {
			return packet.TupleFromWords(uint64(a)<<32|uint64(b), p&keyMask), genOf(p)
		}
	}
}

// Touch records a packet of bytes bytes in direction dir at time now:
// last-seen time and the per-direction counters, with atomic operations
// and no lock.
func (t *Table) Touch(id uint32, dir Dir, bytes int, now Time) {
	s := &t.sessions[id]
	atomic.StoreUint32(&s.seen, uint32(now))
	atomic.AddUint64(&s.pkts[dir&1], 1)
	atomic.AddUint64(&s.bytes[dir&1], uint64(bytes))
}

// State returns the protocol state and the idle timeout in seconds that
// nat last set for session id.
func (t *Table) State(id uint32) (state uint8, timeout uint32) {
	l := atomic.LoadUint32(&t.sessions[id].life)
	return uint8(l >> 24), l & MaxTimeout
}

// SetState replaces the protocol state and idle timeout of session id.
// Timeouts above MaxTimeout are clamped.
func (t *Table) SetState(id uint32, state uint8, timeout uint32) {
	atomic.StoreUint32(&t.sessions[id].life, packLife(state, timeout))
}

func packLife(state uint8, timeout uint32) uint32 {
	return uint32(state)<<24 | min(timeout, MaxTimeout)
}

// Counters returns the packets and bytes seen per direction.
func (t *Table) Counters(id uint32) (pkts, bytes [2]uint64) {
	s := &t.sessions[id]
	for d := range 2 {
		pkts[d] = atomic.LoadUint64(&s.pkts[d])
		bytes[d] = atomic.LoadUint64(&s.bytes[d])
	}
	return pkts, bytes
}

// LastSeen returns the time of the last Touch (or of Insert).
func (t *Table) LastSeen(id uint32) Time {
	return Time(atomic.LoadUint32(&t.sessions[id].seen))
}

// expired reports whether the live session s idled past its timeout at
// now. A last-seen time after now (another worker's clock ran ahead) is
// not expired.
func expired(s *Session, now Time) bool {
	idle := int64(int32(uint32(now) - atomic.LoadUint32(&s.seen)))
	return idle >= int64(atomic.LoadUint32(&s.life)&MaxTimeout)
}
