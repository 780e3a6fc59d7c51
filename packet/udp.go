package packet

import "encoding/binary"

// UDP header (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
//
// UDP-Lite (RFC 3828) has the same layout with Checksum Coverage in place
// of Length.
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6
)

// UDPLen is the length of a UDP header.
const UDPLen = 8

// UDP is a view of a UDP datagram, from the start of its header. Accessors do
// not bounds-check: Parse establishes that the header is present and that
// Length fits the packet. A checksum of 0 means the sender computed none
// (RFC 768); the port setters keep it 0 and otherwise update it
// incrementally, sending a computed 0 as 0xffff.
type UDP []byte

// SrcPort returns the source port.
func (u UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(u[udpSrcPort:]) }

// DstPort returns the destination port.
func (u UDP) DstPort() uint16 { return binary.BigEndian.Uint16(u[udpDstPort:]) }

// SetSrcPort sets the source port and updates a non-zero checksum.
func (u UDP) SetSrcPort(p uint16) {
	old := u.SrcPort()
	binary.BigEndian.PutUint16(u[udpSrcPort:], p)
	u.SetChecksum(updateUDP(u.Checksum(), old, p))
}

// SetDstPort sets the destination port and updates a non-zero checksum.
func (u UDP) SetDstPort(p uint16) {
	old := u.DstPort()
	binary.BigEndian.PutUint16(u[udpDstPort:], p)
	u.SetChecksum(updateUDP(u.Checksum(), old, p))
}

// SetSrcPortRaw sets the source port and leaves the checksum alone, for
// callers that patch it with a precomputed Delta (ApplyDeltaUDP).
func (u UDP) SetSrcPortRaw(p uint16) { binary.BigEndian.PutUint16(u[udpSrcPort:], p) }

// SetDstPortRaw sets the destination port and leaves the checksum alone, for
// callers that patch it with a precomputed Delta (ApplyDeltaUDP).
func (u UDP) SetDstPortRaw(p uint16) { binary.BigEndian.PutUint16(u[udpDstPort:], p) }

// Length returns the Length field: header plus data, in bytes. For UDP-Lite
// it is the checksum coverage (0 meaning the whole datagram).
func (u UDP) Length() uint16 { return binary.BigEndian.Uint16(u[udpLength:]) }

// Checksum returns the checksum field; 0 means none was computed.
func (u UDP) Checksum() uint16 { return binary.BigEndian.Uint16(u[udpChecksum:]) }

// SetChecksum sets the checksum field.
func (u UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(u[udpChecksum:], c) }

// Payload returns the data after the header, up to Length. Where Length
// does not bound the data present — a first fragment, whose Length counts
// the whole datagram, or UDP-Lite coverage 0 — it returns everything after
// the header.
func (u UDP) Payload() []byte {
	n := int(u.Length())
	if n < UDPLen || n > len(u) {
		n = len(u)
	}
	return u[UDPLen:n]
}
