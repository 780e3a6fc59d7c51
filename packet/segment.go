package packet

import "encoding/binary"

// The Timestamps option (RFC 7323 3), and its layout behind two NOPs
// (RFC 7323 Appendix A) that stacks send on every segment: the first
// word of that layout, and its length.
const (
	tcpOptTimestamp  = 8
	tcpOptTSLen      = 10
	tcpTSAlignedWord = tcpOptNOP<<24 | tcpOptNOP<<16 | tcpOptTimestamp<<8 | tcpOptTSLen
	tcpTSAlignedLen  = 12
)

// Timestamps returns the TSval and TSecr of the segment's Timestamps
// option (RFC 7323 3), if it carries one.
func (t TCP) Timestamps() (val, ecr uint32, ok bool) {
	at := t.option(tcpOptTimestamp, tcpOptTSLen)
	if at < 0 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(t[at:]), binary.BigEndian.Uint32(t[at+4:]), true
}

// The SACK option (RFC 2018 3): kind, length, then blocks of a left and
// a right edge, 32 bits each.
const (
	tcpOptSACK      = 5
	tcpSACKBlockLen = 8
)

// SACKRight returns the highest of ack and the right edges of the
// segment's SACK blocks (RFC 2018 3), in sequence space (RFC 9293 3.4):
// the most the segment claims its sender has received, which Linux
// conntrack bounds by what the receiver sent. A SACK option of a length
// no block count fits is skipped; a malformed list ends the walk. A
// header without options, or with the Timestamps option alone in its
// usual NOP-NOP-aligned place, is answered without a walk.
func (t TCP) SACKRight(ack uint32) uint32 {
	opts := t.Options()
	if len(opts) == 0 || len(opts) == tcpTSAlignedLen && binary.BigEndian.Uint32(opts) == tcpTSAlignedWord {
		return ack
	}
	for i, l := nextOption(opts, 0); l > 0; i, l = nextOption(opts, i+l) {
		if opts[i] == tcpOptSACK && (l-2)%tcpSACKBlockLen == 0 {
			for b := i + 2; b < i+l; b += tcpSACKBlockLen {
				if right := binary.BigEndian.Uint32(opts[b+4:]); int32(right-ack) > 0 {
					ack = right
				}
			}
		}
	}
	return ack
}

// Segment describes a TCP segment that WriteSegment builds from scratch:
// an ALG's own answer to an endpoint (an acknowledgement, an error reply,
// a reset).
type Segment struct {
	Tuple    Tuple // addresses and ports; Proto is ignored
	Seq, Ack uint32
	Flags    uint8
	Window   uint16 // as the receiver reads it: scaled by the sender's window scale
	// TSVal and TSEcr are sent in a Timestamps option when HasTS: RFC
	// 7323 3.2 requires it on every non-RST segment of a connection that
	// negotiated timestamps, and the receiver's PAWS check (RFC 7323 5)
	// drops a segment whose TSVal is older than the last one it accepted.
	TSVal, TSEcr uint32
	HasTS        bool
	Payload      []byte
}

// SegmentLen returns the length of the IPv4 packet WriteSegment makes of s.
func SegmentLen(s *Segment) int {
	n := IPv4MinLen + TCPMinLen + len(s.Payload)
	if s.HasTS {
		n += 12
	}
	return n
}

// WriteSegment writes s as an IPv4 packet (no options, DF set, TTL 64) at
// the start of b and returns its length; b must have room for
// SegmentLen(s) bytes. Both checksums are computed over what it wrote.
func WriteSegment(b []byte, s *Segment) int {
	n := SegmentLen(s)
	ip := IPv4(b[:n])
	ip[ipVerIHL] = 4<<4 | IPv4MinLen/4
	ip[ipTOS] = 0
	binary.BigEndian.PutUint16(ip[ipTotalLen:], uint16(n))
	// RFC 6864 4.1: an atomic datagram (DF set, not a fragment) may carry
	// any Identification; zero says it was never meant to be reassembled.
	binary.BigEndian.PutUint16(ip[ipID:], 0)
	binary.BigEndian.PutUint16(ip[ipFlagsFrag:], 0x4000)
	ip[ipTTL] = 64
	ip[ipProto] = ProtoTCP
	binary.BigEndian.PutUint32(ip[ipSrc:], s.Tuple.SrcAddr)
	binary.BigEndian.PutUint32(ip[ipDst:], s.Tuple.DstAddr)
	ip.SetChecksum(ip.CalculateChecksum())

	tcp := TCP(b[IPv4MinLen:n])
	hdr := TCPMinLen
	if s.HasTS {
		hdr += 12
	}
	binary.BigEndian.PutUint16(tcp[tcpSrcPort:], s.Tuple.SrcPort)
	binary.BigEndian.PutUint16(tcp[tcpDstPort:], s.Tuple.DstPort)
	binary.BigEndian.PutUint32(tcp[tcpSeq:], s.Seq)
	binary.BigEndian.PutUint32(tcp[tcpAck:], s.Ack)
	tcp[tcpDataOff] = uint8(hdr/4) << 4
	tcp[tcpFlags] = s.Flags
	binary.BigEndian.PutUint16(tcp[tcpWindow:], s.Window)
	binary.BigEndian.PutUint16(tcp[tcpUrgent:], 0)
	if s.HasTS {
		// NOP, NOP, Timestamps: the layout RFC 7323 Appendix A suggests,
		// keeping the 32-bit fields aligned.
		o := tcp[TCPMinLen:hdr]
		o[0], o[1], o[2], o[3] = tcpOptNOP, tcpOptNOP, tcpOptTimestamp, tcpOptTSLen
		binary.BigEndian.PutUint32(o[4:], s.TSVal)
		binary.BigEndian.PutUint32(o[8:], s.TSEcr)
	}
	copy(tcp[hdr:], s.Payload)
	tcp.SetChecksum(TCPChecksum(ip, tcp))
	return n
}
