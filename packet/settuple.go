package packet

import "encoding/binary"

// SetTuple rewrites the addresses and ports of the packet p describes in
// frame to those of t, patching the IPv4 header checksum and the transport
// checksum incrementally, and records t in p.Tuple. It undoes a
// translation: given the tuple a packet had when it was parsed, it gives a
// translated packet back the header its sender wrote, so that an ICMP error
// about it quotes what the sender knows (RFC 5508 §4.2). The values it
// replaces are read from frame, not from p.Tuple. Ports are written only in
// a first (or only) fragment of TCP and UDP, and the identifier of an ICMP
// query or reply (t.SrcPort); other protocols and non-first fragments
// change addresses only. It allocates nothing.
func (p *Parsed) SetTuple(frame []byte, t Tuple) {
	ip := p.IPv4(frame)
	oldSrc, oldDst := ip.SrcAddr(), ip.DstAddr()
	ip.SetSrcAddr(t.SrcAddr)
	ip.SetDstAddr(t.DstAddr)
	p.Tuple = t
	if p.Frag.Offset != 0 {
		return
	}
	l4 := frame[p.L4:p.End]
	switch ip.Protocol() {
	case ProtoTCP, ProtoUDP:
		oldSport, oldDport := binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		d := Delta(0).Add32(oldSrc, t.SrcAddr).Add32(oldDst, t.DstAddr).
			Add16(oldSport, t.SrcPort).Add16(oldDport, t.DstPort)
		binary.BigEndian.PutUint16(l4[0:], t.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], t.DstPort)
		if ip.Protocol() == ProtoTCP {
			tcp := TCP(l4)
			tcp.SetChecksum(ApplyDelta(tcp.Checksum(), d))
		} else {
			udp := UDP(l4)
			udp.SetChecksum(ApplyDeltaUDP(udp.Checksum(), d))
		}
	case ProtoICMP:
		if p.ICMPKind == ICMPQuery || p.ICMPKind == ICMPQueryReply {
			ICMP(l4).SetID(t.SrcPort)
		}
	}
}

// ttlDelta is the checksum change of decrementing the TTL: the word (TTL,
// protocol) loses 0x0100 whatever its value, as long as the TTL is at
// least 1: Delta(0).Add16(0x0100, 0x0000), a constant so that adding it
// costs no load (TestTTLDelta).
const ttlDelta Delta = 0xfeff

// Translate rewrites the packet p describes to a translated tuple the
// way a NAT's fast path does: it stores the tuple's addresses, and in a
// first (or only) fragment of TCP or UDP its ports or in an ICMP query or
// reply its identifier (the source port), decrements the TTL, and adds
// precomputed checksum deltas instead of reading what it replaces — l3
// for the IPv4 header (Translate adds the TTL's change itself), l4 for
// the transport header. The tuple comes packed, as a flow table stores
// it: addrs is SrcAddr<<32 | DstAddr (Tuple.Words' first word), ports is
// SrcPort<<16 | DstPort; scalars cross the call in registers. The caller
// has checked that the TTL is above 1 and computed the deltas for exactly
// the change from p.Tuple to the new tuple; p.Tuple is left as parsed.
// Each header is bounds-checked once, as the fixed-size array Parse
// established it holds. It allocates nothing.
func (p *Parsed) Translate(frame []byte, addrs uint64, ports uint32, l3, l4 Delta) {
	ip := (*[IPv4MinLen]byte)(frame[p.L3:])
	ip[ipTTL]--
	binary.BigEndian.PutUint64(ip[ipSrc:], addrs) // source, then destination
	binary.BigEndian.PutUint16(ip[ipChecksum:], ApplyDelta(binary.BigEndian.Uint16(ip[ipChecksum:]), l3.Add(ttlDelta)))
	if p.Frag.Offset != 0 {
		return
	}
	switch p.Tuple.Proto {
	case ProtoUDP:
		u := (*[UDPLen]byte)(frame[p.L4:])
		binary.BigEndian.PutUint32(u[udpSrcPort:], ports)
		binary.BigEndian.PutUint16(u[udpChecksum:], ApplyDeltaUDP(binary.BigEndian.Uint16(u[udpChecksum:]), l4))
	case ProtoTCP:
		tcp := (*[TCPMinLen]byte)(frame[p.L4:])
		binary.BigEndian.PutUint32(tcp[tcpSrcPort:], ports)
		binary.BigEndian.PutUint16(tcp[tcpChecksum:], ApplyDelta(binary.BigEndian.Uint16(tcp[tcpChecksum:]), l4))
	case ProtoICMP:
		ic := (*[ICMPLen]byte)(frame[p.L4:])
		binary.BigEndian.PutUint16(ic[icmpID:], uint16(ports>>16))
		binary.BigEndian.PutUint16(ic[icmpChecksum:], ApplyDelta(binary.BigEndian.Uint16(ic[icmpChecksum:]), l4))
	}
}

// Translate for a frame ParseCommon accepted, in pieces small enough to
// inline (the established-flow path calls them per packet): its headers
// are where ParseCommon found them, so nothing of Parsed is read, and the
// frame's first bytes come as a fixed-size array, bounds-checked once by
// the caller's conversion.

// CommonHeaders is the first bytes of a frame ParseCommon accepted:
// Ethernet, the 20-byte IPv4 header, and the first 8 bytes of the
// transport header (UDP's whole).
type CommonHeaders = [CommonL4 + UDPLen]byte

// CommonTCPHeaders is CommonHeaders with the whole 20-byte TCP header.
type CommonTCPHeaders = [CommonL4 + TCPMinLen]byte

// TranslateCommonIPv4 is Translate's IPv4 part: it decrements the TTL,
// stores the addresses and adds l3 and the TTL's change to the header
// checksum.
func TranslateCommonIPv4(h *CommonHeaders, addrs uint64, l3 Delta) {
	h[EthernetLen+ipTTL]--
	binary.BigEndian.PutUint64(h[EthernetLen+ipSrc:], addrs) // source, then destination
	// l3+ttlDelta is below 2^18, and ApplyDelta's two folds take any
	// 32-bit sum: no fold of its own needed (Delta.Add's).
	binary.BigEndian.PutUint16(h[EthernetLen+ipChecksum:], ApplyDelta(binary.BigEndian.Uint16(h[EthernetLen+ipChecksum:]), l3+ttlDelta))
}

// TranslateCommonUDP is Translate's UDP part: the ports and the
// checksum (RFC 768's rules for 0, ApplyDeltaUDP).
func TranslateCommonUDP(h *CommonHeaders, ports uint32, l4 Delta) {
	binary.BigEndian.PutUint32(h[CommonL4+udpSrcPort:], ports)
	binary.BigEndian.PutUint16(h[CommonL4+udpChecksum:], ApplyDeltaUDP(binary.BigEndian.Uint16(h[CommonL4+udpChecksum:]), l4))
}

// TranslateCommonTCP is Translate's TCP part: the ports and the
// checksum.
func TranslateCommonTCP(h *CommonTCPHeaders, ports uint32, l4 Delta) {
	binary.BigEndian.PutUint32(h[CommonL4+tcpSrcPort:], ports)
	binary.BigEndian.PutUint16(h[CommonL4+tcpChecksum:], ApplyDelta(binary.BigEndian.Uint16(h[CommonL4+tcpChecksum:]), l4))
}

// CommonTCP returns the TCP header of a frame ParseCommon accepted as
// TCP, without its options.
func CommonTCP(h *CommonTCPHeaders) TCP { return TCP(h[CommonL4:]) }

// CommonTCPPlainOptions reports whether the TCP header of a frame
// ParseCommon accepted as TCP, hdrLen bytes long (TCP.HeaderLen), has no
// options, or the Timestamps option alone behind two NOPs, the layout
// stacks send (RFC 7323 Appendix A): nothing TCP.SACKRight would read.
func CommonTCPPlainOptions(frame []byte, hdrLen int) bool {
	if hdrLen == TCPMinLen {
		return true
	}
	// Indexed, not sliced: one bounds check and a 32-bit load. The
	// header is at least 24 bytes here, and ParseCommon checked that it
	// fits the frame.
	const at = CommonL4 + TCPMinLen
	_ = frame[at+3]
	return hdrLen == TCPMinLen+tcpTSAlignedLen &&
		uint32(frame[at])<<24|uint32(frame[at+1])<<16|uint32(frame[at+2])<<8|uint32(frame[at+3]) == tcpTSAlignedWord
}

// CommonIPv4 returns the IPv4 header of a frame ParseCommon accepted.
func CommonIPv4(h *CommonHeaders) IPv4 { return IPv4(h[EthernetLen:CommonL4]) }
