package alg

import (
	"bytes"
	"encoding/binary"
	"net/netip"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// TCP header offsets (RFC 793 3.1) the ALG writes directly; it recomputes
// the checksum afterwards, so the checksum-updating setters would be
// wasted work.
const (
	tcpSeqOff   = 4
	tcpAckOff   = 8
	tcpFlagsOff = 13
)

// span is a replacement text in the composed payload: out[at:at+newLen].
type span struct{ at, newLen int }

// segment runs the ALG on a parsed TCP segment of control session ss.
func (f *FTP) segment(buf []byte, p *packet.Parsed, ss *session, id uint32, dir flowtable.Dir, mtu int, now flowtable.Time) (int, Verdict) {
	end := p.End
	tcp := packet.TCP(buf[p.L4:end])
	st, peer := &ss.dirs[dir], &ss.dirs[1-dir]
	flags := p.TCPFlags
	hdrChanged := false

	// The acknowledgement and SACK blocks refer to the peer's data as the
	// receiver got it, shifted by the peer's rewrites: map them back into
	// the peer's own sequence space.
	if flags&packet.FlagACK != 0 && (peer.nrec > 0 || peer.base != 0) {
		a := tcp.Ack()
		o := peer.unshift(a, false)
		if o != a {
			binary.BigEndian.PutUint32(tcp[tcpAckOff:], o)
			hdrChanged = true
		}
		if fixSACK(tcp.Options(), peer) {
			hdrChanged = true
		}
		peer.ack(o)
	}

	seq := tcp.Seq()
	pl := buf[p.Payload:end]
	fin := flags&packet.FlagFIN != 0
	clearFIN := false
	var o, oe uint32 // the original range the payload sent on stands for
	dirty := false   // the payload sent on is f.out, not pl
	switch {
	case flags&packet.FlagSYN != 0:
		// The initial sequence number precedes every rewrite.
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
		o, oe, v = f.compose(ss, dir, seq, pl, fin, id, now)
		if v != Forward {
			return len(buf), v
		}
		dirty = f.dirty || o != seq || oe != seq+uint32(len(pl))
		// The FIN follows bytes not passed on in this segment: the sender
		// will send it again after them.
		clearFIN = fin && oe != seq+uint32(len(pl))
	}

	newSeq := o + uint32(st.shift(o))
	if !dirty && newSeq == seq && !hdrChanged {
		return len(buf), Forward
	}
	if dirty {
		out := f.out
		hdr := p.Payload - p.L3
		maxIP := max(mtu, end-p.L3)
		room := min(cap(buf), maxFrame) - p.Payload
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
	return end, Forward
}

// compose builds in f.out the payload that stands for the segment's
// payload pl (original sequence numbers [seq, seq+len(pl))) and returns
// the original range [o, oe) it covers: bytes already passed on are
// reproduced with their earlier rewrites; held bytes and new bytes run
// through the line scanner; a line that may need a rewrite and is not yet
// complete is held back.
func (f *FTP) compose(ss *session, dir flowtable.Dir, seq uint32, pl []byte, fin bool, id uint32, now flowtable.Time) (o, oe uint32, v Verdict) {
	st := &ss.dirs[dir]
	f.out, f.spans, f.dirty = f.out[:0], f.spans[:0], false
	s := seq
	if seqLT(s, st.acked) {
		if seqLEQ(s+uint32(len(pl)), st.acked) {
			// Entirely acknowledged: a retransmission the receiver drops,
			// or a keepalive probe, which must stay one byte below the
			// window (RFC 1122 4.2.3.6). Passed as it is, shifted by the
			// change accumulated at acked.
			return s, s + uint32(len(pl)), Forward
		}
		// The receiver has everything before acked, and the records that
		// placed it may be gone: pass on only what follows.
		pl = pl[st.acked-s:]
		s = st.acked
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
	if st.held > 0 && seqLEQ(s, hs) && seqLT(hs, e) && seqLEQ(e, st.next) && !fin {
		// The held line's bytes again, and nothing after them.
		if st.stalls++; st.stalls >= maxStalls {
			f.count(ss, cReleased, 1)
			f.out = append(f.out, st.buf[:st.held]...)
			st.line.skip, st.line.headN = true, 0
			st.line.addHead(st.buf[:st.held])
			st.held, st.stalls = 0, 0
			oe = st.next
		}
		return o, oe, Forward
	}
	if seqLT(st.next, e) || (fin && e == st.next) {
		st.stalls = 0
		w := pl[st.next-s:]
		if st.held > 0 {
			w = append(append(f.work[:0], st.buf[:st.held]...), w...)
		}
		ls := st.line
		hold, v := f.feed(ss, dir, &ls, w, hs, id, now)
		if v != Forward {
			return 0, 0, v
		}
		if fin && len(hold) > 0 {
			// The line can no longer be completed: pass it on as it is.
			f.out = append(f.out, hold...)
			hold, ls = nil, lineState{}
		}
		st.line = ls
		st.held = uint16(copy(st.buf[:], hold))
		st.next = e
		oe = e - uint32(st.held)
	}
	return o, oe, Forward
}

// render reproduces original bytes [s, e) (e not past the held bytes)
// that were scanned before, with the rewrites recorded for them, and
// returns the original range covered. A span cut by the segment's start
// or end is reproduced whole: its rewritten text has no partial
// counterpart, and the sender sent all of it before.
func (f *FTP) render(ss *session, st *stream, s, e uint32, pl []byte) (o, oe uint32) {
	o, pos := s, s
	for i := 0; i < st.nrec; i++ {
		r := &st.recs[i]
		rs, re := r.seq, r.end()
		if seqLEQ(re, pos) {
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
		f.spans = append(f.spans, span{at: len(f.out), newLen: int(r.newLen)})
		f.out = append(f.out, r.text[:r.newLen]...)
		if r.changed {
			f.dirty = true
			f.count(ss, cReplayed, 1)
		}
		pos = re
	}
	if seqLT(pos, e) {
		f.out = append(f.out, pl[pos-s:e-s]...)
		pos = e
	}
	return o, pos
}

// feed runs the line scanner over w, new bytes of the stream starting at
// original position w0 (held bytes first). It appends what is passed on
// to f.out and returns the tail to hold back.
func (f *FTP) feed(ss *session, dir flowtable.Dir, ls *lineState, w []byte, w0 uint32, id uint32, now flowtable.Time) ([]byte, Verdict) {
	client := dir == flowtable.Orig
	for i := 0; i < len(w); {
		rest := w[i:]
		j := bytes.IndexByte(rest, '\n')
		if ls.skip {
			if j < 0 {
				ls.addHead(rest)
				f.out = append(f.out, rest...)
				return nil, Forward
			}
			ls.addHead(rest[:j+1])
			f.out = append(f.out, rest[:j+1]...)
			ls.skip = false
			if !client {
				ls.endLine()
			}
			i += j + 1
			continue
		}
		ls.headN = 0
		if j < 0 {
			if mayStart(rest, client) && (client || ls.multi[0] == 0) {
				if len(rest) < maxLine {
					return rest, Forward
				}
				f.count(ss, cLongLines, 1)
			}
			ls.skip = true
			ls.addHead(rest)
			f.out = append(f.out, rest...)
			return nil, Forward
		}
		line := rest[:j+1]
		ls.addHead(line)
		if v := f.line(ss, dir, ls, line, w0+uint32(i), id, now); v != Forward {
			return nil, v
		}
		if !client {
			ls.endLine()
		}
		i += j + 1
	}
	return nil, Forward
}

// line handles one complete line (terminator included) starting at
// original position at.
func (f *FTP) line(ss *session, dir flowtable.Dir, ls *lineState, line []byte, at uint32, id uint32, now flowtable.Time) Verdict {
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
		f.count(ss, cLongLines, 1)
		f.out = append(f.out, line...)
		return Forward
	}
	if !ok {
		f.count(ss, cParseFailures, 1)
		f.out = append(f.out, line...)
		return Forward
	}
	st := &ss.dirs[dir]
	sat := at + uint32(e.start)
	if r := st.find(sat); r != nil {
		// Scanned before, in a segment that was then dropped or cut.
		if int(r.oldLen) != e.end-e.start {
			return DropInconsistent
		}
		f.emit(line, &e, r.text[:r.newLen], r.changed)
		return Forward
	}
	repeat := st.hasRefused && st.refused == sat
	if !repeat {
		f.count(ss, cCommands, 1)
	}

	// Whose endpoint may be announced: the sender's own. A packet of
	// direction d had tuple Key[d] before translation, so the sender's
	// real address is Key[d].SrcAddr; the receiver knows it as
	// Key[1-d].DstAddr (its public address, for a translated sender that
	// already announces that one).
	self, alias := ss.key[dir].SrcAddr, ss.key[1-dir].DstAddr
	addr := e.addr
	switch {
	case e.kind == kind229:
		addr = self // RFC 2428 3: the data connection goes to the control connection's server address
	case addr == alias:
		addr = self
	case addr != self && !f.policy.Load().AllowThirdParty:
		return f.refuse(ss, st, &e, sat, repeat, id, "address is not the sender's (FTP bounce, RFC 2577)")
	}
	if e.port < 1024 {
		return f.refuse(ss, st, &e, sat, repeat, id, "privileged data port")
	}
	if f.table.ExpectationCount(id, ss.gen) >= f.policy.Load().MaxExpectations {
		f.count(ss, cLimit, 1)
		return DropLimit
	}
	if st.nrec == maxRecords {
		f.count(ss, cBacklog, 1)
		return DropBacklog
	}
	na, np, ok := f.exp.ExpectData(id, ss.gen, dir, addr, e.port, now)
	if !ok {
		f.count(ss, cExpectFailed, 1)
		return DropExpectFailed
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

// refuse drops a command or reply the policy forbids, counting it once
// and logging once per control session.
func (f *FTP) refuse(ss *session, st *stream, e *endpoint, at uint32, repeat bool, id uint32, why string) Verdict {
	if repeat {
		return DropRefused
	}
	st.refused, st.hasRefused = at, true
	f.count(ss, cRefused, 1)
	if !ss.logged {
		ss.logged = true
		k := ss.key[flowtable.Orig]
		f.log.Warn("ftp alg refused a data endpoint",
			"session", id, "line", e.kind.String(), "reason", why,
			"addr", addrString(e.addr), "port", e.port,
			"client", addrString(k.SrcAddr), "server", addrString(k.DstAddr))
	}
	return DropRefused
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
