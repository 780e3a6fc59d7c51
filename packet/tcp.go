package packet

import "encoding/binary"

// TCP header (RFC 9293, 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpSrcPort  = 0
	tcpDstPort  = 2
	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16
	tcpUrgent   = 18
)

// TCPMinLen is the length of a TCP header without options.
const TCPMinLen = 20

// TCP flag bits, as returned by TCP.Flags and recorded in Parsed.TCPFlags.
const (
	FlagFIN uint8 = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
	FlagECE
	FlagCWR
)

// TCP is a view of a TCP segment, from the start of its header to the end of
// the IP packet. Accessors do not bounds-check: Parse establishes that the
// header, options included, is present. Setters of covered fields keep the
// TCP checksum right by incremental update.
type TCP []byte

// SrcPort returns the source port.
func (t TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(t[tcpSrcPort:]) }

// DstPort returns the destination port.
func (t TCP) DstPort() uint16 { return binary.BigEndian.Uint16(t[tcpDstPort:]) }

// SetSrcPort sets the source port and updates the checksum.
func (t TCP) SetSrcPort(p uint16) {
	old := t.SrcPort()
	binary.BigEndian.PutUint16(t[tcpSrcPort:], p)
	t.SetChecksum(UpdateChecksum16(t.Checksum(), old, p))
}

// SetDstPort sets the destination port and updates the checksum.
func (t TCP) SetDstPort(p uint16) {
	old := t.DstPort()
	binary.BigEndian.PutUint16(t[tcpDstPort:], p)
	t.SetChecksum(UpdateChecksum16(t.Checksum(), old, p))
}

// SetSrcPortRaw sets the source port and leaves the checksum alone, for
// callers that patch it with a precomputed Delta.
func (t TCP) SetSrcPortRaw(p uint16) { binary.BigEndian.PutUint16(t[tcpSrcPort:], p) }

// SetDstPortRaw sets the destination port and leaves the checksum alone, for
// callers that patch it with a precomputed Delta.
func (t TCP) SetDstPortRaw(p uint16) { binary.BigEndian.PutUint16(t[tcpDstPort:], p) }

// Seq returns the sequence number.
func (t TCP) Seq() uint32 { return binary.BigEndian.Uint32(t[tcpSeq:]) }

// SetSeq sets the sequence number and updates the checksum.
func (t TCP) SetSeq(s uint32) {
	old := t.Seq()
	binary.BigEndian.PutUint32(t[tcpSeq:], s)
	t.SetChecksum(UpdateChecksum32(t.Checksum(), old, s))
}

// Ack returns the acknowledgment number.
func (t TCP) Ack() uint32 { return binary.BigEndian.Uint32(t[tcpAck:]) }

// SetAck sets the acknowledgment number and updates the checksum.
func (t TCP) SetAck(a uint32) {
	old := t.Ack()
	binary.BigEndian.PutUint32(t[tcpAck:], a)
	t.SetChecksum(UpdateChecksum32(t.Checksum(), old, a))
}

// DataOffset returns the Data Offset field: the header length in 32-bit
// words.
func (t TCP) DataOffset() uint8 { return t[tcpDataOff] >> 4 }

// HeaderLen returns the header length in bytes, options included.
func (t TCP) HeaderLen() int { return int(t[tcpDataOff]>>4) * 4 }

// Flags returns the flag bits (FlagFIN ... FlagCWR).
func (t TCP) Flags() uint8 { return t[tcpFlags] }

// Window returns the receive window (unscaled).
func (t TCP) Window() uint16 { return binary.BigEndian.Uint16(t[tcpWindow:]) }

// Checksum returns the checksum field.
func (t TCP) Checksum() uint16 { return binary.BigEndian.Uint16(t[tcpChecksum:]) }

// SetChecksum sets the checksum field.
func (t TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(t[tcpChecksum:], c) }

// Urgent returns the urgent pointer.
func (t TCP) Urgent() uint16 { return binary.BigEndian.Uint16(t[tcpUrgent:]) }

// Options returns the options between the fixed header and HeaderLen. An
// option rewritten in place (a SACK block) needs its own checksum update,
// e.g. UpdateChecksum32 when the field starts at an even offset.
func (t TCP) Options() []byte { return t[TCPMinLen:t.HeaderLen()] }

// Payload returns the segment data after the header.
func (t TCP) Payload() []byte { return t[t.HeaderLen():] }

// TCP option kinds (RFC 9293 §3.2, RFC 7323 §2.2).
const (
	tcpOptEnd    = 0
	tcpOptNOP    = 1
	tcpOptMSS    = 2 // length 4: the Maximum Segment Size, 16 bits
	tcpOptWScale = 3 // length 3: the window scale shift count
)

// option returns the offset in t of the value of the first option of the
// given kind and length n (kind and length bytes included in n), walking
// the options as RFC 9293 §3.2 lays them out, or -1 when there is none
// before the end of the list; a malformed list ends the walk.
func (t TCP) option(kind byte, n int) int {
	opts := t.Options()
	for i, l := nextOption(opts, 0); l > 0; i, l = nextOption(opts, i+l) {
		if opts[i] == kind && l == n {
			return TCPMinLen + i + 2
		}
	}
	return -1
}

// ClampMSS lowers the Maximum Segment Size option of a SYN to mss when it
// is larger, patching the checksum incrementally, and returns the value it
// found (0: none, or malformed options). A segment without the option is
// left alone: its sender then assumes 536 (RFC 9293 §3.7.1), which no
// clamp fastnat applies is below. Options are walked as RFC 9293 §3.2
// lays them out; a malformed list stops the walk and changes nothing.
func (t TCP) ClampMSS(mss uint16) uint16 {
	at := t.option(tcpOptMSS, 4)
	if at < 0 {
		return 0
	}
	old := binary.BigEndian.Uint16(t[at:])
	if old > mss {
		binary.BigEndian.PutUint16(t[at:], mss)
		o, n := old, mss
		if at&1 != 0 {
			// The field straddles two checksum words: its bytes count in
			// swapped positions (RFC 1071 §2(B)).
			o, n = o>>8|o<<8, n>>8|n<<8
		}
		t.SetChecksum(UpdateChecksum16(t.Checksum(), o, n))
	}
	return old
}

// WindowScale returns the shift count of the Window Scale option (RFC
// 7323 §2), which only SYN segments carry, and whether the option is
// present. A shift above 14 is read as 14 (RFC 7323 §2.3: the receiver
// "MUST use 14").
func (t TCP) WindowScale() (uint8, bool) {
	at := t.option(tcpOptWScale, 3)
	if at < 0 {
		return 0, false
	}
	return min(t[at], 14), true
}
