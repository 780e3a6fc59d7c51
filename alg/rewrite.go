package alg

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// TCP header offsets (RFC 9293 3.1) the ALG writes directly; it recomputes
// the checksum afterwards, so the checksum-updating setters would be
// wasted work.
const (
	tcpSeqOff   = 4
	tcpAckOff   = 8
	tcpFlagsOff = 13
)

// giveUp is feed's and line's internal verdict for a line the ALG cannot
// handle (longer than maxLine): the connection is reset. cutLine stops a
// segment before a line that must wait for a segment of its own (a second
// answer).
const (
	giveUp  Verdict = 254
	cutLine Verdict = 255
)

// span is a replacement text in the composed payload: out[at:at+newLen].
type span struct{ at, newLen int }

// segment runs the ALG on a parsed TCP segment of control session ss.
func (f *FTP) segment(it *Item, p *packet.Parsed, ss *session, now flowtable.Time) (int, Verdict) {
	buf, dir := it.Buf, it.Dir
	end := p.End
	tcp := packet.TCP(buf[p.L4:end])
	st, peer := &ss.dirs[dir], &ss.dirs[1-dir]
	flags := p.TCPFlags
	rawAck := tcp.Ack()
	var ts tsOf
	ts.val, _, ts.ok = tcp.Timestamps()
	st.win = tcp.Window()
	if st.hasTS = ts.ok; ts.ok {
		st.tsVal = ts.val
	}
	if ss.dead {
		return f.resetAnswer(buf, p, ss, dir, rawAck)
	}
	hdrChanged := false

	// The acknowledgement and SACK blocks refer to the peer's data as the
	// receiver got it, shifted by the peer's records: map them back into
	// the peer's own sequence space.
	if flags&packet.FlagACK != 0 {
		o := rawAck
		if peer.nrec > 0 || peer.base != 0 {
			o = peer.unshift(rawAck, false)
		}
		if peer.init && seqLT(peer.next, o) && (rawAck != 0 || flags&packet.FlagRST == 0) {
			// It acknowledges bytes the peer never sent, in the peer's
			// own space: the NAT's tracker leaves this check to the ALG,
			// whose corrections it does not see (conntrack's
			// tcp_in_window with its seqadj offset taken off).
			f.count(ss, cAckUnsent, 1)
			return len(buf), DropAckUnsent
		}
		st.answered(rawAck)
		if peer.nrec > 0 || peer.base != 0 {
			if hs := peer.holdStart(); peer.init && seqLT(hs, o) {
				// Never past what the ALG has passed on: a record made for
				// bytes a dropped segment carried (and that came again
				// shorter since) must not acknowledge them.
				o = hs
			}
			if o != rawAck {
				binary.BigEndian.PutUint32(tcp[tcpAckOff:], o)
				hdrChanged = true
			}
			if fixSACK(tcp.Options(), peer) {
				hdrChanged = true
			}
		}
		peer.ack(o)
	}

	seq := tcp.Seq()
	pl := buf[p.Payload:end]
	fin := flags&packet.FlagFIN != 0
	clearFIN := false
	var o, oe uint32 // the original range the payload sent on stands for
	dirty := false   // the payload sent on is f.out, not pl
	f.ans = answer{}
	switch {
	case flags&packet.FlagSYN != 0:
		// The initial sequence number precedes every record, and the SYN
		// occupies it (RFC 9293 3.4).
		if !st.init {
			st.start(seq + 1)
		}
		if !hdrChanged {
			return len(buf), Forward
		}
		o = seq
	case flags&packet.FlagRST != 0:
		// A reset's payload (a diagnostic, RFC 1122 4.2.2.12) is not part
		// of the stream; only its sequence number moves.
		o = seq
		if hs := st.holdStart(); st.init && seqLEQ(hs, seq) && seqLEQ(seq, st.next) {
			// The receiver is at the held bytes; a reset is accepted only
			// exactly there (RFC 5961 3.2).
			o = hs
		}
	default:
		if !st.init {
			// Joined mid-stream: take the first segment seen as starting
			// a line.
			st.start(seq)
		}
		var v Verdict
		o, oe, v = f.compose(ss, dir, seq, pl, fin, it.Session, it.Gen, now)
		switch v {
		case Forward:
		case giveUp:
			return f.reset(it, p, ss, tcp.Ack(), rawAck, flags)
		default:
			return len(buf), v
		}
		dirty = f.dirty || o != seq || oe != seq+uint32(len(pl))
		// The FIN follows bytes not passed on in this segment: the sender
		// will send it again after them.
		clearFIN = fin && oe != seq+uint32(len(pl))
	}

	if f.ans.hold {
		// A bare acknowledgement goes where the receiver's stream stands
		// as the ALG passed it on: never behind what the sender has, so
		// that it is in its window (RFC 9293 3.10.7.4).
		f.ans.seq = rawAck
		if peer.init {
			pos := peer.holdStart()
			f.ans.seq = pos + uint32(peer.shift(pos))
		}
	}
	if f.ans.set && len(f.out) == 0 && (!fin || clearFIN) && cap(buf)-p.L3 >= backRoom {
		// Nothing to pass on: the frame itself becomes the answer.
		n := p.L3 + f.writeAnswer(buf[p.L3:cap(buf)], ss, dir, ts, tcp.Window())
		return n, Back
	}
	newSeq := o + uint32(st.shift(o))
	if !dirty && newSeq == seq && !hdrChanged && !f.ans.set {
		return len(buf), Forward
	}
	if dirty {
		out := f.out
		hdr := p.Payload - p.L3
		mtu := int(it.MTU)
		if mtu <= 0 {
			mtu = f.cfg.MTU
		}
		maxIP := max(mtu, end-p.L3)
		limit := min(cap(buf), maxFrame)
		if f.ans.set {
			limit -= backRoom
		}
		room := limit - p.Payload
		if lim := maxIP - hdr; lim < room {
			room = lim
		}
		if len(out) > room {
			out = out[:f.cut(room)]
			clearFIN = fin
		}
		buf = buf[:p.Payload+len(out)]
		copy(buf[p.Payload:], out)
		end = p.Payload + len(out)
		packet.IPv4(buf[p.L3:end]).SetTotalLength(uint16(end - p.L3))
		tcp = packet.TCP(buf[p.L4:end])
	}
	binary.BigEndian.PutUint32(tcp[tcpSeqOff:], newSeq)
	if clearFIN {
		tcp[tcpFlagsOff] &^= packet.FlagFIN
	}
	tcp.SetChecksum(packet.TCPChecksum(packet.IPv4(buf[p.L3:end]), tcp))
	if f.ans.set {
		if b, ok := backFrame(buf, p.L3, end); ok {
			it.Back = b[:p.L3+f.writeAnswer(b[p.L3:], ss, dir, ts, tcp.Window())]
		}
	}
	return end, Forward
}

// reset ends a control connection the ALG cannot follow: a reset goes on
// to the receiver in place of the frame, at the sequence number the
// receiver expects next, and one back to the sender, at the sequence
// number its own acknowledgement (rawAck, before mapping) says it
// expects. From then on every frame of the session is answered with a
// reset (resetAnswer). ack is the frame's acknowledgement as the receiver
// reads it.
func (f *FTP) reset(it *Item, p *packet.Parsed, ss *session, ack, rawAck uint32, flags uint8) (int, Verdict) {
	buf, dir := it.Buf, it.Dir
	st := &ss.dirs[dir]
	ss.dead = true
	f.count(ss, cResets, 1)
	k := ss.key[flowtable.Orig]
	f.log.Warn("ftp alg reset a control connection: a PORT/EPRT/227/229 line longer than the limit",
		"session", it.Session, "limit", maxLine,
		"client", addrString(k.SrcAddr), "server", addrString(k.DstAddr))
	f.exp.ResetSession(it.Session, it.Gen)
	hs := st.holdStart()
	if cap(buf)-p.L3 < backRoom {
		return len(buf), DropReset
	}
	n := p.L3 + writeReset(buf[p.L3:cap(buf)], ss.key[1-dir].Reverse(), hs+uint32(st.shift(hs)), ack)
	if flags&packet.FlagACK != 0 {
		if b, ok := backFrame(buf, p.L3, n); ok {
			it.Back = b[:p.L3+writeReset(b[p.L3:], ss.key[dir].Reverse(), rawAck, st.next)]
		}
	}
	return n, Forward
}

// resetAnswer answers a frame of a connection the ALG reset with a reset
// of its own, back to its sender, at the sequence number the frame's
// acknowledgement says the sender expects. Resets and frames without an
// acknowledgement get nothing.
func (f *FTP) resetAnswer(buf []byte, p *packet.Parsed, ss *session, dir flowtable.Dir, rawAck uint32) (int, Verdict) {
	if p.TCPFlags&packet.FlagRST != 0 || p.TCPFlags&packet.FlagACK == 0 {
		return len(buf), DropReset
	}
	if cap(buf)-p.L3 < backRoom {
		return len(buf), DropReset
	}
	seq := packet.TCP(buf[p.L4:p.End]).Seq() + uint32(p.End-p.Payload)
	n := p.L3 + writeReset(buf[p.L3:cap(buf)], ss.key[dir].Reverse(), rawAck, seq)
	return n, Back
}

// compose builds in f.out the payload that stands for the segment's
// payload pl (original sequence numbers [seq, seq+len(pl))) and returns
// the original range [o, oe) it covers: bytes already passed on are
// reproduced with their records; held bytes and new bytes run through the
// line scanner; a line that may need a rewrite and is not yet complete is
// held back. It may leave an answer to the sender in f.ans.
func (f *FTP) compose(ss *session, dir flowtable.Dir, seq uint32, pl []byte, fin bool, id, gen uint32, now flowtable.Time) (o, oe uint32, v Verdict) {
	st := &ss.dirs[dir]
	f.out, f.spans, f.dirty = f.out[:0], f.spans[:0], false
	s := seq
	if seqLT(s, st.acked) {
		if e := s + uint32(len(pl)); seqLEQ(e, st.acked) {
			// Entirely acknowledged: a retransmission the receiver drops,
			// or a keepalive probe, which must stay below the window (RFC
			// 1122 4.2.3.6). Its bytes are not sent on — their records may
			// be gone, and they must never leave unrewritten — only its
			// sequence number, shifted by the change accumulated there; a
			// FIN not yet acknowledged keeps its place after them.
			if fin && e == st.acked {
				return e, e, Forward
			}
			return s, s, Forward
		}
		// The receiver has everything before acked, and the records that
		// placed it may be gone: pass on only what follows.
		pl = pl[st.acked-s:]
		s = st.acked
	}
	if st.ownLen > 0 && !st.ownedHeld() {
		// Bytes the ALG acknowledged itself, passed on once but not yet
		// acknowledged by the receiver: the sender will not send them
		// again, so they go again in front of what it sends.
		ownEnd := st.ownAt + uint32(st.ownLen)
		lo := st.ownAt
		if seqLT(lo, st.acked) {
			lo = st.acked
		}
		if seqLT(lo, s) && seqLEQ(s, ownEnd) {
			f.pre = append(append(f.pre[:0], st.own[lo-st.ownAt:s-st.ownAt]...), pl...)
			pl, s = f.pre, lo
		}
	}
	e := s + uint32(len(pl))
	if seqLT(st.next, s) {
		if len(pl) == 0 && !fin {
			// A bare ACK beyond a gap carries nothing to misplace; its
			// sequence number is put where the receiver is known to be.
			hs := st.holdStart()
			return hs, hs, Forward
		}
		// Data beyond a gap cannot be placed: the gap may hold a rewrite
		// that shifts it. TCP retransmits it once the gap is filled.
		f.count(ss, cOutOfOrder, 1)
		return 0, 0, DropOutOfOrder
	}
	hs := st.holdStart()
	o, oe = hs, hs
	if seqLT(s, hs) {
		lim := e
		if seqLT(hs, lim) {
			lim = hs
		}
		o, oe = f.render(ss, st, s, lim, pl)
	}
	if st.held > 0 && seqLT(hs, e) && seqLEQ(e, st.next) && !fin {
		// Held bytes again, and nothing after them: the sender retransmits
		// because nothing acknowledges them, and a sender whose congestion
		// window a timeout shrank sends nothing new until they are (RFC
		// 5681 3.1). The ALG acknowledges them itself, and from then on
		// keeps them until the receiver does.
		if st.acked == hs && len(f.out) == 0 {
			if st.ownLen == 0 {
				st.ownAt = hs
			}
			st.ownLen = st.held
			f.ans = answer{set: true, hold: true, ack: st.next}
			f.count(ss, cHeldAcked, 1)
		}
		return o, oe, Forward
	}
	if seqLT(st.next, e) || (fin && e == st.next && !st.fin) {
		if seqLT(s, hs) {
			// Text inserted where the new bytes start comes between what
			// was rendered and them.
			f.insertionsAt(ss, st, hs)
		}
		w := pl[st.next-s:]
		if st.held > 0 {
			w = append(append(f.work[:0], st.buf[:st.held]...), w...)
		}
		ls := st.line
		hold, used, v := f.feed(ss, dir, &ls, w, hs, id, gen, now)
		if v != Forward {
			return 0, 0, v
		}
		if st.ownedHeld() && len(hold) != len(w) {
			// The owned bytes' line is complete and passed on: keep them
			// until the receiver acknowledges them.
			copy(st.own[:], st.buf[:st.ownLen])
		}
		if used < len(w) {
			// A line waits for a segment of its own: what follows it is
			// not seen yet.
			st.line, st.held = ls, 0
			st.next = hs + uint32(used)
			return o, st.next, Forward
		}
		if fin && len(hold) > 0 {
			// The line can never be completed. It may hold an address that
			// needed rewriting: it is discarded, not passed on.
			if !st.room() {
				f.count(ss, cBacklog, 1)
				return 0, 0, DropBacklog
			}
			st.add(&record{seq: e - uint32(len(hold)), oldLen: uint16(len(hold)), changed: true, done: true})
			f.count(ss, cDiscarded, 1)
			f.dirty = true
			hold, ls = nil, lineState{}
			st.ownLen = 0
		}
		st.line = ls
		st.held = uint16(copy(st.buf[:], hold))
		st.next = e
		oe = e - uint32(st.held)
		if fin && st.held == 0 {
			st.next++ // the FIN, passed on with this segment
			st.fin = true
		}
	}
	return o, oe, Forward
}

// render reproduces original bytes [s, e) (e not past the held bytes)
// that were scanned before, with the records made for them, and returns
// the original range covered. A span cut by the segment's start or end is
// reproduced whole: its new text has no partial counterpart, and the
// sender sent all of it before. Text inserted at s comes before the
// segment, which is placed after it; text inserted inside is reproduced.
// A deleted line that was answered is answered again.
func (f *FTP) render(ss *session, st *stream, s, e uint32, pl []byte) (o, oe uint32) {
	o, pos := s, s
	for i := 0; i < st.nrec; i++ {
		r := &st.recs[i]
		rs, re := r.seq, r.end()
		if r.oldLen == 0 {
			if seqLEQ(rs, s) {
				continue
			}
		} else if seqLEQ(re, pos) {
			continue
		}
		if seqLEQ(e, rs) {
			break
		}
		if seqLT(rs, pos) {
			o = rs
		} else {
			f.out = append(f.out, pl[pos-s:rs-s]...)
		}
		if txt := r.newText(); len(txt) > 0 {
			f.spans = append(f.spans, span{at: len(f.out), newLen: len(txt)})
			f.out = append(f.out, txt...)
		}
		if r.changed {
			f.dirty = true
			f.count(ss, cReplayed, 1)
		}
		if r.answer != msgNone && !r.done && !r.waiting && !f.ans.set {
			f.ans = answer{set: true, msg: r.answer, seq: r.ans, ack: answerAck(st, r)}
		}
		pos = re
	}
	if seqLT(pos, e) {
		f.out = append(f.out, pl[pos-s:e-s]...)
		pos = e
	}
	return o, pos
}

// insertionsAt appends the text inserted at original position at.
func (f *FTP) insertionsAt(ss *session, st *stream, at uint32) {
	for i := 0; i < st.nrec; i++ {
		if r := &st.recs[i]; r.oldLen == 0 && r.seq == at {
			txt := r.newText()
			f.spans = append(f.spans, span{at: len(f.out), newLen: len(txt)})
			f.out = append(f.out, txt...)
			f.dirty = true
			f.count(ss, cReplayed, 1)
		}
	}
}

// feed runs the line scanner over w, new bytes of the stream starting at
// original position w0 (held bytes first). It appends what is passed on
// to f.out and returns the tail to hold back and how many bytes of w it
// took: less than len(w) when a line must wait for a segment of its own.
func (f *FTP) feed(ss *session, dir flowtable.Dir, ls *lineState, w []byte, w0 uint32, id, gen uint32, now flowtable.Time) ([]byte, int, Verdict) {
	client := dir == flowtable.Orig
	for i := 0; i < len(w); {
		if ss.tls {
			f.out = append(f.out, w[i:]...)
			return nil, len(w), Forward
		}
		rest := w[i:]
		j := bytes.IndexByte(rest, '\n')
		if ls.skip {
			chunk := rest
			if j >= 0 {
				chunk = rest[:j+1]
			}
			ls.addHead(chunk)
			if ls.grow(len(chunk)) {
				f.count(ss, cLongLines, 1)
			}
			f.out = append(f.out, chunk...)
			if j < 0 {
				return nil, len(w), Forward
			}
			if !client && ls.endLine() {
				f.startTLS(ss)
			}
			ls.newLine()
			i += j + 1
			if !client && ls.multi[0] == 0 {
				f.inject(ss, dir, w0+uint32(i))
			}
			continue
		}
		ls.headN = 0
		if j < 0 {
			if mayStart(rest, client) && (client || ls.multi[0] == 0) {
				if len(rest) < maxLine {
					return rest, len(w), Forward
				}
				// It can only end longer than the limit: no room to hold
				// it, and it may carry an address that needs rewriting.
				ls.grow(len(rest))
				f.count(ss, cLongLines, 1)
				return nil, 0, giveUp
			}
			ls.skip = true
			ls.addHead(rest)
			if ls.grow(len(rest)) {
				f.count(ss, cLongLines, 1)
			}
			f.out = append(f.out, rest...)
			return nil, len(w), Forward
		}
		line := rest[:j+1]
		ls.addHead(line)
		if ls.grow(len(line)) {
			f.count(ss, cLongLines, 1)
		}
		switch v := f.line(ss, dir, ls, line, w0+uint32(i), id, gen, now); v {
		case Forward:
		case cutLine:
			ls.newLine()
			return nil, i, Forward
		default:
			return nil, 0, v
		}
		if !client && ls.endLine() {
			f.startTLS(ss)
		}
		ls.newLine()
		i += j + 1
		if !client && ls.multi[0] == 0 {
			f.inject(ss, dir, w0+uint32(i))
		}
	}
	return nil, len(w), Forward
}

// startTLS notes that the server accepted AUTH: from the next byte on the
// control connection is TLS both ways (RFC 4217 4), which the ALG passes
// on untouched and unheld. Data connections announced inside it are not
// seen, so they are not prepared: a server inside needs its public address
// and a published passive port range configured (vsftpd pasv_address,
// pasv_min_port and pasv_max_port), as through any NAT that cannot read
// the control connection.
func (f *FTP) startTLS(ss *session) {
	if !ss.tls {
		ss.tls = true
		f.count(ss, cTLS, 1)
	}
}

// inject puts in the server's stream, at original position at (the end of
// a reply), the text inserted there before (a segment processed again)
// and the answers waiting for a reply to end; each answer's deleted
// command learns where it went.
func (f *FTP) inject(ss *session, dir flowtable.Dir, at uint32) {
	st := &ss.dirs[dir]
	f.insertionsAt(ss, st, at)
	if st.npend == 0 {
		return
	}
	peer := &ss.dirs[1-dir]
	k := 0
	for ; k < st.npend && st.room(); k++ {
		p := &st.pend[k]
		txt := messages[p.msg]
		ans := at + uint32(st.shift(at))
		st.add(&record{seq: at, newLen: uint8(len(txt)), msg: p.msg, changed: true})
		f.spans = append(f.spans, span{at: len(f.out), newLen: len(txt)})
		f.out = append(f.out, txt...)
		f.dirty = true
		if r := peer.find(p.del); r != nil && r.waiting {
			r.ans, r.waiting = ans, false
		}
	}
	st.npend = copy(st.pend[:], st.pend[k:st.npend]) // what found no room waits for the next reply
}

// line handles one complete line (terminator included) starting at
// original position at.
func (f *FTP) line(ss *session, dir flowtable.Dir, ls *lineState, line []byte, at uint32, id, gen uint32, now flowtable.Time) Verdict {
	content := line[:len(line)-1]
	if n := len(content); n > 0 && content[n-1] == '\r' {
		content = content[:n-1]
	}
	var e endpoint
	ok := true
	if dir == flowtable.Orig {
		ok = parseCommand(content, &e)
	} else if ls.multi[0] == 0 {
		ok = parseReply(content, &e)
	}
	if e.kind == kindNone {
		f.out = append(f.out, line...)
		return Forward
	}
	if len(line) > maxLine {
		// Too long to hold had it come in pieces: the same outcome, however
		// it was cut, so that no line ever depends on its segmentation.
		return giveUp
	}
	st := &ss.dirs[dir]
	if r := st.find(at); r != nil {
		// Refused before, in a segment that was then dropped or cut.
		return f.replay(ss, st, r, line, content)
	}
	if !ok {
		f.count(ss, cParseFailures, 1)
		f.out = append(f.out, line...)
		return Forward
	}
	sat := at + uint32(e.start)
	if r := st.find(sat); r != nil {
		// Scanned before, in a segment that was then dropped or cut.
		if int(r.oldLen) != e.end-e.start {
			return DropInconsistent
		}
		f.emit(line, &e, r.newText(), r.changed)
		return Forward
	}
	if st.fin {
		// Data after the sender's FIN: nobody will read it.
		f.out = append(f.out, line...)
		return Forward
	}

	// Whose endpoint may be announced: the sender's own. A packet of
	// direction d had tuple Key[d] before translation, so the sender's
	// real address is Key[d].SrcAddr; the receiver knows it as
	// Key[1-d].DstAddr (its public address, for a translated sender that
	// already announces that one).
	self, alias := ss.key[dir].SrcAddr, ss.key[1-dir].DstAddr
	addr := e.addr
	pol := f.policy.Load()
	switch {
	case e.kind == kind229:
		addr = self // RFC 2428 3: the data connection goes to the control connection's server address
	case addr == alias:
		addr = self
	case addr != self && !pol.AllowThirdParty:
		return f.refuse(ss, dir, &e, line, content, at, id, false, "address is not the sender's (FTP bounce, RFC 2577)")
	}
	if e.port < 1024 {
		return f.refuse(ss, dir, &e, line, content, at, id, false, "privileged data port")
	}
	if !st.room() {
		f.count(ss, cBacklog, 1)
		return DropBacklog
	}
	f.count(ss, cCommands, 1)
	// At the limit the session's oldest expectation makes way: a server
	// listens only on the port of its latest passive reply, and a client
	// only for its latest PORT.
	for n := f.table.ExpectationCount(id, gen); n >= pol.MaxExpectations; n-- {
		if !f.exp.DropOldestExpectation(id, gen) {
			break
		}
		f.count(ss, cReplaced, 1)
	}
	na, np, ok := f.exp.ExpectData(id, gen, dir, addr, e.port, now)
	if !ok {
		f.count(ss, cExpectFailed, 1)
		return f.refuse(ss, dir, &e, line, content, at, id, true, "the NAT could not prepare the data connection")
	}
	f.count(ss, cExpectCreated, 1)
	txt := appendEndpoint(f.txt[:0], &e, na, np)
	r := record{seq: sat, oldLen: uint16(e.end - e.start), newLen: uint8(len(txt))}
	r.changed = !bytes.Equal(txt, content[e.start:e.end])
	copy(r.text[:], txt)
	st.add(&r)
	if r.changed {
		f.count(ss, cRewritten, 1)
		d := int(r.newLen) - int(r.oldLen)
		f.count(ss, cDeltaBytes, uint64(max(d, -d)))
	}
	f.emit(line, &e, txt, r.changed)
	return Forward
}

// emit appends line to f.out with its endpoint text replaced by txt.
func (f *FTP) emit(line []byte, e *endpoint, txt []byte, changed bool) {
	f.out = append(f.out, line[:e.start]...)
	f.spans = append(f.spans, span{at: len(f.out), newLen: len(txt)})
	f.out = append(f.out, txt...)
	f.out = append(f.out, line[e.end:]...)
	if changed {
		f.dirty = true
	}
}

// refuse stops a command or reply that the policy forbids (failed false)
// or whose expectation the NAT could not install (failed true), counting
// it and logging once per control session, and gives the client a clean
// failure without a data connection ever being prepared: a PORT or EPRT
// is deleted from the client's stream and answered with an error reply
// injected into the server's stream (f.ans); the text of a 227 or 229 is
// replaced by a 425 reply. Both streams' sequence numbers account for it.
func (f *FTP) refuse(ss *session, dir flowtable.Dir, e *endpoint, line, content []byte, at uint32, id uint32, failed bool, why string) Verdict {
	st, peer := &ss.dirs[dir], &ss.dirs[1-dir]
	if dir == flowtable.Orig {
		if f.ans.set {
			return cutLine // one answer per segment: the line waits for the next
		}
		if !st.room() || !peer.room() {
			f.count(ss, cBacklog, 1)
			return DropBacklog
		}
		msg := msgPORTRefused
		switch {
		case failed:
			msg = msgPORTFailed
		case e.kind == kindEPRT:
			msg = msgEPRTRefused
		}
		if peer.line.skip || peer.line.multi[0] != 0 {
			// The server is in the middle of a line, or of a multi-line
			// reply (RFC 959 4.2), inside which the answer would be text:
			// the answer waits for the reply to end and goes in there,
			// with the server's own bytes (inject).
			if peer.npend == maxPending {
				return cutLine
			}
			peer.pend[peer.npend].msg, peer.pend[peer.npend].del = msg, at
			peer.npend++
			st.add(&record{seq: at, oldLen: uint16(len(line)), answer: msg, waiting: true, changed: true})
			f.dirty = true
		} else {
			// The answer goes where the server's stream stands, before
			// anything the server sends later.
			pos := peer.holdStart()
			ans := pos + uint32(peer.shift(pos))
			peer.add(&record{seq: pos, newLen: uint8(len(messages[msg])), msg: msg, changed: true})
			r := record{seq: at, oldLen: uint16(len(line)), answer: msg, ans: ans, changed: true}
			st.add(&r)
			f.ans = answer{set: true, msg: msg, seq: ans, ack: answerAck(st, &r)}
			f.dirty = true
		}
	} else {
		if !st.room() {
			f.count(ss, cBacklog, 1)
			return DropBacklog
		}
		msg := msgPasvRefused
		if failed {
			msg = msgPasvFailed
		}
		st.add(&record{seq: at, oldLen: uint16(len(content)), newLen: uint8(len(messages[msg])), msg: msg, changed: true})
		f.spans = append(f.spans, span{at: len(f.out), newLen: len(messages[msg])})
		f.out = append(f.out, messages[msg]...)
		f.out = append(f.out, line[len(content):]...)
		f.dirty = true
	}
	if failed {
		return Forward
	}
	f.count(ss, cRefused, 1)
	if !ss.logged {
		ss.logged = true
		k := ss.key[flowtable.Orig]
		f.log.Warn("ftp alg refused a data endpoint",
			"session", id, "line", e.kind.String(), "reason", why,
			"addr", addrString(e.addr), "port", e.port,
			"client", addrString(k.SrcAddr), "server", addrString(k.DstAddr))
	}
	return Forward
}

// answerAck is the acknowledgement the answer to deleted command r
// carries: past the command when the server has acknowledged everything
// before it, else only what the server has acknowledged — an answer never
// tells the client that bytes before the command arrived, which only the
// server can (the client then resends the command, and is answered again,
// once they have). Deleted commands whose answers the client has
// acknowledged count as arrived: the ALG acknowledged them itself.
func answerAck(st *stream, r *record) uint32 {
	a := st.acked
	for i := 0; i < st.nrec; i++ {
		q := &st.recs[i]
		if q.seq == r.seq || seqLT(a, q.seq) {
			break
		}
		if q.newLen == 0 && q.oldLen > 0 && q.done && seqLT(a, q.end()) {
			a = q.end()
		}
	}
	if seqLEQ(r.seq, a) {
		return r.end()
	}
	return a
}

// replay reproduces the record r of a whole line refused before: a
// deleted command is answered again, a replaced reply gets its text.
func (f *FTP) replay(ss *session, st *stream, r *record, line, content []byte) Verdict {
	if r.newLen == 0 {
		if r.answer != msgNone && !r.done && !r.waiting {
			if f.ans.set {
				return cutLine
			}
			f.ans = answer{set: true, msg: r.answer, seq: r.ans, ack: answerAck(st, r)}
		}
		f.dirty = true
		return Forward
	}
	f.spans = append(f.spans, span{at: len(f.out), newLen: int(r.newLen)})
	f.out = append(f.out, r.newText()...)
	f.out = append(f.out, line[len(content):]...)
	f.dirty = true
	return Forward
}

// cut returns the length, at most k, to which the composed payload can be
// shortened without splitting a rewritten span. What is cut off was
// scanned and recorded: TCP sends it again and render reproduces it.
func (f *FTP) cut(k int) int {
	for _, sp := range f.spans {
		if k <= sp.at {
			break
		}
		if k < sp.at+sp.newLen {
			return sp.at
		}
	}
	return k
}

// fixSACK maps the SACK blocks (RFC 2018) in TCP options opts back into
// the peer's sequence space and reports whether any changed.
func fixSACK(opts []byte, peer *stream) bool {
	changed := false
	for i := 0; i < len(opts); {
		switch opts[i] {
		case 0: // end of option list
			return changed
		case 1: // no-operation
			i++
			continue
		}
		if i+1 >= len(opts) {
			return changed
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return changed
		}
		if opts[i] == 5 {
			for b := i + 2; b+8 <= i+l; b += 8 {
				left := binary.BigEndian.Uint32(opts[b:])
				right := binary.BigEndian.Uint32(opts[b+4:])
				nl, nr := peer.unshift(left, true), peer.unshift(right, false)
				if nl != left || nr != right {
					binary.BigEndian.PutUint32(opts[b:], nl)
					binary.BigEndian.PutUint32(opts[b+4:], nr)
					changed = true
				}
			}
		}
		i += l
	}
	return changed
}

func addrString(a uint32) string {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}).String()
}
