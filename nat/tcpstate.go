package nat

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// TCP connection states kept in the session for timeouts (RFC 5382 §5:
// established idle timeout at least 2h4m, transitory 4 minutes; a reset
// connection, CLOSED, has its own, short, timeout: timeoutClass). The high
// bits remember which sides have sent a FIN and, in a closing or closed
// connection, which sides have since sent valid traffic (see tcpStep).
const (
	tcpNone uint8 = iota
	tcpSynSent
	tcpSynRecv
	tcpEstablished
	tcpClosing // a FIN from one side, or both
	tcpClosed  // RST seen

	tcpStateMask         = 0x0f
	tcpFinOrig     uint8 = 0x10
	tcpFinReply    uint8 = 0x20
	tcpAliveOrig   uint8 = 0x40 // valid traffic from Orig since the last FIN or RST
	tcpRSTPending  uint8 = 0x40 // ESTABLISHED only (its alive bits are unused): an in-window RST not at its sender's next sequence number, unconfirmed
	tcpAliveReply  uint8 = 0x80 // the same from Reply
	tcpFins              = tcpFinOrig | tcpFinReply
	tcpAlive             = tcpAliveOrig | tcpAliveReply
	tcpFinShift          = 4 // tcpFinOrig << dir is that direction's FIN bit
	tcpAliveOffset       = 6 // 1 << (tcpAliveOffset + dir) is its alive bit
)

// TCPStateName names a session's TCP state for display.
func TCPStateName(state uint8) string {
	switch state & tcpStateMask {
	case tcpSynSent:
		return "SYN_SENT"
	case tcpSynRecv:
		return "SYN_RECV"
	case tcpEstablished:
		return "ESTABLISHED"
	case tcpClosing:
		return "FIN_WAIT"
	case tcpClosed:
		return "CLOSED"
	}
	return "-"
}

// A tracking word (flowtable.Session.Track[d], 64 bits) records what
// direction d of a TCP session has sent, the way Linux conntrack's
// td_end and td_maxwin do (and the RFC 5961 §3 window the receiver
// checks a RST against):
//
//	bits  0..31  end: the highest sequence number sent plus one (SEG.SEQ + SEG.LEN)
//	bits 32..55  the largest window d advertised, scaled, in 64-byte units rounded up
//	bits 56..59  the window scale shift d announced in its SYN (RFC 7323 §2.2)
//	bit  60      init: d's SYN (or first segment) has been seen
//	bit  61      d's SYN carried the Window Scale option
//	bit  62      liberal: d's tracking was resynchronised mid-connection
//	bit  63      open: d's last new data came in a fragmented segment, whose
//	             end past its first fragment fastnat did not see
//
// Until a direction's tracking begins (no init), the initiator's SYN
// keeps in the responder's word where the SYN starts (synStart), for its
// SYN/ACK's check. Each word is written only for packets of its own
// direction (except for that, and when a reopening SYN clears the
// other), which is one worker in
// practice; a racing update is lost at worst, and the next segment of
// that direction repairs it.
const (
	trEndMask    = 1<<32 - 1
	trWinShift   = 32
	trWinMask    = 1<<24 - 1
	trWinUnit    = 6 // log2 of the window unit
	trScaleShift = 56
	trInit       = 1 << 60
	trWS         = 1 << 61
	trLiberal    = 1 << 62
	trOpen       = 1 << 63

	// maxAckWindow is the least distance an acknowledgment may lag behind
	// what its receiver has sent: conntrack's MAXACKWINDOW, the larger of
	// the sender's largest window and 66000 bytes.
	maxAckWindow = 66000
)

func trEnd(w uint64) uint32 { return uint32(w) }

// trWin returns the largest window the direction advertised, in bytes.
func trWin(w uint64) uint32 { return uint32(w>>trWinShift&trWinMask) << trWinUnit }

func trScale(w uint64) uint8 { return uint8(w>>trScaleShift) & 0xf }

func trWith(w uint64, end, win uint32) uint64 {
	units := min((uint64(win)+1<<trWinUnit-1)>>trWinUnit, trWinMask)
	return w&^(trEndMask|trWinMask<<trWinShift) | uint64(end) | units<<trWinShift
}

// before reports a < b in sequence space (RFC 9293 §3.4: modulo 2^32).
func before(a, b uint32) bool { return int32(a-b) < 0 }

// tcpSeg is what tcpStep needs of a segment.
type tcpSeg struct {
	flags    uint8
	seq, ack uint32
	sack     uint32 // the highest of ack and the right edges of its SACK blocks
	win      uint32 // the window field, unscaled
	len      uint32 // payload bytes
	ws       uint8  // Window Scale shift, if wsOK (SYN segments only)
	wsOK     bool
	frag     bool // a first fragment: the segment goes on past len
	ackFree  bool // the acknowledgment is in another space than the words: not checked
}

// readSeg reads segment g from a parsed frame. The acknowledgment of a
// segment on a control connection the FTP ALG corrects (alg) is left
// unchecked: the ALG shifts the sequence numbers of what it rewrites
// after the tracker has seen them, so the receiver acknowledges numbers
// its sender's tracking word never held. Conntrack takes its seqadj
// offset off first; fastnat's corrections live in the ALG, which checks
// the acknowledgment in the sender's own space (alg.DropAckUnsent).
func readSeg(frame []byte, p *packet.Parsed, g *tcpSeg, alg bool) {
	t := packet.TCP(frame[p.L4:p.End])
	g.flags, g.seq, g.ack, g.win = p.TCPFlags, t.Seq(), t.Ack(), uint32(t.Window())
	g.sack = t.SACKRight(g.ack)
	g.len = uint32(p.End - p.Payload)
	g.frag, g.ackFree = p.Frag.More, alg
	g.ws, g.wsOK = 0, false
	if g.flags&packet.FlagSYN != 0 {
		g.ws, g.wsOK = t.WindowScale()
	}
}

// ackTo is what a segment acknowledges of the data of a receiver whose
// word is r, as the tracker checks it: its highest SACK edge, or
// receiver's end itself (which every check passes) when it has no ACK,
// is a RST with a zero acknowledgment (conntrack's "broken stacks"), or
// its acknowledgment is not checked (ackFree).
func (g *tcpSeg) ackTo(r uint64) uint32 {
	if g.flags&packet.FlagACK == 0 || g.ackFree || g.ack == 0 && g.flags&packet.FlagRST != 0 {
		return trEnd(r)
	}
	return g.sack
}

// synWord is the tracking word of the direction that sent SYN segment g
// whose sequence space ends at end. A SYN's window is never scaled (RFC
// 7323 §2.2).
func synWord(g *tcpSeg, end uint32) uint64 {
	w := uint64(trInit) | uint64(g.ws)<<trScaleShift
	if g.wsOK {
		w |= trWS
	}
	return trWith(w, end, max(g.win, 1))
}

// synStart is what the responder's tracking word holds until its SYN/ACK
// (no trInit: nothing is tracked of it yet): where the initiator's SYN g
// starts, ISN + 1, so that synAcked knows how far back in the SYN's data
// the SYN/ACK may acknowledge.
func synStart(g *tcpSeg) uint64 { return uint64(g.seq + 1) }

// synAcked reports whether ack, the acknowledgment of a SYN/ACK sent by
// the direction whose word is s to the peer whose SYN made word r,
// acknowledges that SYN: it lies from ISN + 1 to the SYN's end. A server
// that does not take data on a SYN (without TCP Fast Open, RFC 7413)
// acknowledges ISN + 1 only, one that takes it acknowledges the data
// too; conntrack accepts either (its acknowledgment window reaches
// MAXACKWINDOW back from the SYN's end), fastnat the SYN's own span
// only. Without a recorded start (a simultaneous open, whose SYN/ACK's
// sender has a SYN of its own tracked) the ack must be the end exactly.
func synAcked(s, r uint64, ack uint32) bool {
	end, start := trEnd(r), trEnd(r)
	if s&trInit == 0 && s != 0 {
		start = trEnd(s)
	}
	return end-ack <= end-start
}

// tcpValidFlags has bit f set for each combination f of FIN, SYN, RST,
// ACK and URG that a TCP segment may carry (PSH, ECE and CWR go with
// any): Linux conntrack's tcp_valid_flags. Anything else — no flags at
// all, a FIN without ACK, SYN with RST or FIN, the "XMAS" FIN|PSH|URG —
// is a scan or a forgery, never what a TCP stack sends.
const tcpValidFlags = 1<<packet.FlagSYN | 1<<(packet.FlagSYN|packet.FlagURG) |
	1<<(packet.FlagSYN|packet.FlagACK) | 1<<packet.FlagRST | 1<<(packet.FlagRST|packet.FlagACK) |
	1<<(packet.FlagFIN|packet.FlagACK) | 1<<(packet.FlagFIN|packet.FlagACK|packet.FlagURG) |
	1<<packet.FlagACK | 1<<(packet.FlagACK|packet.FlagURG)

// tcpFlagsValid reports whether a segment with these flags is one a TCP
// stack sends (tcpValidFlags).
func tcpFlagsValid(flags uint8) bool {
	const checked = packet.FlagFIN | packet.FlagSYN | packet.FlagRST | packet.FlagACK | packet.FlagURG
	return uint64(tcpValidFlags)>>(flags&checked)&1 != 0
}

// tcpStep is the TCP tracker: given the session's state and both
// tracking words, it returns the state, timeout class and words after
// segment g travelling in direction d, or the verdict DropTCPBadFlags
// for a segment whose flags no TCP stack sends (tcpFlagsValid),
// DropTCPOutOfWindow for a segment outside the receiver's window, or
// DropTCPAckWindow for one acknowledging what the receiver has not sent
// (state and words then stay as they were).
//
// A segment is in the receiver's window when it ends no earlier than
// end−W and starts no later than end+W, where end is what its sender
// has sent so far and W the largest window the receiver advertised
// (conntrack's tcp_in_window, with the sender's td_maxend bounded by
// end+W). RFC 5961 §3 accepts a RST only inside the receiver's window,
// and a FIN likewise moves the state only when in window; a SYN/ACK must
// acknowledge its peer's SYN, and a RST answering a SYN must acknowledge
// it (RFC 9293 §3.10.7.3). A RST, FIN or SYN/ACK outside the window,
// and any segment starting beyond it (data or ACK), is dropped and
// counted, as conntrack (tcp_be_liberal off) marks it INVALID: the
// receiver would discard it anyway, and a forger who cannot see the
// connection cannot reach the receiver, or widen the window. A data or
// ACK segment ending behind the window is forwarded and changes nothing,
// as conntrack (since Linux 6.1) ignores it rather than marking it
// invalid. A retransmission, a keepalive (one byte or none below what
// was sent) or a zero-window probe lies within the window; a direction
// picked up mid-connection (trLiberal) is not checked.
//
// A segment's acknowledgment, or the highest right edge of its SACK
// blocks (tcpSeg.ackTo), must lie no later than the receiver's end and
// no earlier than that end less the larger of the sender's largest
// window and 66000 bytes (conntrack's MAXACKWINDOW). One past the end
// acknowledges data the receiver never sent: dropped (DropTCPAckWindow)
// as conntrack marks it INVALID, so that a forger who guessed a sequence
// number in the window must guess the acknowledgment too. One behind is
// an overly delayed ACK, forwarded untracked as conntrack ignores it,
// but a RST or FIN with it is dropped. A segment starting beyond the
// window is DropTCPOutOfWindow whatever it acknowledges (conntrack checks
// SEQ first). The acknowledgment is not checked without ACK, on a RST
// acknowledging zero, before the receiver's tracking began, when either
// direction is liberal, for the ALG's connections (tcpSeg.ackFree), nor
// while the receiver's end is not known (trOpen: it sent data in
// fragments).
//
// An in-window RST closes an ESTABLISHED connection (CLOSED) only when
// it is at its sender's next sequence number, where a stack sends its
// RST. Elsewhere in the window its receiver answers it with a challenge
// ACK (RFC 5961 §3.2) and carries on, so the connection stays
// ESTABLISHED with the closed timeout until its next valid segment
// (tcpRSTPending), as conntrack keeps it: a forger who hit the window
// but not the exact number cannot have an idle connection's session
// expire. A connection demoted to CLOSED or FIN_WAIT by a RST or FIN
// that its endpoints ignored (a RST in another state, or one at the
// sender's end that its receiver, having acknowledged less, challenged)
// returns to ESTABLISHED once valid segments other than SYN, FIN and RST
// have been seen in both directions since; once both sides have sent a
// FIN it stays closing.
func tcpStep(st uint8, tr [2]uint64, d flowtable.Dir, g *tcpSeg) (uint8, int, [2]uint64, Verdict) {
	if !tcpFlagsValid(g.flags) {
		return st, timeoutClass(st), tr, DropTCPBadFlags
	}
	o := 1 - d
	s, r := tr[d], tr[o]
	base := st & tcpStateMask
	syn, ack := g.flags&packet.FlagSYN != 0, g.flags&packet.FlagACK != 0
	fin, rst := g.flags&packet.FlagFIN != 0, g.flags&packet.FlagRST != 0
	end := g.seq + g.len
	if syn {
		end++
	}
	if fin {
		end++
	}

	switch {
	case syn && !ack:
		switch {
		case d == flowtable.Orig && (base == tcpNone || base == tcpSynSent):
			// The first SYN, or a retransmission (perhaps with a new ISN).
			s = synWord(g, end)
			if r&trInit == 0 {
				r = synStart(g)
			}
		case d == flowtable.Orig && tcpOver(st):
			// A new connection reusing the tuple (the engine gives it a
			// new session before it gets here: see forwardTCP).
			s, r = synWord(g, end), synStart(g)
		case d == flowtable.Reply && base == tcpSynSent && s&trInit == 0:
			// Simultaneous open (RFC 9293 §3.5).
			s = synWord(g, end)
		default:
			return st, timeoutClass(st), tr, Forward
		}
	case syn: // SYN/ACK: must acknowledge the peer's SYN
		if r&trInit == 0 || !synAcked(s, r, g.ack) || base == tcpNone {
			return st, timeoutClass(st), tr, DropTCPOutOfWindow
		}
		s = synWord(g, end)
	case s&trInit == 0:
		switch {
		case rst:
			// A RST answering a SYN: acceptable if it acknowledges it.
			if !ack || r&trInit == 0 || g.ack != trEnd(r) {
				return st, timeoutClass(st), tr, DropTCPOutOfWindow
			}
		case base == tcpNone || base == tcpSynSent || base == tcpSynRecv:
			// The handshake is not through: nothing to track yet.
			if fin {
				return st, timeoutClass(st), tr, DropTCPOutOfWindow
			}
			return st, timeoutClass(st), tr, Forward
		default:
			// Tracking was lost (a racing reset of the word): take up the
			// direction where it is, liberally, as conntrack picks up a
			// connection it did not see open.
			s = trWith(trInit|trLiberal, end, g.win<<14)
		}
	default:
		var in bool
		if s, in = trackSeg(s, r, g.seq, end, g.ackTo(r), g.win, rst); !in {
			if v := offWindow(tr[d], r, g.seq, end, g.ackTo(r), rst || fin); v != Forward {
				return st, timeoutClass(st), tr, v
			}
			// Behind the window, or acknowledging data long
			// acknowledged: an old duplicate, which its receiver answers
			// with an ACK. Conntrack lets these through untracked
			// (NFCT_TCP_IGNORE), lest a connection whose tracking fell
			// behind stall; it changes nothing.
			return st, timeoutClass(st), tr, Forward
		}
	}
	if g.frag && s&trInit != 0 {
		s |= trOpen
	}

	fins, alive := st&tcpFins, st&tcpAlive
	switch {
	case rst && base == tcpEstablished && g.seq != trEnd(tr[d]):
		// In the window but not at its sender's next sequence number:
		// its receiver answers with a challenge ACK (RFC 5961 §3.2) and
		// carries on unless the RST was real, so the connection stays
		// ESTABLISHED with the closed timeout until its next valid
		// segment, as conntrack keeps it (only a RST at the exact
		// sequence number closes an established connection there).
		alive = tcpRSTPending
	case rst:
		base, alive = tcpClosed, 0
	case syn && !ack && d == flowtable.Orig:
		base, fins, alive = tcpSynSent, 0, 0
	case syn && d == flowtable.Reply:
		if base == tcpSynSent {
			base = tcpSynRecv
		}
	case fin:
		base, fins, alive = tcpClosing, fins|tcpFinOrig<<d, 0
	case syn:
	case base == tcpSynRecv && d == flowtable.Orig && ack:
		base = tcpEstablished
	case base == tcpClosed || base == tcpClosing && fins != tcpFins:
		// Valid traffic after a RST or a single FIN.
		if alive |= 1 << (tcpAliveOffset + d); alive == tcpAlive {
			base, fins, alive = tcpEstablished, 0, 0
		}
	case base == tcpEstablished:
		// Valid traffic after an unconfirmed RST (the challenge ACK,
		// say): the connection lives on, with its established timeout.
		alive = 0
	}
	st = base | fins | alive
	tr[d], tr[o] = s, r
	return st, timeoutClass(st), tr, Forward
}

// trackSeg is the tracker's step for a segment from seq to end (its
// sequence space, SYN and FIN counted) acknowledging up to ack (its
// highest SACK edge, see tcpSeg.ackTo) and advertising window win (the
// field, unscaled), sent by a direction whose tracking has begun (s has
// trInit) to a peer whose word is r: unless either is liberal, the
// segment must lie in the receiver's window and its acknowledgment in
// the acknowledgment window (see tcpStep), and when it does not,
// trackSeg returns s unchanged and false. Otherwise it returns s moved on
// to end and to the larger of its window and this one — but not for a
// RST, which carries neither data nor a window, and whose number, perhaps
// a forger's, must not move the end that tells a RST at its sender's next
// sequence number (tcpStep).
// tcpStep takes this path for every segment but a SYN's and those of a
// direction not tracked yet; the established-flow fast path
// (Engine.ForwardCommonBurst) calls it for the segments it takes, and
// leaves those it finds out of window to tcpStep, which drops them.
func trackSeg(s, r uint64, seq, end, ack, win uint32, rst bool) (uint64, bool) {
	sent, mw := trEnd(s), trWin(s)
	if (s|r)&trLiberal == 0 && (!seqInWindow(s, r, seq, end) || !ackInWindow(r, ack, mw)) {
		return s, false
	}
	if !rst && before(sent, end) {
		sent = end
		s &^= trOpen
	}
	if !rst {
		scale := uint8(0)
		if s&r&trWS != 0 {
			scale = trScale(s)
		}
		mw = max(mw, win<<scale)
	}
	return trWith(s, sent, mw), true
}

// seqInWindow reports whether a segment from seq to end, sent by the
// direction whose word is s to a peer whose word is r, lies in the
// receiver's window: it ends no earlier than the sender's end minus the
// largest window the receiver advertised, and starts no later than the
// sender's end plus it.
func seqInWindow(s, r uint64, seq, end uint32) bool {
	w := peerWindow(r)
	sent := trEnd(s)
	return !before(end, sent-w) && !before(sent+w, seq)
}

// ackInWindow reports whether ack, sent by a direction whose largest
// window is mw to a receiver whose word is r, lies in the acknowledgment
// window conntrack's tcp_in_window allows: no later than the receiver's
// end (what it has sent), and no earlier than that end less the larger
// of mw and maxAckWindow. One compare: the distance back from the upper
// bound, unsigned, is at most the window's width. A receiver whose
// tracking has not begun, or whose end is not known (trOpen), passes.
func ackInWindow(r uint64, ack, mw uint32) bool {
	m := max(mw, maxAckWindow)
	return r&(trInit|trOpen) != trInit || trEnd(r)-ack <= m
}

// offWindow is the verdict on a segment trackSeg found outside the
// windows (the arguments as trackSeg's, closing for a RST or FIN):
// DropTCPOutOfWindow when it starts beyond the receiver's window,
// DropTCPAckWindow when it acknowledges data the receiver has not sent,
// and, for a segment that lies behind (ends behind the window, or
// acknowledges data acknowledged long since), DropTCPOutOfWindow or
// DropTCPAckWindow for a RST or FIN and Forward, untracked, for others.
// Conntrack's order: SEQ over the upper bound, ACK over it, SEQ under the
// lower bound, ACK under it.
func offWindow(s, r uint64, seq, end, ack uint32, closing bool) Verdict {
	switch {
	case before(trEnd(s)+peerWindow(r), seq):
		return DropTCPOutOfWindow
	case r&(trInit|trOpen) == trInit && before(trEnd(r), ack):
		return DropTCPAckWindow
	case !closing:
		return Forward
	case !seqInWindow(s, r, seq, end):
		return DropTCPOutOfWindow
	}
	return DropTCPAckWindow
}

// peerWindow is the largest window the receiver whose word is r has
// advertised, 0 before its tracking began.
func peerWindow(r uint64) uint32 {
	if r&trInit == 0 {
		return 0
	}
	return trWin(r)
}

// tcpOver reports whether a connection in state st is over: reset, or
// closed by a FIN from each side. A SYN may reuse its tuple.
func tcpOver(st uint8) bool {
	base := st & tcpStateMask
	return base == tcpClosed || base == tcpClosing && st&tcpFins == tcpFins
}

// timeoutClass returns the idle timeout class of a TCP state: a
// connection reset (CLOSED) has the closed timeout, 10 s by default as
// conntrack keeps a CLOSE entry (nf_conntrack_tcp_timeout_close); one
// closing or closed by FINs (FIN_WAIT) the transitory one, RFC 5382's 4
// minutes, as conntrack keeps TIME_WAIT 2 minutes and its FIN states
// longer. A RST-closed connection its endpoints ignored returns to
// ESTABLISHED with its traffic (tcpStep), and a SYN reopens the tuple
// while the session lingers.
func timeoutClass(st uint8) int {
	switch st & tcpStateMask {
	case tcpSynSent, tcpSynRecv:
		return toTCPSyn
	case tcpEstablished:
		if st&tcpRSTPending != 0 {
			return toTCPClosed
		}
		return toTCPEstablished
	case tcpClosed:
		return toTCPClosed
	}
	return toTCPTransitory
}
