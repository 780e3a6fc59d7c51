package packet

import (
	"encoding/binary"
	"math/bits"
)

// Header lengths Parse requires of transports other than TCP and UDP.
const (
	sctpMinLen = 12 // common header: ports, verification tag, checksum
	dccpMinLen = 12 // generic header with short sequence numbers
	dccpDOff   = 4  // Data Offset, in 32-bit words
	embedL4Len = 8  // RFC 792: an ICMP error carries the first 64 bits of the original data
)

// Frag holds the fragmentation fields of an IPv4 header.
type Frag struct {
	ID     uint16 // Identification
	Offset uint16 // fragment offset in bytes
	More   bool   // More Fragments flag
}

// IsFragment reports whether the packet is a fragment of a larger datagram
// (any fragment, the first included).
func (f Frag) IsFragment() bool { return f.Offset > 0 || f.More }

// InnerParsed is what Parse learns about the datagram embedded in an ICMP
// error. Offsets are from the start of the frame.
type InnerParsed struct {
	L3, L4   int   // embedded IPv4 header; its transport header (at least 8 bytes for TCP, UDP, UDP-Lite, SCTP, DCCP and ICMP)
	Tuple    Tuple // as the embedded packet was sent; for an embedded ICMP query or reply both ports hold its identifier
	ICMPType uint8 // type of an embedded ICMP query or reply
}

// Parsed is what Parse learns about a frame. Offsets are from the start of
// the frame. After a Result other than OK the fields up to the failing layer
// are filled in and the rest are zero.
type Parsed struct {
	// L3 is the IPv4 header, L4 the transport header, Payload the transport
	// payload and End the end of the IP packet; the frame may carry
	// Ethernet padding after End. For non-first fragments and protocols
	// Parse does not know, L4 == Payload == L3+IHL*4.
	L3, L4, Payload, End int
	// VLAN is the 802.1Q TCI if HasVLAN, else 0.
	VLAN    uint16
	HasVLAN bool
	// Tuple is the flow tuple: ports for TCP, UDP, UDP-Lite, SCTP and DCCP
	// (0 in non-first fragments); for ICMP queries and replies both ports
	// hold the identifier; for ICMP errors and other protocols ports are 0.
	Tuple Tuple
	// Frag holds the fragmentation fields.
	Frag Frag
	// ICMPType and ICMPCode are set for ICMP; ICMPKind classifies the type.
	ICMPType, ICMPCode uint8
	ICMPKind           ICMPKind
	// Inner describes the datagram embedded in an ICMPError.
	Inner InnerParsed
	// TCPFlags holds the flag bits of a TCP segment.
	TCPFlags uint8
}

// Parse decodes frame — Ethernet, at most one 802.1Q tag, IPv4, and the
// transport header of a first (or only) fragment — into p and says whether
// the frame is usable. It checks every length a header claims against the
// bytes present and verifies the IPv4 header checksum; it does not verify
// transport checksums. It never allocates and never panics, whatever frame
// holds.
//
// The common frame (ParseCommon) takes a fast path that reads each header
// through a fixed-size array (one bounds check each) and writes p once;
// every other frame, and every frame the fast path finds wanting, takes
// the general decoder, which gives the same answer (a differential test
// holds them to it).
func Parse(frame []byte, p *Parsed) Result {
	var t Tuple
	if ParseCommon(frame, &t) {
		p.SetCommon(frame, t)
		return OK
	}
	return parse(frame, p)
}

// CommonL4 is where the transport header of a frame ParseCommon accepted
// starts: after an untagged Ethernet header and a 20-byte IPv4 header.
const CommonL4 = EthernetLen + IPv4MinLen

// ParseCommon decodes the tuple of a frame of the shape nearly all
// traffic has — no VLAN tag, IPv4 with a 20-byte header, not a fragment,
// UDP or TCP — into t and reports true, having checked what Parse checks
// of such a frame (lengths, the header checksum). It reports false for
// every other frame, which Parse's general decoder then judges; t is
// garbage then. The pipeline calls it on every frame; it reads each
// header through a fixed-size array, one bounds check each, and writes
// only the tuple, the lookup key: what else the established-flow path
// needs it reads from the headers, where they are (CommonIPv4,
// CommonTCP), and SetCommon fills a Parsed from the tuple and the frame.
func ParseCommon(frame []byte, t *Tuple) bool {
	f, k := [1]Frame{{Buf: frame}}, [1]Tuple{}
	var common [1]bool
	n, _ := ParseCommonBurst(f[:], k[:], common[:])
	*t = k[0]
	return n == 1
}

// Frame is a received frame as a port lends it: the packet's bytes and
// the port's own name for the buffer (pipeline.Frame).
type Frame struct {
	Buf    []byte
	Handle uint64
}

// ParseCommonBurst is ParseCommon over a burst of frames, in one loop
// without calls (a Go call costs its caller every register the loop
// keeps): common[i] reports whether frames[i] is of the common shape,
// and the tuples of those that are go to keys[:n], in order. keys and
// common must be at least as long as frames. It also returns the total
// length of the frames, the bytes the burst brought.
func ParseCommonBurst(frames []Frame, keys []Tuple, common []bool) (n int, bytes uint64) {
	common = common[:len(frames)]
	keys = keys[:len(frames)]
	for i := range frames {
		frame := frames[i].Buf
		bytes += uint64(len(frame))
		common[i] = false
		if len(frame) < CommonL4+UDPLen {
			continue
		}
		h := (*[CommonL4 + UDPLen]byte)(frame)
		// The EtherType and the version and header length, in one word
		// (the fourth byte is the TOS).
		if binary.BigEndian.Uint32(h[ethType:])>>8 != uint32(EtherTypeIPv4)<<8|0x45 {
			continue
		}
		// The IPv4 header in three words, each field taken from them:
		// a = version/IHL, TOS, total length, identification, flags and
		// fragment offset; b = TTL, protocol, checksum, source; d =
		// destination.
		ip := (*[IPv4MinLen]byte)(h[EthernetLen:])
		a, b, d := binary.BigEndian.Uint64(ip[0:]), binary.BigEndian.Uint64(ip[8:]), binary.BigEndian.Uint32(ip[16:])
		tl := int(uint16(a >> 32))
		if a&0x3fff != 0 || tl > len(frame)-EthernetLen {
			continue
		}
		// RFC 791: the sum over the header, checksum included, is all
		// ones. Summed in 64-bit words with the carries added back (RFC
		// 1071 §2(B): the sum may be taken in any word size, then
		// folded): the last carry cannot carry again. Folded, the sum is
		// all ones exactly when the header's 16-bit words add up to a
		// multiple of 0xffff other than 0 (the version word is never 0);
		// 2^16, and so 2^64-1, is 1 modulo 0xffff, so the 64-bit sum is
		// such a multiple exactly when the words' sum is: one multiply
		// tests it (the compiler's divisibility test), where folding
		// took a dozen instructions.
		sum, c := bits.Add64(a, b, 0)
		sum, c = bits.Add64(sum, uint64(d), c)
		if (sum+c)%0xffff != 0 {
			continue
		}
		seg := tl - IPv4MinLen // transport bytes the packet holds (negative: a bad total length)
		proto := uint8(b >> 48)
		switch proto {
		case ProtoUDP:
			// RFC 768: Length covers header and data and may be less
			// than the IP payload, never more.
			if l := int(binary.BigEndian.Uint16(h[CommonL4+udpLength:])); l < UDPLen || l > seg {
				continue
			}
		case ProtoTCP:
			if seg < TCPMinLen {
				continue
			}
			tcp := (*[TCPMinLen]byte)(frame[CommonL4:])
			if doff := int(tcp[tcpDataOff]>>4) * 4; doff < TCPMinLen || doff > seg {
				continue
			}
		default:
			continue
		}
		ports := binary.BigEndian.Uint32(h[CommonL4:])
		t := &keys[n]
		t.SrcAddr, t.DstAddr = uint32(b), d
		t.SrcPort, t.DstPort, t.Proto = uint16(ports>>16), uint16(ports), proto
		common[i] = true
		n++
	}
	return n, bytes
}

// SetCommon fills p as Parse does for frame, which ParseCommon accepted
// into t: the frame's fields it did not keep are read again.
func (p *Parsed) SetCommon(frame []byte, t Tuple) {
	h := (*CommonHeaders)(frame)
	ip := CommonIPv4(h)
	hdrLen, flags := UDPLen, uint8(0)
	if t.Proto == ProtoTCP {
		tcp := CommonTCP((*CommonTCPHeaders)(frame))
		hdrLen, flags = tcp.HeaderLen(), tcp.Flags()
	}
	// Zero p and then store each field: a composite literal assigned to
	// *p is built in a temporary and copied, and the copy's wide loads
	// then wait on the narrow stores just made (a store-forwarding
	// stall): 12–15 ns more a packet (BenchmarkParse/udp64).
	*p = Parsed{}
	p.L3, p.L4, p.Payload, p.End = EthernetLen, CommonL4, CommonL4+hdrLen, EthernetLen+int(ip.TotalLength())
	p.Tuple = t
	p.Frag.ID = ip.ID()
	p.TCPFlags = flags
}

// parse is Parse's general decoder.
func parse(frame []byte, p *Parsed) Result {
	*p = Parsed{}
	if len(frame) < EthernetLen {
		return ErrTooShort
	}
	l3 := EthernetLen
	et := binary.BigEndian.Uint16(frame[ethType:])
	if et == EtherTypeVLAN {
		if len(frame) < EthernetLen+VLANLen {
			return ErrTooShort
		}
		p.VLAN = binary.BigEndian.Uint16(frame[vlanTCI:])
		p.HasVLAN = true
		et = binary.BigEndian.Uint16(frame[vlanTCI+2:])
		l3 += VLANLen
	}
	if et != EtherTypeIPv4 {
		return ErrNotIPv4
	}

	ip := frame[l3:]
	if len(ip) < IPv4MinLen {
		return ErrTooShort
	}
	if ip[ipVerIHL]>>4 != 4 {
		return ErrBadIPVersion
	}
	hl := int(ip[ipVerIHL]&0xf) * 4
	if hl < IPv4MinLen {
		return ErrBadIHL
	}
	if len(ip) < hl {
		return ErrTooShort
	}
	tl := int(binary.BigEndian.Uint16(ip[ipTotalLen:]))
	if tl < hl || tl > len(ip) {
		return ErrBadTotalLength
	}
	// RFC 791: the sum over the header, checksum included, is all ones.
	if Fold(headerSum(ip[:hl])) != 0xffff {
		return ErrBadIPChecksum
	}
	if hl > IPv4MinLen && SourceRouted(ip[IPv4MinLen:hl]) {
		return ErrSourceRoute
	}

	l4, end := l3+hl, l3+tl
	p.L3, p.L4, p.Payload, p.End = l3, l4, l4, end
	proto := ip[ipProto]
	p.Tuple.SrcAddr = binary.BigEndian.Uint32(ip[ipSrc:])
	p.Tuple.DstAddr = binary.BigEndian.Uint32(ip[ipDst:])
	p.Tuple.Proto = proto
	ff := binary.BigEndian.Uint16(ip[ipFlagsFrag:])
	p.Frag = Frag{ID: binary.BigEndian.Uint16(ip[ipID:]), Offset: ff << 3, More: ff&0x2000 != 0}
	if p.Frag.Offset != 0 {
		// Only the first fragment carries the transport header.
		return OK
	}

	seg := frame[l4:end]
	switch proto {
	case ProtoTCP:
		if len(seg) < TCPMinLen {
			return ErrBadL4
		}
		doff := int(seg[tcpDataOff]>>4) * 4
		if doff < TCPMinLen || doff > len(seg) {
			return ErrBadL4
		}
		p.setPorts(seg)
		p.TCPFlags = seg[tcpFlags]
		p.Payload = l4 + doff
	case ProtoUDP, ProtoUDPLite:
		if len(seg) < UDPLen {
			return ErrBadL4
		}
		// UDP: Length covers header and data and may be less than the IP
		// payload, never more. UDP-Lite (RFC 3828 3.1): the same field is
		// the checksum coverage, where 0 means the whole datagram. A first
		// fragment holds only part of the datagram, so only the lower
		// bound can be checked.
		n := int(binary.BigEndian.Uint16(seg[udpLength:]))
		if (n < UDPLen && !(proto == ProtoUDPLite && n == 0)) || (n > len(seg) && !p.Frag.More) {
			return ErrBadL4
		}
		p.setPorts(seg)
		p.Payload = l4 + UDPLen
	case ProtoSCTP:
		if len(seg) < sctpMinLen {
			return ErrBadL4
		}
		p.setPorts(seg)
		p.Payload = l4 + sctpMinLen
	case ProtoDCCP:
		if len(seg) < dccpMinLen {
			return ErrBadL4
		}
		doff := int(seg[dccpDOff]) * 4
		if doff < dccpMinLen || doff > len(seg) {
			return ErrBadL4
		}
		p.setPorts(seg)
		p.Payload = l4 + doff
	case ProtoICMP:
		if len(seg) < ICMPLen {
			return ErrBadL4
		}
		t := seg[icmpType]
		p.ICMPType, p.ICMPCode = t, seg[icmpCode]
		p.Payload = l4 + ICMPLen
		p.ICMPKind = KindOf(t)
		switch p.ICMPKind {
		case ICMPQuery, ICMPQueryReply:
			id := binary.BigEndian.Uint16(seg[icmpID:])
			p.Tuple.SrcPort, p.Tuple.DstPort = id, id
		case ICMPError:
			return parseEmbedded(frame[:end], l4+ICMPLen, &p.Inner)
		}
	}
	return OK
}

// setPorts reads the two ports that open every transport header fastnat
// translates.
func (p *Parsed) setPorts(seg []byte) {
	p.Tuple.SrcPort = binary.BigEndian.Uint16(seg[0:])
	p.Tuple.DstPort = binary.BigEndian.Uint16(seg[2:])
}

// parseEmbedded decodes the datagram an ICMP error carries at frame[l3:]
// (RFC 792: its IP header and the first 64 bits of its data). NAT must
// translate that header back, so it must be whole: a complete IPv4 header,
// not a non-first fragment, and for protocols with ports the 8 bytes that
// hold them. An embedded ICMP message must be a query or reply: no ICMP error
// is sent about an ICMP error (RFC 1122 3.2.2).
func parseEmbedded(frame []byte, l3 int, in *InnerParsed) Result {
	ip := frame[l3:]
	if len(ip) < IPv4MinLen || ip[ipVerIHL]>>4 != 4 {
		return ErrBadEmbedded
	}
	hl := int(ip[ipVerIHL]&0xf) * 4
	if hl < IPv4MinLen || hl > len(ip) {
		return ErrBadEmbedded
	}
	if binary.BigEndian.Uint16(ip[ipFlagsFrag:])&0x1fff != 0 {
		return ErrBadEmbedded
	}
	in.L3, in.L4 = l3, l3+hl
	proto := ip[ipProto]
	in.Tuple.SrcAddr = binary.BigEndian.Uint32(ip[ipSrc:])
	in.Tuple.DstAddr = binary.BigEndian.Uint32(ip[ipDst:])
	in.Tuple.Proto = proto
	l4 := ip[hl:]
	switch proto {
	case ProtoTCP, ProtoUDP, ProtoUDPLite, ProtoSCTP, ProtoDCCP:
		if len(l4) < embedL4Len {
			return ErrBadEmbedded
		}
		in.Tuple.SrcPort = binary.BigEndian.Uint16(l4[0:])
		in.Tuple.DstPort = binary.BigEndian.Uint16(l4[2:])
	case ProtoICMP:
		if len(l4) < embedL4Len {
			return ErrBadEmbedded
		}
		switch KindOf(l4[icmpType]) {
		case ICMPQuery, ICMPQueryReply:
		default:
			return ErrBadEmbedded
		}
		in.ICMPType = l4[icmpType]
		id := binary.BigEndian.Uint16(l4[icmpID:])
		in.Tuple.SrcPort, in.Tuple.DstPort = id, id
	}
	return OK
}

// IPv4 returns the view of the IP packet in frame (up to End).
func (p *Parsed) IPv4(frame []byte) IPv4 { return IPv4(frame[p.L3:p.End]) }

// TCP returns the view of the TCP segment in frame.
func (p *Parsed) TCP(frame []byte) TCP { return TCP(frame[p.L4:p.End]) }

// UDP returns the view of the UDP datagram in frame.
func (p *Parsed) UDP(frame []byte) UDP { return UDP(frame[p.L4:p.End]) }

// ICMP returns the view of the ICMP message in frame.
func (p *Parsed) ICMP(frame []byte) ICMP { return ICMP(frame[p.L4:p.End]) }

// InnerIPv4 returns the view of the IPv4 header embedded in an ICMP error. The
// embedded packet is usually truncated, so its TotalLength (and Payload)
// must not be trusted.
func (p *Parsed) InnerIPv4(frame []byte) IPv4 { return IPv4(frame[p.Inner.L3:p.End]) }

// InnerL4 returns the embedded transport header of an ICMP error: at least
// its first 8 bytes for the protocols Parse reads ports from.
func (p *Parsed) InnerL4(frame []byte) []byte { return frame[p.Inner.L4:p.End] }
