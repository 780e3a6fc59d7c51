package pipeline

import (
	"slices"
	"time"

	"github.com/fastnat/fastnat/packet"
)

// ICMP errors the worker originates (RFC 1812 §4.3.2): time exceeded when
// a packet's TTL runs out here, fragmentation needed for a Don't Fragment
// packet larger than the egress MTU, host unreachable when its next hop
// never resolves, net unreachable when there is no route, port unreachable
// for UDP to a closed port of a public address, parameter problem for
// malformed IP options. Each is built in
// place in the offending frame, which is being dropped anyway, and sent
// back out of the port the packet came in on, from that interface's own
// address (Port.Addr), to the link-layer address the packet came from.
// The quoted packet is what its sender wrote: a frame translated before
// the error was decided is restored first (restore), so the sender
// recognises its own packet whichever side of the NAT it is on (RFC 5508
// §4.2). None of this is on the path of an established flow.

// icmpReason is one kind of error the worker sends.
type icmpReason struct {
	typ, code uint8
	event     Event
	limited   bool // subject to the rate limit
	// asHost: sent as the host the packet was addressed to, from that
	// address (the NAT's public address), not as a router from the
	// interface's.
	asHost bool
}

var (
	icmpTimeExceeded    = icmpReason{packet.ICMPTimeExceeded, packet.ICMPCodeTTLExceeded, EventICMPTimeExceeded, true, false}
	icmpFragNeeded      = icmpReason{packet.ICMPDestUnreachable, packet.ICMPCodeFragNeeded, EventICMPFragNeeded, false, false}
	icmpHostUnreachable = icmpReason{packet.ICMPDestUnreachable, packet.ICMPCodeHostUnreachable, EventICMPHostUnreachable, true, false}
	icmpNetUnreachable  = icmpReason{packet.ICMPDestUnreachable, packet.ICMPCodeNetUnreachable, EventICMPNetUnreachable, true, false}
	icmpPortUnreachable = icmpReason{packet.ICMPDestUnreachable, packet.ICMPCodePortUnreachable, EventICMPPortUnreachable, true, true}
	icmpParamProblem    = icmpReason{packet.ICMPParamProblem, 0, EventICMPParamProblem, true, false}
	// As the kernel answers it about a packet to a public address: from
	// that address, whatever the NAT would have done with the packet.
	icmpParamProblemHost = icmpReason{packet.ICMPParamProblem, 0, EventICMPParamProblem, true, true}
)

// answer turns f — a frame being dropped, received on port in, whose
// packet p describes as its sender wrote it and whose link-layer header is
// the one it arrived with — into the ICMP error why about it and queues
// it on port in. rest is the ICMP header's second word (the next-hop MTU
// for fragmentation needed). When RFC 1812 forbids an error, the port has
// no address or the rate limit says no, f is released instead.
func (w *Worker) answer(f Frame, in int, p *packet.Parsed, why icmpReason, rest uint32) {
	dst := p.Tuple.SrcAddr
	var src uint32
	if mayAnswer(f.Buf, p) && !w.directedBroadcast(p) {
		src = w.ports[in].Addr(dst)
		if why.asHost {
			src = p.Tuple.DstAddr
		}
	}
	if src == 0 {
		w.c.event[EventICMPSuppressed]++
		w.drops = append(w.drops, f)
		return
	}
	if why.limited && !w.lim.allow(dst, w.nanos(), w.rc) {
		w.c.event[EventICMPRateLimited]++
		w.drops = append(w.drops, f)
		return
	}
	w.ipID++
	end := packet.BuildICMPError(f.Buf, p.L3, p.End, packet.ICMPErrorSpec{
		Type: why.typ, Code: why.code, Rest: rest, Src: src, ID: w.ipID,
		MaxLen: min(packet.ICMPErrorMaxLen, w.mtu[in]),
	})
	f.Buf = f.Buf[:end]
	eth := packet.Ethernet(f.Buf)
	eth.SetDst(eth.Src())
	eth.SetSrc(w.macs[in])
	w.c.event[why.event]++
	w.enqueue(in, f)
}

// mayAnswer applies RFC 1812 §4.3.2.7: no ICMP error about an ICMP error
// (or an ICMP message of a type fastnat does not know), about a non-first
// fragment, about a packet sent to a link-layer or IP broadcast or
// multicast address, or about a packet whose source is not one host (the
// unspecified network, loopback, multicast, reserved and broadcast
// addresses).
func mayAnswer(frame []byte, p *packet.Parsed) bool {
	if packet.Ethernet(frame).Dst()[0]&1 != 0 || p.Frag.Offset != 0 {
		return false
	}
	if p.Tuple.Proto == packet.ProtoICMP && p.ICMPKind != packet.ICMPQuery && p.ICMPKind != packet.ICMPQueryReply {
		return false
	}
	dst := p.Tuple.DstAddr
	return oneHost(p.Tuple.SrcAddr) && dst>>28 != 0xe && dst != 0xffffffff
}

// directedBroadcast reports whether the packet's source or destination is
// the directed broadcast address of a connected prefix of any of the
// worker's ports (RFC 1812 §4.3.2.7: no error about a packet sent to an
// IP broadcast address, nor to a source that is not one host; the kernel
// checks both against its broadcast routes). Only packets about to be
// answered are asked about.
func (w *Worker) directedBroadcast(p *packet.Parsed) bool {
	for _, port := range w.ports {
		if port.Broadcast(p.Tuple.SrcAddr) || port.Broadcast(p.Tuple.DstAddr) {
			return true
		}
	}
	return false
}

// oneHost reports whether a is an address one host may have as a source:
// not 0/8, 127/8, 224/4 (multicast) or 240/4 (reserved, broadcast).
func oneHost(a uint32) bool {
	switch a >> 24 {
	case 0, 127:
		return false
	}
	return a>>28 < 0xe
}

// restore gives a translated frame back the header its sender wrote: the
// tuple orig and the TTL before the NAT decremented it.
func restore(frame []byte, p *packet.Parsed, orig packet.Tuple) {
	p.SetTuple(frame, orig)
	ip := p.IPv4(frame)
	ip.SetTTL(ip.TTL() + 1)
}

// forwardOptions does to a forwarded packet's options what the kernel
// does (packet.IPv4.ForwardOptions): its Record Route option records the
// address of port op toward dst — the interface the packet leaves by, as
// RFC 791 asks of a router — and its Timestamp option the time, after the
// address of port in toward the packet's sender when asked (the kernel
// fills timestamps in on receipt); then the header checksum is fixed. A
// port without an address records nothing.
func (w *Worker) forwardOptions(f Frame, p *packet.Parsed, in, op int, dst uint32) {
	ip := p.IPv4(f.Buf)
	out, from := w.ports[op].Addr(dst), w.ports[in].Addr(p.Tuple.SrcAddr)
	if out != 0 && from != 0 && ip.ForwardOptions(out, from, packet.Timestamp(time.Now()), w.engine.OwnAddrs()) {
		ip.SetChecksum(ip.CalculateChecksum())
	}
}

// ownEchoReply reports whether the frame, which p describes as it
// arrived, is now the NAT's own reply to an echo request to a public
// address: its options were filled in as a host's (nat's echoReply),
// and it is sent, not forwarded.
func ownEchoReply(frame []byte, p *packet.Parsed) bool {
	return p.Tuple.Proto == packet.ProtoICMP && p.Frag.Offset == 0 && p.ICMPType == packet.ICMPEcho &&
		frame[p.L4] == packet.ICMPEchoReply
}

// badOptions reports whether the kernel drops a packet with header ip on
// receipt for its options: malformed, or a source route
// (packet.IPv4.CheckOptions).
func badOptions(ip packet.IPv4) bool {
	problem, sourceRouted := ip.CheckOptions()
	return problem != 0 || sourceRouted
}

// refuseOptions drops f, received on port in, for its IP options
// (badOptions), before the NAT sees it, so that it makes no session: a
// source-routed packet silently (source_routed), as the kernel drops it
// without accept_source_route; malformed options (bad_ip_options)
// answered, as the kernel answers them, with a parameter problem
// pointing at the faulty byte — from the arrival interface, or from the
// public address the packet was sent to (checked on the kernel's NAT:
// even a packet to a published server's port is answered from there).
func (w *Worker) refuseOptions(f Frame, in int, p *packet.Parsed) {
	problem, _ := p.IPv4(f.Buf).CheckOptions()
	if problem == 0 {
		w.c.drop[DropSourceRouted]++
		w.drop(f, dropNames[DropSourceRouted])
		return
	}
	w.c.drop[DropBadIPOptions]++
	w.tap(f, dropNames[DropBadIPOptions])
	why := icmpParamProblem
	if slices.Contains(w.engine.OwnAddrs(), p.Tuple.DstAddr) {
		why = icmpParamProblemHost
	}
	w.answer(f, in, p, why, uint32(problem)<<24)
}

// reset turns f, a TCP segment (not a RST) to a closed port of a public
// address received
// on port in, into the reset a host answers it with, from that address,
// and queues it on port in. No reset goes to a broadcast or to a source
// that is not one host (RFC 1812 §4.3.2.7's rules, counted as
// icmp_suppressed). Resets are not rate-limited, as the kernel's are not:
// one answers one segment, no larger.
func (w *Worker) reset(f Frame, in int, p *packet.Parsed) {
	if !mayAnswer(f.Buf, p) || w.directedBroadcast(p) {
		w.c.event[EventICMPSuppressed]++
		w.drops = append(w.drops, f)
		return
	}
	w.ipID++
	f.Buf = f.Buf[:packet.BuildTCPReset(f.Buf, p.L3, p.L4, p.End, w.ipID)]
	eth := packet.Ethernet(f.Buf)
	eth.SetDst(eth.Src())
	eth.SetSrc(w.macs[in])
	w.c.event[EventTCPReset]++
	w.enqueue(in, f)
}
