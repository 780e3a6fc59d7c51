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
}

// Explain works out what the NAT does with the first packet of a new
// connection t (a TCP SYN, a UDP datagram, an ICMP query) arriving on side
// from — the rule that translates it and the translated tuple, the
// application its ports classify it as, whether the FTP ALG inspects it —
// by the same steps as session creation, without touching anything: no
// port is claimed and no session made. What only a running NAT knows is
// left out: expectations an ALG has announced (which match first), the
// ports in use and the bindings. infer makes it choose the side itself:
// inside when the source is in one of the inside networks (the outbound
// rules' prefixes, the servers' inside addresses, Rules.InsideNets).
func Explain(r Rules, t packet.Tuple, from Side, infer bool) (Decision, error) {
	c, err := compile(r)
	if err != nil {
		return Decision{}, err
	}
	return c.explain(t, from, infer), nil
}

// Explain is the package function Explain with the NAT's running rules.
func (n *NAT) Explain(t packet.Tuple, from Side, infer bool) Decision {
	return n.rules.Load().explain(t, from, infer)
}

func (c *compiled) explain(t packet.Tuple, from Side, infer bool) Decision {
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
		case d.From == Outside:
			d.Verdict = DropUnsolicited
		case c.explainSNAT(&d, -1):
			d.Translated.SrcPort, d.Translated.DstPort = 0, 0
			d.ToInside = c.isInside(t.DstAddr)
		}
		return d
	}
	x := &d.Translated
	if srv, ok := c.servers[serverKey{addr: t.DstAddr, port: t.DstPort, proto: t.Proto}]; ok {
		d.Server = srv.rule
		x.DstAddr, x.DstPort = srv.addr, srv.port
		if d.From == Inside && !c.explainSNAT(&d, class) {
			return d
		}
	} else if d.From == Outside {
		d.Verdict = DropUnsolicited
		return d
	} else if !c.explainSNAT(&d, class) {
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
