package nat

import (
	"encoding/binary"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// icmpError translates an ICMP error (destination unreachable, time
// exceeded, parameter problem, ...) by the session of the packet it embeds
// (RFC 5508 §4.2): the embedded header is restored to what its sender sent,
// the outer destination becomes that sender, and every checksum involved
// is fixed. Errors never create sessions.
//
// An error must be addressed to the sender of the packet it quotes: the
// embedded packet's source. One addressed elsewhere is dropped as
// matching no session, as conntrack finds it invalid ("outer daddr !=
// inner", nf_conntrack_inet_error) and the kernel's NAT does not
// translate it: otherwise anyone could reach a session's inside host by
// sending an error quoting it to any address routed through the NAT.
//
// The embedded packet E travelled in one direction of its session after
// translation; the error travels back, in the other direction d, so E is
// Key[d] reversed and must become Key[1-d], the packet as originally sent.
func (e *Engine) icmpError(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, r *Result) {
	in := p.Inner.Tuple
	id, dir, gen, ok := e.n.table.LookupGen(in.Reverse())
	var h flowtable.Hot
	if ok {
		h, ok = e.n.table.Hot(id, gen, dir)
	}
	ip := packet.IPv4(frame[p.L3:p.End])
	if !ok || fromSide(h.Flags(), dir) != from || ip.DstAddr() != in.SrcAddr {
		r.Verdict = DropICMPNoSession
		return
	}
	if ip.TTL() <= 1 {
		r.Verdict = DropTTLExpired
		return
	}
	orig := h.Xlate().Reverse() // Key[1-dir]
	// Outer header: to the original sender. The source is the reporting
	// router or host; when that is the embedded packet's destination
	// itself, or when the error leaves the inside, it takes the address
	// the sender knows that destination by, so no inside address leaks.
	outerSrc := ip.SrcAddr()
	if outerSrc == in.DstAddr || from == Inside {
		outerSrc = orig.DstAddr
	}
	binary.BigEndian.PutUint32(ip[12:], outerSrc)
	binary.BigEndian.PutUint32(ip[16:], orig.SrcAddr)
	ip[8]--
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ip.CalculateChecksum())

	// Embedded header: back to the original tuple.
	inner := packet.IPv4(frame[p.Inner.L3:p.End])
	oldSrc, oldDst := inner.SrcAddr(), inner.DstAddr()
	binary.BigEndian.PutUint32(inner[12:], orig.SrcAddr)
	binary.BigEndian.PutUint32(inner[16:], orig.DstAddr)
	binary.BigEndian.PutUint16(inner[10:], 0)
	binary.BigEndian.PutUint16(inner[10:], inner.CalculateChecksum())
	l4 := frame[p.Inner.L4:p.End]
	switch in.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		oldSport, oldDport := binary.BigEndian.Uint16(l4[0:]), binary.BigEndian.Uint16(l4[2:])
		binary.BigEndian.PutUint16(l4[0:], orig.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], orig.DstPort)
		d := packet.Delta(0).Add32(oldSrc, orig.SrcAddr).Add32(oldDst, orig.DstAddr).
			Add16(oldSport, orig.SrcPort).Add16(oldDport, orig.DstPort)
		// The embedded transport checksum is fixed when the error quotes
		// it (always for UDP; for TCP when more than 8 bytes are quoted),
		// so that the original sender can match the quote.
		if in.Proto == packet.ProtoUDP {
			binary.BigEndian.PutUint16(l4[6:], packet.ApplyDeltaUDP(binary.BigEndian.Uint16(l4[6:]), d))
		} else if len(l4) >= 18 {
			binary.BigEndian.PutUint16(l4[16:], packet.ApplyDelta(binary.BigEndian.Uint16(l4[16:]), d))
		}
	case packet.ProtoICMP:
		oldID := binary.BigEndian.Uint16(l4[4:])
		binary.BigEndian.PutUint16(l4[4:], orig.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], packet.UpdateChecksum16(binary.BigEndian.Uint16(l4[2:]), oldID, orig.SrcPort))
	}
	// The ICMP checksum covers the whole error message: recompute it.
	icmp := frame[p.L4:p.End]
	binary.BigEndian.PutUint16(icmp[2:], 0)
	binary.BigEndian.PutUint16(icmp[2:], packet.ICMPChecksum(icmp))
	r.Verdict, r.Out, r.Session, r.Gen, r.Dir, r.Divert = Forward, toSide(h.Flags(), dir), id, gen, dir, false
}

// echoReply turns an echo request to one of the NAT's public addresses,
// arrived on side from, into its reply, in place (RFC 792: swap the
// addresses, type 0, same identifier, sequence and data), sent back to
// that side, its Record Route and Timestamp options filled in as the
// kernel's stack fills them in (packet.IPv4.EchoOptions). A
// request in fragments is answered in as many: the first
// carries the ICMP header, whose checksum covers the whole message and
// changes only by the type, and the others are reflected as they come
// (rememberEcho).
func (e *Engine) echoReply(frame []byte, p *packet.Parsed, from Side, r *Result) {
	ip := packet.IPv4(frame[p.L3:p.End])
	// The request's Record Route and Timestamp options come back in the
	// reply, filled in by the answering address on receipt and again on
	// answering, as the kernel's stack fills them in, so the route shown
	// is the whole round trip (RFC 1122 §3.2.2.6). reflectIPv4 fixes the
	// header checksum.
	if ip[0] != 0x45 {
		// The time read now, not the burst's: a stamp is to the
		// millisecond (and the options path is rare).
		ip.EchoOptions(ip.DstAddr(), packet.Timestamp(time.Now()), e.n.rules.Load().own)
	}
	reflectIPv4(ip)
	icmp := frame[p.L4:p.End]
	old := binary.BigEndian.Uint16(icmp[0:])
	icmp[0] = packet.ICMPEchoReply
	binary.BigEndian.PutUint16(icmp[2:], packet.UpdateChecksum16(binary.BigEndian.Uint16(icmp[2:]), old, binary.BigEndian.Uint16(icmp[0:])))
	r.Verdict, r.Out, r.Divert = Forward, from, false
}

// reflectIPv4 turns an IPv4 header addressed to the NAT into the header of
// its answer: the addresses swapped, a fresh TTL of 64, the checksum
// recomputed. Identification and fragmentation are kept, so that the
// fragments of an answered datagram reassemble as one.
func reflectIPv4(ip packet.IPv4) {
	src, dst := ip.SrcAddr(), ip.DstAddr()
	binary.BigEndian.PutUint32(ip[12:], dst)
	binary.BigEndian.PutUint32(ip[16:], src)
	ip[8] = 64
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ip.CalculateChecksum())
}

// ClosedPort reports whether p, a UDP datagram or TCP segment that
// Process refused as unsolicited (or, not a SYN, as starting no flow:
// DropTCPNoSYN), was sent to a port of a public address that nothing
// holds: no nat server, no endpoint-independent mapping, no session's own
// port (from inside, that is a hairpin to nothing). Such a port is
// closed, and the pipeline answers as a host does — port unreachable for
// UDP (RFC 1122 §3.2.2.1), a reset for any TCP segment but a RST (RFC
// 9293 §3.10.7.1: a SYN, an ACK scan's ACK, a FIN, NULL or XMAS scan's
// segment alike, as Linux answers each) — from that address, as the
// kernel's NAT answers from its own stack: so traceroute to the public
// address ends there and a client learns at once that nothing listens.
// A port that is mapped but filters the sender is not closed: its
// packets are dropped silently, so that a peer punching a hole before
// the mapping's owner has sent to it (RFC 4787 §4.3, RFC 5382 REQ-4's
// simultaneous open, ICE) is not told to give up. Slow path only.
func (e *Engine) ClosedPort(p *packet.Parsed) bool {
	t := p.Tuple
	if p.Frag.Offset != 0 || t.Proto == packet.ProtoTCP && p.TCPFlags&packet.FlagRST != 0 {
		return false
	}
	if e.n.rules.Load().closedPort(t) == NoResponse {
		return false
	}
	class, _ := portClass(t.Proto)
	_, mapped := e.n.public.lookup(bindKey{addr: t.DstAddr, port: t.DstPort, class: uint8(class)})
	return !mapped
}

// closedPort is what the NAT answers t with, a TCP segment (not a RST)
// or UDP datagram refused as unsolicited, as a host whose port is closed, when no binding
// holds its destination (ClosedPort asks the bindings; Explain knows
// none): a reset or port unreachable when it is to a public address no
// server publishes, else nothing.
func (c *compiled) closedPort(t packet.Tuple) Response {
	if !c.isPublic(t.DstAddr) {
		return NoResponse
	}
	if _, ok := c.server(t.DstAddr, t.DstPort, t.Proto); ok {
		return NoResponse
	}
	switch t.Proto {
	case packet.ProtoTCP:
		return RespondTCPReset
	case packet.ProtoUDP:
		return RespondPortUnreachable
	}
	return NoResponse
}
