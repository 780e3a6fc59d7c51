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
