package packet

import "encoding/binary"

// ICMP errors a router originates (RFC 792, RFC 1812 §4.3.2).

// ICMPErrorMaxLen is the longest ICMP error a router sends, IP header
// included. RFC 1812 §4.3.2.3: "the ICMP datagram SHOULD contain as much
// of the original datagram as possible without the length of the ICMP
// datagram exceeding 576 bytes".
const ICMPErrorMaxLen = 576

// ICMPErrorOverhead is what an error puts in front of the datagram it
// quotes: its own IPv4 header (no options) and the 8-byte ICMP header.
const ICMPErrorOverhead = IPv4MinLen + ICMPLen

// ipTOSMask and ipPrecInternetControl shape the error's Type of Service
// byte as Linux does (RT_TOS(tos) | IPTOS_PREC_INTERNETCONTROL): the
// original's TOS bits with precedence 6, which RFC 1812 §4.3.2.5 allows
// for errors a router generates.
const (
	ipTOSMask             = 0x1e
	ipPrecInternetControl = 0xc0
)

// ICMPErrorSpec describes an error BuildICMPError makes.
type ICMPErrorSpec struct {
	Type, Code uint8
	// Rest is the second word of the ICMP header: 0 for time exceeded
	// and most unreachables; the next-hop MTU in its low 16 bits for
	// fragmentation needed (RFC 1191 §4).
	Rest uint32
	// Src is the error's source: the router's own address.
	Src uint32
	// ID is the error's IPv4 Identification.
	ID uint16
	// MaxLen bounds the error's IP length (quote included); at most
	// ICMPErrorMaxLen, at least ICMPErrorOverhead + IPv4MinLen.
	MaxLen int
}

// BuildICMPError turns the IPv4 packet at frame[l3:end] into an ICMP error
// about it, in place, addressed to the packet's source, and returns the
// new end of the IP packet. The link-layer header before l3 is left as it
// is. The error quotes the packet from its IP header on, as much as
// e.MaxLen and cap(frame) allow (at least the header and 8 bytes of data,
// RFC 792, when the packet has them): the quote moves ICMPErrorOverhead
// bytes towards the end of the frame, and the new IPv4 and ICMP headers are
// written where the packet's header was. It allocates nothing. The caller
// decides whether an error may be sent at all (RFC 1812 §4.3.2.7).
func BuildICMPError(frame []byte, l3, end int, e ICMPErrorSpec) int {
	orig := frame[l3:end]
	dst := binary.BigEndian.Uint32(orig[ipSrc:])
	tos := orig[ipTOS]&ipTOSMask | ipPrecInternetControl
	q := max(0, min(len(orig), e.MaxLen-ICMPErrorOverhead, cap(frame)-l3-ICMPErrorOverhead))
	frame = frame[:l3+ICMPErrorOverhead+q]
	copy(frame[l3+ICMPErrorOverhead:], orig[:q])
	n := ICMPErrorOverhead + q

	ip := IPv4(frame[l3 : l3+n])
	ip[ipVerIHL] = 0x45
	ip[ipTOS] = tos
	binary.BigEndian.PutUint16(ip[ipTotalLen:], uint16(n))
	binary.BigEndian.PutUint16(ip[ipID:], e.ID)
	binary.BigEndian.PutUint16(ip[ipFlagsFrag:], 0)
	ip[ipTTL] = 64
	ip[ipProto] = ProtoICMP
	binary.BigEndian.PutUint32(ip[ipSrc:], e.Src)
	binary.BigEndian.PutUint32(ip[ipDst:], dst)
	ip.SetChecksum(0)
	ip.SetChecksum(ip.CalculateChecksum())

	ic := ICMP(ip[IPv4MinLen:])
	ic[icmpType] = e.Type
	ic[icmpCode] = e.Code
	binary.BigEndian.PutUint32(ic[icmpID:], e.Rest)
	ic.SetChecksum(0)
	ic.SetChecksum(ICMPChecksum(ic))
	return l3 + n
}
