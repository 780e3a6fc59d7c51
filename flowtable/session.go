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

// MaxTimeout is the largest session timeout the table stores (about 12
// days, above the configuration's limit of 7); Insert and SetState clamp
// longer ones to it.
const MaxTimeout = 1<<20 - 1

// HotFlags are the bits of Session.Flags the per-packet path reads: Hot
// returns them from the session's hot line. The other bits are kept with
// the cold data, for Read.
const HotFlags = 0x0f

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
	// nat precomputes at creation (packet.Delta values). The table keeps
	// Orig's, folded to 16 bits, and derives Reply's as their ones'
	// complement negation — translating a reply undoes what translating
	// the first packet did, so nat's deltas are symmetric that way; Read
	// returns the folded and derived values. Opaque here otherwise.
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
	Flags    uint8 // nat-owned bits; those in HotFlags are the per-packet path's
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
// copied out of the session's hot line by Table.Hot: the translated
// tuple, that direction's checksum deltas and the hot flags. It is small
// enough to stay in registers, so that Hot inlines; the accessors take
// it apart and inline too.
type Hot struct {
	addrs uint64 // the other direction's key: SrcAddr<<32 | DstAddr
	// meta is hot.meta with the deltas turned to this direction's (a
	// reply's are the negation of the first packet's: both 16-bit halves
	// complemented): L4Delta<<48 | L3Delta<<32 | generation<<8 | protocol.
	meta  uint64
	ports uint32 // the other direction's ports: SrcPort<<16 | DstPort
	life  uint32 // hot.life: the flags
	// Four scalar fields: the compiler keeps a struct of at most four in
	// registers through the inlined accessors, and copies a larger one to
	// memory for each of them.
}

// Xlate returns the packet's tuple after translation: the other
// direction's key reversed (Key[1-dir].Reverse()).
func (h Hot) Xlate() packet.Tuple {
	return packet.Tuple{SrcAddr: h.SrcAddr(), DstAddr: h.DstAddr(), SrcPort: h.SrcPort(), DstPort: h.DstPort(), Proto: uint8(h.meta)}
}

// XlateWords returns the translated tuple's addresses and ports packed as
// packet.Parsed.Translate takes them: SrcAddr<<32 | DstAddr and
// SrcPort<<16 | DstPort.
func (h Hot) XlateWords() (addrs uint64, ports uint32) {
	return h.addrs<<32 | h.addrs>>32, h.ports<<16 | h.ports>>16
}

// SrcAddr is the translated packet's source address.
func (h Hot) SrcAddr() uint32 { return uint32(h.addrs) }

// DstAddr is the translated packet's destination address.
func (h Hot) DstAddr() uint32 { return uint32(h.addrs >> 32) }

// SrcPort is the translated packet's source port (an ICMP query's
// identifier).
func (h Hot) SrcPort() uint16 { return uint16(h.ports) }

// DstPort is the translated packet's destination port.
func (h Hot) DstPort() uint16 { return uint16(h.ports >> 16) }

// L3Delta is the direction's IPv4 header checksum delta (packet.Delta,
// folded to 16 bits).
func (h Hot) L3Delta() uint32 { return uint32(h.meta>>32) & 0xffff }

// L4Delta is the direction's transport checksum delta (packet.Delta,
// folded to 16 bits).
func (h Hot) L4Delta() uint32 { return uint32(h.meta >> 48) }

// Flags are the session's hot flags (Session.Flags & HotFlags).
func (h Hot) Flags() uint8 { return uint8(h.life>>flagShift) & HotFlags }

// State is the session's protocol state (Table.State) as Hot copied it.
func (h Hot) State() uint8 { return uint8(h.life >> stateShift) }

// hot is the part of a session slot the per-packet path reads and writes:
// one 64-byte cache line (the arrays are 64-byte aligned). A lookup that
// hits, its confirmation, the translation, the TCP tracker and the
// session's counters touch this line and no other.
//
// Concurrency: the key words and meta are written only by Insert (slot
// dead) and kill (meta only); lock-free readers load them atomically and
// validate meta's generation last (see the package documentation). The
// other words are written by the per-packet path of the workers, with
// plain (relaxed) stores: track[d], cnt[d] by the packets of direction
// d, seen and life by both. A worker writes them only for a session it
// validated in its current poll, and a slot is reused only after every
// worker's poll that might have seen its previous session has ended
// (grace periods; qsbr.go), so a store never lands on the slot's next
// session.
type hot struct {
	addrs [2]uint64 // Key[d]'s addresses, as the first word of packet.Tuple.Words
	ports [2]uint32 // Key[d]'s ports: SrcPort<<16 | DstPort
	// meta is the seqlock word: L4Delta[Orig]<<48 | L3Delta[Orig]<<32 |
	// generation<<8 | protocol. The generation is odd while the session
	// lives; meta is written last by Insert and first when the session
	// dies.
	meta  uint64
	track [2]uint64 // Session.Track
	seen  uint32    // Time of the last packet
	// life is state<<24 | hot flags<<20 | timeout in seconds.
	life uint32
	// cnt[d] counts direction d's packets and bytes not yet added to the
	// cold counters: pkts<<cntShift | bytes. It spills into cold.pkts and
	// cold.bytes before either field would overflow, so that a packet
	// costs no store outside this line (and no locked instruction) all
	// but once in a thousand.
	cnt [2]uint32
}

// cold is the rest of a session slot: what Read and the slow paths need
// and the per-packet path does not. Written by Insert, and by a spill of
// hot.cnt (atomic adds; once per ~1000 packets of a direction). 56 bytes.
type cold struct {
	// pkts and bytes count per direction what hot.cnt spilled. While the
	// slot is free, pkts[0] is the grace token it waits for (qsbr.go).
	pkts  [2]uint64
	bytes [2]uint64
	// parent is Session.Parent while the slot lives; while it is free it
	// links the shard's free list (id+1 of the next free slot).
	parent    uint32
	parentGen uint32
	start     uint32 // Session.Start
	origin    uint32 // Session.Rule<<16 | Session.Ingress
	labels    uint32 // App | MapEntry<<8 | Flags<<24
	_         uint32
}

// The fields of hot.meta.
const (
	genShift = 8
	genBits  = 24
	genMask  = (1<<genBits - 1) << genShift
	liveBit  = 1 << genShift // generation odd: the session lives
)

func genOf(m uint64) uint32 { return uint32(m&genMask) >> genShift }

// The fields of hot.life and hot.cnt.
const (
	flagShift  = 20
	stateShift = 24
	cntShift   = 22                   // hot.cnt: packets above, bytes below
	cntBytes   = 1<<cntShift - 1      // the bytes field
	cntPkts    = 1<<(32-cntShift) - 1 // a packets field never stored
	cntSpill   = 1<<32 - 1            // hot.cnt while it spills (packets field cntPkts)
)

// fold16 folds a packet.Delta (below 2^17) to 16 bits, the same value in
// ones' complement arithmetic.
func fold16(d uint32) uint32 { return (d>>16 + d) & 0xffff }

// packMeta returns a live session's meta word.
func packMeta(s *Session, gen uint32) uint64 {
	return uint64(fold16(s.L4Delta[Orig]))<<48 | uint64(fold16(s.L3Delta[Orig]))<<32 | uint64(gen)<<genShift | uint64(s.Key[Orig].Proto)
}

func packLife(state, flags uint8, timeout uint32) uint32 {
	return uint32(state)<<stateShift | uint32(flags&HotFlags)<<flagShift | min(timeout, MaxTimeout)
}

// Live reports whether slot id holds a live session.
func (t *Table) Live(id uint32) bool {
	return id < uint32(len(t.hots)) && atomic.LoadUint64(&t.hots[id].meta)&liveBit != 0
}

// Gen returns the current generation of slot id: odd while a session
// lives there, bumped by every insert and delete.
func (t *Table) Gen(id uint32) uint32 {
	return genOf(atomic.LoadUint64(&t.hots[id].meta))
}

// Valid reports whether slot id still holds the session of generation gen
// (as returned by a lookup or Insert). Read, Hot and Range validate what
// they copy themselves; Valid is for a reader of State, Counters or
// LastSeen, which it calls after reading them.
func (t *Table) Valid(id, gen uint32) bool {
	if id >= uint32(len(t.hots)) {
		return false
	}
	m := atomic.LoadUint64(&t.hots[id].meta)
	return m&liveBit != 0 && genOf(m) == gen
}

// Hot copies out what a packet travelling in direction dir of session
// (id, gen) needs and reports whether the slot still held generation gen
// after the copy. On false the copy is garbage: the session ended (and
// its slot may hold another session), and the packet is a miss. It is a
// seqlock reader: atomic loads of the fields, then the generation, all
// in the session's one hot line. It takes no lock, writes nothing shared,
// allocates nothing and inlines; id must be below Capacity, as every id
// the table hands out is.
func (t *Table) Hot(id, gen uint32, dir Dir) (h Hot, ok bool) {
	e := &t.hots[id]
	h.addrs = atomic.LoadUint64(&e.addrs[^dir&1])
	h.ports = atomic.LoadUint32(&e.ports[^dir&1])
	h.life = atomic.LoadUint32(&e.life)
	m := atomic.LoadUint64(&e.meta)
	h.meta = m ^ -uint64(dir&1)<<32
	return h, liveGen(m, gen)
}

// liveGen reports whether meta word m has generation gen, which is live
// when gen is one a lookup or Insert returned (odd).
func liveGen(m uint64, gen uint32) bool {
	return m&genMask == uint64(gen)<<genShift
}

// HotTCP is Hot for a TCP packet: under the same check it also copies
// the protocol state and both directions' tracking words (Session.Track,
// indexed by Dir).
func (t *Table) HotTCP(id, gen uint32, dir Dir) (h Hot, state uint8, track [2]uint64, ok bool) {
	e := &t.hots[id]
	h.addrs = atomic.LoadUint64(&e.addrs[^dir&1])
	h.ports = atomic.LoadUint32(&e.ports[^dir&1])
	h.life = atomic.LoadUint32(&e.life)
	track[0] = atomic.LoadUint64(&e.track[0])
	track[1] = atomic.LoadUint64(&e.track[1])
	m := atomic.LoadUint64(&e.meta)
	h.meta = m ^ -uint64(dir&1)<<32
	return h, uint8(h.life >> stateShift), track, liveGen(m, gen)
}

// Track returns the tracking word of direction dir of session id
// (Session.Track[dir]), for a worker that validated the session (Hot) in
// its current poll: the grace periods keep the slot from being reused
// until the poll ends, so the word is the session's own, read after the
// validation as well as before. HotTCP copies both under the check for
// any other reader. It inlines, where HotTCP does not.
func (t *Table) Track(id uint32, dir Dir) uint64 {
	return atomic.LoadUint64(&t.hots[id].track[dir&1])
}

// Read copies session (id, gen) into s and reports whether the slot still
// held generation gen after the copy (false: the session ended; s is
// garbage). It is the slow-path reader of everything Insert stored.
func (t *Table) Read(id, gen uint32, s *Session) bool {
	if id >= uint32(len(t.hots)) {
		return false
	}
	t.copyOut(id, s)
	return t.Valid(id, gen)
}

// copyOut copies slot id's Session fields with atomic loads.
func (t *Table) copyOut(id uint32, s *Session) {
	e, c := &t.hots[id], &t.colds[id]
	m := atomic.LoadUint64(&e.meta)
	for d := range 2 {
		a, p := atomic.LoadUint64(&e.addrs[d]), atomic.LoadUint32(&e.ports[d])
		s.Key[d] = packet.Tuple{SrcAddr: uint32(a >> 32), DstAddr: uint32(a), SrcPort: uint16(p >> 16), DstPort: uint16(p), Proto: uint8(m)}
		s.Track[d] = atomic.LoadUint64(&e.track[d])
	}
	l3, l4 := uint32(m>>32)&0xffff, uint32(m>>48)
	s.L3Delta, s.L4Delta = [2]uint32{l3, ^l3 & 0xffff}, [2]uint32{l4, ^l4 & 0xffff}
	labels := atomic.LoadUint32(&c.labels)
	s.App, s.MapEntry, s.Flags = uint8(labels), int16(labels>>8), uint8(labels>>24)
	s.Parent = atomic.LoadUint32(&c.parent)
	s.ParentGen = atomic.LoadUint32(&c.parentGen)
	s.Start = Time(atomic.LoadUint32(&c.start))
	o := atomic.LoadUint32(&c.origin)
	s.Rule, s.Ingress = uint16(o>>16), uint16(o)
}

// Key returns Key[dir] of the session in slot id, read without a data race
// even while the slot is being reused, and the generation it belongs to.
// The key is consistent with the generation; check the generation with
// Valid (or compare it with the one a lookup returned) to know whether it
// is still the same session.
func (t *Table) Key(id uint32, dir Dir) (packet.Tuple, uint32) {
	e := &t.hots[id]
	d := dir & 1
	for {
		m := atomic.LoadUint64(&e.meta)
		a := atomic.LoadUint64(&e.addrs[d])
		p := atomic.LoadUint32(&e.ports[d])
		if atomic.LoadUint64(&e.meta) == m {
			return packet.Tuple{SrcAddr: uint32(a >> 32), DstAddr: uint32(a), SrcPort: uint16(p >> 16), DstPort: uint16(p), Proto: uint8(m)}, genOf(m)
		}
	}
}

// Touch records a packet of bytes bytes in direction dir at time now:
// the last-seen time and the direction's counters, in the session's hot
// line, with plain stores — no locked instruction and no other cache
// line, except for the spill into the cold counters once in about a
// thousand packets. The caller must have validated the session (Hot,
// HotTCP) in its current poll (between Enter and Leave), which keeps the
// slot from being reused under it; a packet that raced its session's
// expiry counts on the dead session, never on the slot's next one.
//
// Each direction's counter word is written by the packets of that
// direction alone, which one worker receives (a queue's RSS hash keeps a
// flow's direction on one queue). Two workers counting the same direction
// at the same instant may lose one of the two updates.
func (t *Table) Touch(id uint32, dir Dir, bytes int, now Time) {
	e := &t.hots[id]
	store32(&e.seen, uint32(now))
	w := atomic.LoadUint32(&e.cnt[dir&1])
	p, b := w>>cntShift+1, w&cntBytes+uint32(bytes)
	if p < cntPkts && b <= cntBytes {
		store32(&e.cnt[dir&1], p<<cntShift|b)
		return
	}
	// Spill the word and this packet into the cold counters: atomic adds
	// (it is rare), between cntSpill and 0 in the word so that Counters
	// never reads them half done.
	c := &t.colds[id]
	store32(&e.cnt[dir&1], cntSpill)
	atomic.AddUint64(&c.pkts[dir&1], uint64(p))
	atomic.AddUint64(&c.bytes[dir&1], uint64(b))
	store32(&e.cnt[dir&1], 0)
}

// TryTouch is Touch's common case, small enough to inline into the
// per-packet path (a call costs the caller its registers): it records
// the packet and reports true, unless the direction's counter word is
// full — once in about a thousand packets — when it records only the
// time and reports false, and the caller records the packet with Touch,
// which spills the word. Same contract as Touch.
func (t *Table) TryTouch(id uint32, dir Dir, bytes int, now Time) bool {
	e := &t.hots[id]
	store32(&e.seen, uint32(now))
	c := &e.cnt[dir&1]
	w := atomic.LoadUint32(c)
	p, b := w>>cntShift+1, w&cntBytes+uint32(bytes)
	if p >= cntPkts || b > cntBytes {
		return false
	}
	store32(c, p<<cntShift|b)
	return true
}

// State returns the protocol state and the idle timeout in seconds that
// nat last set for session id. Check Valid after reading it.
func (t *Table) State(id uint32) (state uint8, timeout uint32) {
	l := atomic.LoadUint32(&t.hots[id].life)
	return uint8(l >> stateShift), l & MaxTimeout
}

// SetState replaces the protocol state and idle timeout of session (id,
// gen), if the slot still holds that generation. Timeouts above
// MaxTimeout are clamped. Like Touch it is for a worker that validated
// the session in its current poll, or a goroutine between EnterAside and
// LeaveAside: a plain store in the hot line, which the grace periods keep
// off the slot's next session.
func (t *Table) SetState(id, gen uint32, state uint8, timeout uint32) bool {
	if !t.Valid(id, gen) {
		return false
	}
	e := &t.hots[id]
	l := atomic.LoadUint32(&e.life)
	store32(&e.life, packLife(state, uint8(l>>flagShift), timeout))
	return true
}

// SetTrack replaces the tracking word of direction dir of session (id,
// gen), if the slot still holds that generation, like SetState. nat keeps
// each direction's word written by the packets of that direction, so
// concurrent workers rarely write the same word, and a lost update is
// repaired by the direction's next packet.
func (t *Table) SetTrack(id, gen uint32, dir Dir, w uint64) bool {
	if !t.Valid(id, gen) {
		return false
	}
	store64(&t.hots[id].track[dir&1], w)
	return true
}

// Counters returns the packets and bytes seen per direction: the cold
// counters plus what the hot line has not spilled yet. A spill marks the
// hot word cntSpill, adds it to the cold counters and clears it; the
// reader loads the cold counters, the hot word, the cold counters again,
// and accepts the reading only if the cold counters stood still (they
// only grow) and the word was not mid-spill — so a spill is never counted
// twice or missed, however long the reader is held up between loads.
// Check Valid after reading them.
func (t *Table) Counters(id uint32) (pkts, bytes [2]uint64) {
	e, c := &t.hots[id], &t.colds[id]
	for d := range 2 {
		for {
			p, b := atomic.LoadUint64(&c.pkts[d]), atomic.LoadUint64(&c.bytes[d])
			r := atomic.LoadUint32(&e.cnt[d])
			if r != cntSpill && atomic.LoadUint64(&c.pkts[d]) == p && atomic.LoadUint64(&c.bytes[d]) == b {
				pkts[d], bytes[d] = p+uint64(r>>cntShift), b+uint64(r&cntBytes)
				break
			}
		}
	}
	return pkts, bytes
}

// LastSeen returns the time of the last Touch (or of Insert). Check Valid
// after reading it.
func (t *Table) LastSeen(id uint32) Time {
	return Time(atomic.LoadUint32(&t.hots[id].seen))
}

// expired reports whether the live session e idled past its timeout at
// now. A last-seen time after now (another worker's clock ran ahead) is
// not expired.
func expired(e *hot, now Time) bool {
	idle := int64(int32(uint32(now) - atomic.LoadUint32(&e.seen)))
	return idle >= int64(atomic.LoadUint32(&e.life)&MaxTimeout)
}
