package packet

import "encoding/binary"

// IPv4 header (RFC 791, 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipVerIHL    = 0
	ipTOS       = 1
	ipTotalLen  = 2
	ipID        = 4
	ipFlagsFrag = 6
	ipTTL       = 8
	ipProto     = 9
	ipChecksum  = 10
	ipSrc       = 12
	ipDst       = 16
)

// IPv4MinLen is the length of an IPv4 header without options.
const IPv4MinLen = 20

// IPv4 flag bits as returned by IPv4.Flags.
const (
	IPv4DontFragment  uint8 = 0x2
	IPv4MoreFragments uint8 = 0x1
)

// IPv4 is a view of an IPv4 packet, from the start of its header. Accessors
// do not bounds-check: Parse establishes that the header (IHL) and, for
// Payload, the whole packet (Total Length) are present. Setters of covered
// fields keep the header checksum right by incremental update; they do not
// touch transport checksums, which cover the addresses through the
// pseudo-header and are the caller's business.
type IPv4 []byte

// Version returns the IP version field (4 for a packet Parse accepted).
func (b IPv4) Version() uint8 { return b[ipVerIHL] >> 4 }

// IHL returns the Internet Header Length field, in 32-bit words.
func (b IPv4) IHL() uint8 { return b[ipVerIHL] & 0xf }

// HeaderLen returns the header length in bytes (IHL*4).
func (b IPv4) HeaderLen() int { return int(b[ipVerIHL]&0xf) * 4 }

// TOS returns the Type of Service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ipTOS] }

// TotalLength returns the length of the packet, header included, in bytes.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipTotalLen:]) }

// SetTotalLength sets the total length and updates the header checksum.
func (b IPv4) SetTotalLength(n uint16) {
	old := b.TotalLength()
	binary.BigEndian.PutUint16(b[ipTotalLen:], n)
	b.SetChecksum(UpdateChecksum16(b.Checksum(), old, n))
}

// ID returns the Identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipID:]) }

// Flags returns the three flag bits (IPv4DontFragment, IPv4MoreFragments).
func (b IPv4) Flags() uint8 { return b[ipFlagsFrag] >> 5 }

// FragOffset returns the fragment offset in bytes (the field times 8).
func (b IPv4) FragOffset() uint16 { return binary.BigEndian.Uint16(b[ipFlagsFrag:]) << 3 }

// TTL returns the Time to Live.
func (b IPv4) TTL() uint8 { return b[ipTTL] }

// SetTTL sets the Time to Live and updates the header checksum.
func (b IPv4) SetTTL(ttl uint8) {
	old := binary.BigEndian.Uint16(b[ipTTL:])
	b[ipTTL] = ttl
	b.SetChecksum(UpdateChecksum16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipTTL:])))
}

// DecTTL decrements the Time to Live, updates the header checksum and
// returns the new TTL. A TTL of 0 is left alone (and 0 returned): a router
// checks for TTL <= 1 before forwarding (RFC 1812 5.3.1), and wrapping to
// 255 would resurrect the packet.
func (b IPv4) DecTTL() uint8 {
	ttl := b[ipTTL]
	if ttl == 0 {
		return 0
	}
	b[ipTTL] = ttl - 1
	// TTL is the high byte of its 16-bit word, so the word drops by 0x0100.
	// RFC 1624 eqn. 3 with m' = m - 0x100: ~m + m' = 0xffff - 0x100.
	b.SetChecksum(^Fold(uint32(^b.Checksum()) + 0xfeff))
	return ttl - 1
}

// Protocol returns the transport protocol number (ProtoTCP, ...).
func (b IPv4) Protocol() uint8 { return b[ipProto] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipChecksum:]) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[ipChecksum:], c) }

// SrcAddr returns the source address in host byte order.
func (b IPv4) SrcAddr() uint32 { return binary.BigEndian.Uint32(b[ipSrc:]) }

// DstAddr returns the destination address in host byte order.
func (b IPv4) DstAddr() uint32 { return binary.BigEndian.Uint32(b[ipDst:]) }

// SetSrcAddr sets the source address and updates the header checksum (not
// the transport checksum).
func (b IPv4) SetSrcAddr(a uint32) {
	old := b.SrcAddr()
	binary.BigEndian.PutUint32(b[ipSrc:], a)
	b.SetChecksum(UpdateChecksum32(b.Checksum(), old, a))
}

// SetDstAddr sets the destination address and updates the header checksum
// (not the transport checksum).
func (b IPv4) SetDstAddr(a uint32) {
	old := b.DstAddr()
	binary.BigEndian.PutUint32(b[ipDst:], a)
	b.SetChecksum(UpdateChecksum32(b.Checksum(), old, a))
}

// SetSrcAddrRaw sets the source address and leaves every checksum alone,
// for callers that patch checksums with a precomputed Delta.
func (b IPv4) SetSrcAddrRaw(a uint32) { binary.BigEndian.PutUint32(b[ipSrc:], a) }

// SetDstAddrRaw sets the destination address and leaves every checksum
// alone, for callers that patch checksums with a precomputed Delta.
func (b IPv4) SetDstAddrRaw(a uint32) { binary.BigEndian.PutUint32(b[ipDst:], a) }

// Options returns the options and padding between the fixed header and
// HeaderLen.
func (b IPv4) Options() []byte { return b[IPv4MinLen:b.HeaderLen()] }

// Payload returns the transport data: from HeaderLen to TotalLength.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLength()] }

// CalculateChecksum returns the checksum the header should carry, computed
// over HeaderLen bytes with the checksum field taken as zero.
func (b IPv4) CalculateChecksum() uint16 {
	hl := b.HeaderLen()
	s := Sum(b[:ipChecksum], 0)
	return Checksum(b[ipChecksum+2:hl], s)
}

// IsChecksumValid reports whether the header checksum is correct: the
// one's-complement sum of the header, checksum included, is 0xffff.
func (b IPv4) IsChecksumValid() bool { return Fold(headerSum(b[:b.HeaderLen()])) == 0xffff }

// IP options the NAT acts on (RFC 791).
const (
	OptEnd         = 0   // end of option list
	OptNOP         = 1   // no operation
	OptRecordRoute = 7   // record route
	OptLSRR        = 131 // loose source and record route
	OptSSRR        = 137 // strict source and record route
)

// RecordRoute does what RFC 791 asks of a router, or of a host answering
// an echo request (RFC 1122 §3.2.2.6), about the header's Record Route
// option: when the option has room for another address it records addr
// there and advances its pointer. It reports whether it did; then the
// caller fixes the header checksum. A header without the option, or
// whose options are malformed, is left alone.
func (b IPv4) RecordRoute(addr uint32) bool {
	opts := b.Options()
	i, ok := findOption(opts, OptRecordRoute, OptRecordRoute)
	if !ok || i+1 >= len(opts) {
		return false
	}
	n := int(opts[i+1])
	if n < 3 || i+n > len(opts) {
		return false // malformed: no pointer, or beyond the header
	}
	o := opts[i : i+n]
	ptr := int(o[2]) // 1-based offset of the next free slot
	if ptr < 4 || ptr+3 > n {
		return false // full (or malformed)
	}
	binary.BigEndian.PutUint32(o[ptr-1:], addr)
	o[2] += 4
	return true
}

// SourceRouted reports whether the IPv4 options opts (the header after
// its first 20 bytes) hold a loose or strict source route. A router that
// honours neither drops such a packet: the kernel does unless
// accept_source_route is on for all interfaces (off by default), and RFC
// 7126 §4.3–4.4 advise it, since a sender picks the path and, through a
// NAT, may name inside addresses. Options past a malformed one are not
// read: the list ends there.
func SourceRouted(opts []byte) bool {
	_, ok := findOption(opts, OptLSRR, OptSSRR)
	return ok
}

// findOption returns the offset in opts of the first option of type a
// or b, walking the list as RFC 791 lays it out (End ends it, NOP is one
// byte, every other option gives its length), or false when the list
// ends, or turns malformed, first.
func findOption(opts []byte, a, b byte) (int, bool) {
	for i := 0; i < len(opts); {
		switch opts[i] {
		case OptEnd:
			return 0, false
		case OptNOP:
			i++
			continue
		case a, b:
			return i, true
		}
		if i+1 >= len(opts) || opts[i+1] < 2 {
			return 0, false
		}
		i += int(opts[i+1])
	}
	return 0, false
}
