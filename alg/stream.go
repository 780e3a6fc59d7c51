package alg

// A control connection's byte stream, one direction of it. Sequence
// numbers here are the sender's own ("original"); the receiver sees them
// shifted by the length changes of the records before them.

// maxRecords bounds the unacknowledged records kept per direction. A
// record is needed until the receiver acknowledges past it; with more in
// flight than this, further lines that need one are dropped until acks
// arrive (TCP retransmits them).
const maxRecords = 16

// maxPending bounds the answers waiting per direction for a reply to end;
// a refused command beyond it waits, unanswered, for a segment of its own.
const maxPending = 4

// textMax is room for the longest endpoint text:
// "|1|255.255.255.255|65535|" (25 bytes).
const textMax = 32

// record is one change the ALG made to a direction's stream: original
// bytes [seq, seq+oldLen) are replaced by newLen bytes. Records are kept
// in stream order; cum is the accumulated length change for every
// original byte at or after seq+oldLen. The kinds:
//
//   - a rewrite: the endpoint text of a PORT, EPRT, 227 or 229 line is
//     replaced by text (changed false: it was replaced by itself, and the
//     record only keeps a retransmission from announcing it twice);
//   - a refused 227 or 229: the line's text is replaced by message msg;
//   - a deletion (newLen 0): a refused PORT or EPRT line, answered to its
//     sender with message answer at ans, or a partial line discarded at
//     FIN (answer 0);
//   - an insertion (oldLen 0): message msg injected into this stream, the
//     answer to a command the peer sent and the ALG refused.
type record struct {
	seq     uint32
	oldLen  uint16
	newLen  uint8
	changed bool
	msg     msgID // the new text is messages[msg], not text
	answer  msgID // a deletion answered with messages[answer]
	done    bool  // a deletion: its answer has been acknowledged, or it needs none
	waiting bool  // a deletion: its answer waits for the peer's reply in progress to end (ans not known yet)
	cum     int32
	ans     uint32 // a deletion's answer: its sequence number as the sender sees its peer's stream
	text    [textMax]byte
}

func (r *record) end() uint32 { return r.seq + uint32(r.oldLen) }

// newText returns the text that stands for the record's original bytes.
func (r *record) newText() []byte {
	if r.msg != msgNone {
		return messages[r.msg]
	}
	return r.text[:r.newLen]
}

// lineState is where the line scanner stands between segments.
type lineState struct {
	skip  bool    // inside a line that was passed on without being held
	long  bool    // the current line is longer than maxLine (counted)
	headN uint8   // bytes of head filled
	n     uint16  // bytes of the current line seen, saturating at maxLine+1
	head  [4]byte // the first bytes of the current line
	multi [3]byte // reply code of an open multi-line reply (RFC 959 4.2); multi[0]==0: none
}

// grow adds k bytes to the current line's length and reports whether the
// line has just become longer than maxLine.
func (l *lineState) grow(k int) bool {
	if l.long {
		return false
	}
	l.n = uint16(min(int(l.n)+k, maxLine+1))
	if l.n > maxLine {
		l.long = true
		return true
	}
	return false
}

// newLine resets the per-line state at a line's start.
func (l *lineState) newLine() { l.skip, l.long, l.headN, l.n = false, false, 0, 0 }

// stream is the ALG's view of one direction of a control connection.
//
// Bytes [next-held, next) — the start of a line that may turn out to be a
// PORT/EPRT/227/229 — are held back: they were seen but not yet passed on
// (the segment carrying them was cut before them), and are passed on,
// rewritten, in front of the segment that completes the line.
//
// Bytes [ownAt, ownAt+ownLen) were acknowledged to the sender by the ALG
// itself (a held line the sender stalled on) and not yet by the receiver:
// while they are held they are the start of buf; once their line has been
// passed on, own keeps them until the receiver acknowledges them, so that
// they can be passed on again in front of a retransmission that no longer
// carries them.
type stream struct {
	init   bool
	fin    bool   // the sender's FIN has been passed on; next counts it (RFC 9293 3.4)
	hasTS  bool   // the sender's last segment carried timestamps
	next   uint32 // original sequence number of the first byte (or FIN) not yet seen
	acked  uint32 // the receiver has acknowledged every byte before this
	held   uint16
	ownLen uint16
	ownAt  uint32
	win    uint16 // the sender's last window field, as its peer reads it
	tsVal  uint32 // the sender's last TSval (RFC 7323)
	line   lineState
	// pend are answers to the peer's refused commands that wait for this
	// stream to reach the end of a reply (the line in progress, or a
	// multi-line reply, RFC 959 4.2), where they are inserted; del is the
	// deleted command's position in the peer's stream.
	pend [maxPending]struct {
		msg msgID
		del uint32
	}
	npend int
	nrec  int
	base  int32 // length change before the oldest kept record
	recs  [maxRecords]record
	buf   [maxLine]byte
	own   [maxLine]byte
}

func (s *stream) reset() {
	s.init, s.fin, s.hasTS, s.next, s.acked, s.held, s.ownLen, s.ownAt = false, false, false, 0, 0, 0, 0, 0
	s.win, s.tsVal, s.line, s.nrec, s.base, s.npend = 0, 0, lineState{}, 0, 0, 0
}

// start begins tracking at original position seq.
func (s *stream) start(seq uint32) { s.init, s.next, s.acked = true, seq, seq }

// ack notes that the receiver acknowledged every byte before acked (in
// the sender's space) and drops the records and owned bytes it no longer
// needs.
func (s *stream) ack(acked uint32) {
	if !s.init || !seqLT(s.acked, acked) || seqLT(s.holdStart(), acked) {
		return
	}
	s.acked = acked
	if s.ownLen > 0 && seqLEQ(s.ownAt+uint32(s.ownLen), acked) {
		s.ownLen = 0
	}
	s.prune(acked)
}

func (s *stream) holdStart() uint32 { return s.next - uint32(s.held) }

// ownedHeld reports whether the owned bytes are the held line's start
// (still in buf, not yet passed on).
func (s *stream) ownedHeld() bool { return s.ownLen > 0 && s.held > 0 && s.ownAt == s.holdStart() }

// shift returns the length change to add to original position x, which
// must not be inside a replaced span. Text inserted at x comes before
// the byte at x.
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
// space) back to the sender's space. A position inside new text has no
// exact counterpart: an acknowledgement or right SACK edge maps to the
// span's start, a left SACK edge (left true) to its end, so that the
// sender is never told more was received than was. Injected text maps to
// the point it was inserted at: the sender never sent it. A deleted line
// counts as received once the answer to it has been acknowledged; until
// then no acknowledgement reaches past it, so that a sender whose answer
// was lost sends the line again and is answered again.
func (s *stream) unshift(a uint32, left bool) uint32 {
	prev := s.base
	for i := 0; i < s.nrec; i++ {
		r := &s.recs[i]
		ns := r.seq + uint32(prev)
		switch {
		case seqLT(a, ns):
			return a - uint32(prev)
		case a == ns && r.newLen > 0:
			return r.seq
		case seqLT(a, ns+uint32(r.newLen)):
			if uint16(r.newLen) == r.oldLen {
				return a - uint32(prev) // same length: positions correspond
			}
			if left {
				return r.end()
			}
			return r.seq
		case r.newLen == 0 && !r.done && !left:
			return r.seq
		}
		prev = r.cum
	}
	return a - uint32(prev)
}

// prune drops the records the receiver has acknowledged (acked is in the
// sender's space): their data will not be retransmitted. Text inserted at
// a position stays until the receiver acknowledges past it: until then it
// may yet acknowledge the position before the text, which without the
// record would map back too far.
func (s *stream) prune(acked uint32) {
	k := 0
	for k < s.nrec {
		r := &s.recs[k]
		if r.oldLen == 0 && !seqLT(r.seq, acked) || r.oldLen > 0 && !seqLEQ(r.end(), acked) || r.newLen == 0 && r.oldLen > 0 && !r.done {
			break
		}
		k++
	}
	if k == 0 {
		return
	}
	s.base = s.recs[k-1].cum
	copy(s.recs[:], s.recs[k:s.nrec])
	s.nrec -= k
}

// find returns the record replacing original bytes from position seq
// (insertions, which replace nothing, are not found).
func (s *stream) find(seq uint32) *record {
	for i := 0; i < s.nrec; i++ {
		if r := &s.recs[i]; r.seq == seq && r.oldLen > 0 {
			return r
		}
	}
	return nil
}

// room reports whether another record fits.
func (s *stream) room() bool { return s.nrec < maxRecords }

// add inserts a record in stream order and recomputes the accumulated
// changes. At one position, inserted text comes first (in the order it
// was inserted: before the bytes there), then the record replacing them.
// The caller checked that there is room.
func (s *stream) add(r *record) {
	i := s.nrec
	for i > 0 && (seqLT(r.seq, s.recs[i-1].seq) || r.oldLen == 0 && r.seq == s.recs[i-1].seq && s.recs[i-1].oldLen > 0) {
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

// answered marks the deletions whose answers the sender has now
// acknowledged: a is the sender's acknowledgement of its peer's stream,
// in the sender's view (the peer's shifted space).
func (s *stream) answered(a uint32) {
	for i := 0; i < s.nrec; i++ {
		r := &s.recs[i]
		if !r.done && !r.waiting && r.answer != msgNone && seqLEQ(r.ans+uint32(len(messages[r.answer])), a) {
			r.done = true
		}
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
// 959 4.2), inside which a line starting "227 " is text, not a reply. It
// reports whether the line ended a 234 reply: the server accepted AUTH
// and the control connection turns to TLS (RFC 4217 4, RFC 2228).
func (l *lineState) endLine() (auth bool) {
	h := &l.head
	if l.headN == 4 && isDigit(h[0]) && isDigit(h[1]) && isDigit(h[2]) {
		code := [3]byte{h[0], h[1], h[2]}
		switch {
		case l.multi[0] == 0 && h[3] == '-':
			l.multi = code
		case l.multi[0] == 0 && h[3] == ' ':
			auth = code == [3]byte{'2', '3', '4'}
		case l.multi[0] != 0 && h[3] == ' ' && code == l.multi:
			l.multi[0] = 0
			auth = code == [3]byte{'2', '3', '4'}
		}
	}
	l.headN = 0
	return auth
}

// Sequence-number arithmetic (RFC 9293 3.4, modulo 2^32).
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
