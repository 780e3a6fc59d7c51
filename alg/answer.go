package alg

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// The ALG's own words: error replies to commands it refuses, and the text
// that stands in for a server reply it refuses.
//
// A refused PORT or EPRT gets 500, the reply vsftpd and proftpd give a
// PORT naming a host other than the client's or a privileged port, and
// one RFC 959 (4.2, 5.4) lists for PORT: a permanent failure, so no client
// retries the same command, while the control connection stays open. When
// the NAT itself cannot prepare the data connection (no free port, a full
// expectation table) the failure is transient, and the client gets 425
// ("Can't open data connection", RFC 959 4.2.2). A refused 227 or 229
// becomes a 425 reply in its place: the client is told at once that the
// passive data connection will not work, in words that say why.

// msgID names a message; 0 is none.
type msgID uint8

const (
	msgNone msgID = iota
	msgPORTRefused
	msgEPRTRefused
	msgPORTFailed
	msgPasvRefused
	msgPasvFailed
	numMsgs
)

// messages holds each message's bytes. The answers to commands are whole
// reply lines; the replacements of 227/229 text lack the line end, which
// the replaced line keeps.
var messages = [numMsgs][]byte{
	msgPORTRefused: []byte("500 Illegal PORT command: refused by the NAT (RFC 2577).\r\n"),
	msgEPRTRefused: []byte("500 Illegal EPRT command: refused by the NAT (RFC 2577).\r\n"),
	msgPORTFailed:  []byte("425 Can't open data connection: no room in the NAT.\r\n"),
	msgPasvRefused: []byte("425 Can't open passive connection: refused by the NAT (RFC 2577)."),
	msgPasvFailed:  []byte("425 Can't open passive connection: no room in the NAT."),
}

// answer is what the ALG sends back to the sender of the frame it
// processes: an acknowledgement of held bytes, or the reply to a refused
// command.
type answer struct {
	msg  msgID  // msgNone: a bare acknowledgement
	set  bool   // there is an answer
	seq  uint32 // in the sender's view of its peer's stream
	ack  uint32 // in the sender's own space
	hold bool   // an acknowledgement of held bytes
}

// backRoom is the most a frame back to the sender takes (the ALG's
// answers and resets): a VLAN-tagged Ethernet header, IPv4 and TCP headers
// with timestamps, the longest message.
const backRoom = 18 + packet.IPv4MinLen + packet.TCPMinLen + 12 + 64

// tsOf holds the TCP timestamps of the segment being processed.
type tsOf struct {
	val uint32
	ok  bool
}

// writeAnswer writes f.ans, from the receiver to the sender of a frame of
// direction dir, as an IPv4 packet at the start of b and returns its
// length. Its addresses are the sender's view of the connection
// (Key[dir] reversed: before translation); its window is the receiver's
// last; with timestamps, TSval is the receiver's last (so the sender's
// PAWS check, RFC 7323 5, accepts it) and TSecr echoes the sender's.
func (f *FTP) writeAnswer(b []byte, ss *session, dir flowtable.Dir, ts tsOf, win uint16) int {
	peer := &ss.dirs[1-dir]
	s := packet.Segment{
		Tuple: ss.key[dir].Reverse(),
		Seq:   f.ans.seq, Ack: f.ans.ack,
		Flags:  packet.FlagACK,
		Window: win,
	}
	if peer.win != 0 {
		s.Window = peer.win
	}
	if ts.ok {
		s.HasTS, s.TSVal, s.TSEcr = true, peer.tsVal, ts.val
	}
	if f.ans.msg != msgNone {
		s.Flags |= packet.FlagPSH
		s.Payload = messages[f.ans.msg]
	}
	return packet.WriteSegment(b, &s)
}

// writeReset writes a reset with tuple t and sequence number seq at the
// start of b and returns its length. A reset is accepted only with exactly
// the sequence number its receiver expects next (RFC 5961 3.2).
func writeReset(b []byte, t packet.Tuple, seq, ack uint32) int {
	s := packet.Segment{Tuple: t, Seq: seq, Ack: ack, Flags: packet.FlagRST | packet.FlagACK}
	return packet.WriteSegment(b, &s)
}

// backFrame returns where a second frame for the sender goes: the end of
// buf's capacity (at most maxFrame), past the first frame's at most
// limit bytes, with the first frame's Ethernet header (l2 bytes) copied
// in. ok is false when there is no room.
func backFrame(buf []byte, l2, limit int) (b []byte, ok bool) {
	c := min(cap(buf), maxFrame)
	at := c - backRoom
	if at < limit || at < l2 {
		return nil, false
	}
	b = buf[:c][at:c]
	copy(b, buf[:l2])
	return b, true
}
