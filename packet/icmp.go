package packet

import "encoding/binary"

// ICMP header (RFC 792):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Identifier          |        Sequence Number        |  queries
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     unused (pointer, gateway address, next-hop MTU)           |  errors
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     queries: data; errors: Internet Header + 64 bits of the   |
//	|     original datagram's data                                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpID       = 4
	icmpSeq      = 6
)

// ICMPLen is the length of the ICMP header fastnat reads: type, code,
// checksum and the 32-bit rest-of-header word.
const ICMPLen = 8

// ICMP message types (IANA "ICMP Type Numbers").
const (
	ICMPEchoReply           uint8 = 0
	ICMPDestUnreachable     uint8 = 3
	ICMPSourceQuench        uint8 = 4
	ICMPRedirect            uint8 = 5
	ICMPEcho                uint8 = 8
	ICMPRouterAdvertisement uint8 = 9
	ICMPRouterSolicitation  uint8 = 10
	ICMPTimeExceeded        uint8 = 11
	ICMPParamProblem        uint8 = 12
	ICMPTimestamp           uint8 = 13
	ICMPTimestampReply      uint8 = 14
	ICMPInfoRequest         uint8 = 15
	ICMPInfoReply           uint8 = 16
	ICMPAddressMaskRequest  uint8 = 17
	ICMPAddressMaskReply    uint8 = 18
)

// ICMP codes fastnat generates or inspects.
const (
	ICMPCodeNetUnreachable  uint8 = 0  // type ICMPDestUnreachable
	ICMPCodeHostUnreachable uint8 = 1  // type ICMPDestUnreachable
	ICMPCodePortUnreachable uint8 = 3  // type ICMPDestUnreachable
	ICMPCodeFragNeeded      uint8 = 4  // type ICMPDestUnreachable; next-hop MTU in Seq
	ICMPCodeAdminProhibited uint8 = 13 // type ICMPDestUnreachable (RFC 1812)
	ICMPCodeTTLExceeded     uint8 = 0  // type ICMPTimeExceeded
)

// ICMP is a view of an ICMP message, from the start of its header to the end
// of the IP packet. Accessors do not bounds-check: Parse establishes that the
// ICMPLen header bytes are present.
type ICMP []byte

// Type returns the message type.
func (i ICMP) Type() uint8 { return i[icmpType] }

// Code returns the message code.
func (i ICMP) Code() uint8 { return i[icmpCode] }

// Checksum returns the checksum field.
func (i ICMP) Checksum() uint16 { return binary.BigEndian.Uint16(i[icmpChecksum:]) }

// SetChecksum sets the checksum field.
func (i ICMP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(i[icmpChecksum:], c) }

// ID returns the identifier of a query or reply.
func (i ICMP) ID() uint16 { return binary.BigEndian.Uint16(i[icmpID:]) }

// SetID sets the identifier and updates the checksum.
func (i ICMP) SetID(id uint16) {
	old := i.ID()
	binary.BigEndian.PutUint16(i[icmpID:], id)
	i.SetChecksum(UpdateChecksum16(i.Checksum(), old, id))
}

// SetIDRaw sets the identifier and leaves the checksum alone, for callers
// that patch it with a precomputed Delta.
func (i ICMP) SetIDRaw(id uint16) { binary.BigEndian.PutUint16(i[icmpID:], id) }

// Seq returns the sequence number of a query or reply (for "fragmentation
// needed", the next-hop MTU, RFC 1191).
func (i ICMP) Seq() uint16 { return binary.BigEndian.Uint16(i[icmpSeq:]) }

// Payload returns what follows the 8-byte header: the data of a query, or
// the embedded original datagram of an error.
func (i ICMP) Payload() []byte { return i[ICMPLen:] }
