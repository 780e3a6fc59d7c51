package alg

// A control connection's byte stream, one direction of it. Sequence
// numbers here are the sender's own ("original"); the receiver sees them
// shifted by the length changes of the rewrites before them.

// maxStalls is how many retransmissions of held bytes without anything
// new the ALG waits for the rest of a held line before it gives up and
// passes the line on unrewritten. A sender that retransmits only what it
// sent (not coalescing the rest, as Linux does) would otherwise never be
// acknowledged: the receiver gets nothing while the line is held.
const maxStalls = 2

// maxRecords bounds the unacknowledged rewrites kept per direction. A
// rewrite needs its record until the receiver acknowledges past it; more
// in flight than this and further commands are dropped until acks arrive.
const maxRecords = 16

// textMax is room for the longest replacement text:
// "|1|255.255.255.255|65535|" (25 bytes).
const textMax = 32

// record is one rewrite of a direction's stream: original bytes
// [seq, seq+oldLen) are replaced by text[:newLen]. Records are kept in
// stream order; cum is the accumulated length change for every original
// byte at or after seq+oldLen. A record with changed false replaced text
// by itself: it is kept so that a retransmission does not announce the
// endpoint twice.
type record struct {
	seq     uint32
	oldLen  uint16
	newLen  uint8
	changed bool
	cum     int32
	text    [textMax]byte
}

func (r *record) end() uint32 { return r.seq + uint32(r.oldLen) }

// lineState is where the line scanner stands between segments.
type lineState struct {
	skip  bool    // inside a line that was passed on without being held
	headN uint8   // bytes of head filled
	head  [4]byte // the first bytes of the current line
	multi [3]byte // reply code of an open multi-line reply (RFC 959 4.2); multi[0]==0: none
}

// stream is the ALG's view of one direction of a control connection.
//
// Bytes [next-held, next) — the start of a line that may turn out to be a
// PORT/EPRT/227/229 — are held back: they were seen but not yet passed on
// (the segment carrying them was cut before them), and are passed on,
// rewritten, in front of the segment that completes the line.
type stream struct {
	init       bool
	next       uint32 // original sequence number of the first byte not yet seen
	acked      uint32 // the receiver has acknowledged every byte before this
	held       uint16
	stalls     uint8 // retransmissions of held bytes that brought nothing new
	line       lineState
	nrec       int
	base       int32  // length change before the oldest kept record
	refused    uint32 // sequence number of the last refused command
	hasRefused bool
	recs       [maxRecords]record
	buf        [maxLine]byte
}

func (s *stream) reset() {
	s.init, s.next, s.acked, s.held, s.stalls, s.line, s.nrec, s.base, s.hasRefused = false, 0, 0, 0, 0, lineState{}, 0, 0, false
}

// start begins tracking at original position seq.
func (s *stream) start(seq uint32) { s.init, s.next, s.acked = true, seq, seq }

// ack notes that the receiver acknowledged every byte before acked (in
// the sender's space) and drops the records it no longer needs.
func (s *stream) ack(acked uint32) {
	if !s.init || !seqLT(s.acked, acked) || seqLT(s.holdStart(), acked) {
		return
	}
	s.acked = acked
	s.prune(acked)
}

func (s *stream) holdStart() uint32 { return s.next - uint32(s.held) }

// shift returns the length change to add to original position x, which
// must not be inside a rewritten span.
func (s *stream) shift(x uint32) int32 {
	d := s.base
	for i := 0; i < s.nrec; i++ {
		r := &s.recs[i]
		if seqLT(x, r.end()) {
			break
		}
		d = r.cum
	}
	return d
}

// unshift maps a position the receiver acknowledges (a in its shifted
// space) back to the sender's space. A position inside rewritten text has
// no exact counterpart: an acknowledgement or right SACK edge maps to the
// span's start, a left SACK edge (left true) to its end, so that the
// sender is never told more was received than was.
func (s *stream) unshift(a uint32, left bool) uint32 {
	prev := s.base
	for i := 0; i < s.nrec; i++ {
		r := &s.recs[i]
		ns := r.seq + uint32(prev)
		if seqLEQ(a, ns) {
			break
		}
		if seqLT(a, ns+uint32(r.newLen)) {
			if uint16(r.newLen) == r.oldLen {
				return a - uint32(prev) // same length: positions correspond
			}
			if left {
				return r.end()
			}
			return r.seq
		}
		prev = r.cum
	}
	return a - uint32(prev)
}

// prune drops the records the receiver has acknowledged (acked is in the
// sender's space): their data will not be retransmitted.
func (s *stream) prune(acked uint32) {
	k := 0
	for k < s.nrec && seqLEQ(s.recs[k].end(), acked) {
		k++
	}
	if k == 0 {
		return
	}
	s.base = s.recs[k-1].cum
	copy(s.recs[:], s.recs[k:s.nrec])
	s.nrec -= k
}

// find returns the record of a rewrite starting at original position seq.
func (s *stream) find(seq uint32) *record {
	for i := 0; i < s.nrec; i++ {
		if s.recs[i].seq == seq {
			return &s.recs[i]
		}
	}
	return nil
}

// add inserts a record in stream order and recomputes the accumulated
// changes. The caller checked that there is room.
func (s *stream) add(r *record) {
	i := s.nrec
	for i > 0 && seqLT(r.seq, s.recs[i-1].seq) {
		i--
	}
	copy(s.recs[i+1:s.nrec+1], s.recs[i:s.nrec])
	s.recs[i] = *r
	s.nrec++
	prev := s.base
	for j := 0; j < s.nrec; j++ {
		prev += int32(s.recs[j].newLen) - int32(s.recs[j].oldLen)
		s.recs[j].cum = prev
	}
}

// addHead appends the start of b to the current line's head.
func (l *lineState) addHead(b []byte) {
	for l.headN < 4 && len(b) > 0 {
		l.head[l.headN] = b[0]
		l.headN++
		b = b[1:]
	}
}

// endLine is called at every line end of the server's direction: it
// follows multi-line replies ("123-First line" ... "123 Last line", RFC
// 959 4.2), inside which a line starting "227 " is text, not a reply.
func (l *lineState) endLine() {
	h := &l.head
	if l.headN == 4 && isDigit(h[0]) && isDigit(h[1]) && isDigit(h[2]) {
		switch {
		case l.multi[0] == 0 && h[3] == '-':
			l.multi = [3]byte{h[0], h[1], h[2]}
		case l.multi[0] != 0 && h[3] == ' ' && [3]byte{h[0], h[1], h[2]} == l.multi:
			l.multi[0] = 0
		}
	}
	l.headN = 0
}

// Sequence-number arithmetic (RFC 793 3.3, modulo 2^32).
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
