package nat

import (
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// Decision is what the NAT does with the first packet of a new connection,
// as Explain works it out from the rules alone.
type Decision struct {
	// Verdict is Forward, or why the packet would be dropped.
	Verdict Verdict
	// From is the side the packet arrives on; Inferred reports that
	// Explain chose it (inside when the source is in an inside network).
	From     Side
	Inferred bool
	// Server and Outbound are the indexes of the nat.server rule that
	// translates the destination and of the nat.outbound rule that
	// translates the source; -1 for none.
	Server, Outbound int
	// Translated is the packet's tuple after translation. A source the
	// outbound rule translates keeps its port when that port is in the
	// rule's range and free when the connection starts; otherwise the
	// port comes from PortLo-PortHi (only a running NAT knows which), and
	// an endpoint-independent binding the source already has keeps the
	// public port it was given (RFC 4787 REQ-1).
	Translated     packet.Tuple
	PortLo, PortHi uint16
	// EndpointIndependent is the outbound rule's mapping behaviour.
	EndpointIndependent bool
	// ToInside: the translated destination is reached by an inside
	// interface.
	ToInside bool
	// App is the application the connection is classified as, Entry the
	// port-mapping entry that did it (-1: a built-in default, or none when
	// App is portmap.AppOther), and OnTranslated whether it matched on the
	// destination after translation rather than as it arrived.
	App          portmap.App
	Entry        int
	OnTranslated bool
	// ALG reports that the connection's packets go to the FTP ALG.
	ALG bool
	// Response is what the NAT sends back instead of forwarding: with
	// Verdict Forward, an echo reply (Translated is then the reply's
	// addresses); with a drop, a reset, port unreachable or time
	// exceeded, or nothing.
	Response Response
}

// Response is what the NAT sends back itself for a first packet it does not
// forward: it answers as a host for its public addresses and as a router
// for a packet whose TTL runs out there. The pipeline sends it (ICMP
// errors within the ICMP rate limit, resets always).
type Response uint8

// Responses. Keep responseNames in the same order.
const (
	NoResponse             Response = iota // nothing is sent back
	RespondEchoReply                       // a public address answers ping
	RespondTCPReset                        // a TCP segment (a SYN here) to a closed port of a public address (ClosedPort)
	RespondPortUnreachable                 // UDP to a closed port of a public address (ClosedPort)
	RespondTimeExceeded                    // the TTL would run out forwarding it (RFC 1812 §5.3.1)
	numResponses
)

var responseNames = [numResponses]string{"", "icmp_echo_reply", "tcp_reset", "icmp_port_unreachable", "icmp_time_exceeded"}

// String is the answer's name: for an error or a reset, the name of the
// pipeline event that counts it; "" for NoResponse.
func (a Response) String() string {
	if a < numResponses {
		return responseNames[a]
	}
	return "unknown"
}

// Explain works out what the NAT does with the first packet of a new
// connection t (a TCP SYN, a UDP datagram, an ICMP echo request)
// arriving on side from with TTL ttl — the rule that translates it and
// the translated tuple, the application its ports classify it as,
// whether the FTP ALG inspects it, or why it is dropped and what the NAT
// answers instead (Decision.Response) — by the same steps, in the same
// order, as session creation and the pipeline, without touching
// anything: no port is claimed and no session made. What only a running
// NAT knows is left out: expectations an ALG has announced (which match
// first), the ports in use and the bindings (a public port that a binding
// holds is not closed: what reaches it is hairpinned, or dropped
// silently, never answered). infer makes it choose the side itself:
// inside when the source is in one of the inside networks (the outbound
// rules' prefixes, the servers' inside addresses, Rules.InsideNets).
func Explain(r Rules, t packet.Tuple, ttl uint8, from Side, infer bool) (Decision, error) {
	c, err := compile(r)
	if err != nil {
		return Decision{}, err
	}
	return c.explain(t, ttl, from, infer), nil
}

// Explain is the package function Explain with the NAT's running rules.
func (n *NAT) Explain(t packet.Tuple, ttl uint8, from Side, infer bool) Decision {
	return n.rules.Load().explain(t, ttl, from, infer)
}

func (c *compiled) explain(t packet.Tuple, ttl uint8, from Side, infer bool) Decision {
	d := Decision{From: from, Inferred: infer, Server: -1, Outbound: -1, Entry: -1, Translated: t}
	if infer {
		d.From = Outside
		if c.isInside(t.SrcAddr) {
			d.From = Inside
		}
	}
	if d.Verdict = c.addressVerdict(t); d.Verdict != Forward {
		return d
	}
	class, ok := portClass(t.Proto)
	if !ok {
		// An address-only session (createAddrOnly): outbound only, the
		// source address translated, no ports.
		switch {
		case !AddrOnly(t.Proto):
			d.Verdict = DropProtocol
		case d.From == Outside || c.isPublic(t.DstAddr):
			d.Verdict = DropUnsolicited
		case ttl <= 1:
			d.Verdict, d.Response = DropTTLExpired, RespondTimeExceeded
		case c.explainSNAT(&d, -1):
			d.Translated.SrcPort, d.Translated.DstPort = 0, 0
			d.ToInside = c.isInside(t.DstAddr)
		}
		return d
	}
	toPublic := c.isPublic(t.DstAddr)
	srv, server := c.servers[serverKey{addr: t.DstAddr, port: t.DstPort, proto: t.Proto}]
	switch {
	case t.Proto == packet.ProtoICMP && toPublic:
		// echoReply, whatever the TTL: the public address is the
		// packet's destination, not a hop.
		d.Response = RespondEchoReply
		x := &d.Translated
		x.SrcAddr, x.DstAddr = t.DstAddr, t.SrcAddr
		return d
	case ttl <= 1:
		// create's TTL check: only what would be forwarded expires; the
		// rest is for the NAT's own address (ClosedPort answers it).
		d.Verdict, d.Response = DropTTLExpired, RespondTimeExceeded
		if !server && (d.From == Outside || toPublic) {
			d.Verdict, d.Response = DropUnsolicited, c.closedPort(t)
		}
		return d
	}
	x := &d.Translated
	switch {
	case server:
		d.Server = srv.rule
		x.DstAddr, x.DstPort = srv.addr, srv.port
		if d.From == Inside && !c.explainSNAT(&d, class) {
			return d
		}
	case d.From == Outside || toPublic:
		// From inside to a public endpoint no server publishes: a hairpin
		// to a binding a running NAT may hold, or, without one, a closed
		// port of the NAT's own.
		d.Verdict, d.Response = DropUnsolicited, c.closedPort(t)
		return d
	case !c.explainSNAT(&d, class):
		return d
	}
	d.ToInside = c.isInside(x.DstAddr)
	if t.Proto != packet.ProtoICMP && c.portmap != nil {
		d.App, d.Entry, d.OnTranslated = c.portmap.ClassifyTranslated(t.Proto, t.DstAddr, t.DstPort, x.DstAddr, x.DstPort)
		app := d.App
		d.ALG = app == portmap.AppFTP && c.ftpALG && t.Proto == packet.ProtoTCP
	}
	return d
}

// explainSNAT is snat without allocating: the outbound rule, its paired
// pool address, the port range.
func (c *compiled) explainSNAT(d *Decision, class int) bool {
	x := &d.Translated
	for i := range c.outbound {
		rule := &c.outbound[i]
		for _, p := range rule.inside {
			if !p.contains(x.SrcAddr) {
				continue
			}
			d.Outbound, d.PortLo, d.PortHi, d.EndpointIndependent = i, rule.lo, rule.hi, rule.eim
			x.SrcAddr = rule.pool[rule.pairedIndex(x.SrcAddr)]
			if x.SrcPort < rule.lo || x.SrcPort > rule.hi || c.reserved(x.SrcAddr, class, x.SrcPort) {
				x.SrcPort = 0 // from the range; which one, only the running NAT knows
			}
			if class == classICMP {
				x.DstPort = x.SrcPort
			}
			return true
		}
	}
	d.Verdict = DropNoRule
	return false
}
