package nat

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/prefetch"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// create is the slow path: the first packet of a flow. In order it tries a
// pending ALG expectation, then the rules for the side the packet came
// from; it allocates what the translation needs, inserts the session with
// both keys and precomputed rewrites, and translates the packet.
func (e *Engine) create(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, r *Result) {
	c := e.n.rules.Load()
	t := p.Tuple
	if v := c.addressVerdict(t); v != Forward {
		r.Verdict = v
		return
	}
	class, ok := portClass(t.Proto)
	if !ok {
		e.createAddrOnly(frame, p, from, now, c, r)
		return
	}
	toPublic := c.isPublic(t.DstAddr) // to an address of the NAT's own
	if from == Inside && t.Proto != packet.ProtoICMP && toPublic &&
		e.n.bindings.mapsTo(bindKey{addr: t.SrcAddr, port: t.SrcPort, class: uint8(class)}, t.DstAddr, t.DstPort) {
		// To its own mapping: no session can hold the flow (see reflect).
		reflect(frame, p, r)
		return
	}
	// A SYN starts a TCP flow, and only a valid one: with FIN as well
	// (a scan's SYN+FIN) it is invalid, as conntrack's tcp_valid_flags
	// has it, and makes no session.
	if t.Proto == packet.ProtoTCP && p.TCPFlags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST|packet.FlagFIN) != packet.FlagSYN {
		r.Verdict = DropTCPNoSYN
		return
	}
	if t.Proto == packet.ProtoICMP && p.ICMPKind == packet.ICMPNone {
		r.Verdict = DropICMPUnsupported
		return
	}
	if t.Proto == packet.ProtoICMP && p.ICMPType == packet.ICMPEcho && toPublic {
		// The NAT's own public address answers ping, as a router does —
		// from inside too: an echo identifier names no inside host, so
		// there is nothing to hairpin it to (RFC 5508 §3.5 asks query
		// hairpinning of Basic NAT only).
		e.echoReply(frame, p, from, r)
		if p.Frag.More {
			e.rememberEcho(p, from, now)
		}
		return
	}
	if t.Proto == packet.ProtoICMP && p.ICMPKind != packet.ICMPQuery {
		// Replies without a session, and anything but queries, start nothing.
		r.Verdict = DropUnsolicited
		if from == Inside {
			r.Verdict = DropNoRule
		}
		return
	}
	if p.IPv4(frame).TTL() <= 1 {
		// RFC 1812 §5.3.1: a packet the NAT would forward with its TTL
		// run out is dropped, before anything is allocated for it, and
		// the pipeline answers time exceeded. Outside, only a server
		// rule forwards without a session; any other packet is for the
		// NAT's own address, which is not forwarding (and an
		// expectation it might match stays for a packet that can use
		// it). Inside, a packet to a public address is forwarded only
		// when a server or a mapping hairpins it; to anything else it
		// is for the NAT itself, which answers as a host (ClosedPort),
		// as the kernel's NAT answers traceroute to its public address
		// from inside.
		r.Verdict = DropTTLExpired
		_, server := c.servers[serverKey{addr: t.DstAddr, port: t.DstPort, proto: t.Proto}]
		switch {
		case from == Outside && !server:
			r.Verdict = DropUnsolicited
		case from == Inside && toPublic && !server:
			if _, mapped := e.n.public.lookup(bindKey{addr: t.DstAddr, port: t.DstPort, class: uint8(class)}); !mapped || t.Proto == packet.ProtoICMP {
				r.Verdict = DropUnsolicited
			}
		}
		return
	}
	// From here on a session is likely made: start loading the lines it
	// will wait for — the slot its insert will fill and, from inside,
	// where the source's binding would be — so that they arrive while
	// the checks and the rules run (see the package doc, Creation).
	e.madeBinding = false
	h0 := e.n.table.Hash(t)
	e.n.table.PrefetchInsert(h0)
	var bh uint64 // the source's binding's hash
	if from == Inside {
		bh = e.n.bindings.prefetch(bindKey{addr: t.SrcAddr, port: t.SrcPort, class: uint8(class)})
		e.prefetchClaim(c, t.SrcAddr, t.SrcPort, class)
	}
	if !l4ChecksumOK(frame, p) {
		// Checked once per session, on the slow path: a sender whose
		// checksums are wrong (transmit checksum offload on a veth or
		// virtio peer, see the package doc) would otherwise create
		// sessions whose every packet the receiver drops.
		r.Verdict = DropBadL4Checksum
		return
	}
	if e.n.table.Expecting() {
		if ex, ok := e.n.table.MatchExpectation(t, now); ok {
			e.createExpected(frame, p, from, now, c, class, ex, h0, r)
			return
		}
	}
	var s flowtable.Session
	s.Key[flowtable.Orig] = t
	s.MapEntry = -1
	x := t // the translated tuple
	var o origin
	if srv, ok := c.server(t.DstAddr, t.DstPort, t.Proto); ok {
		// nat server: DNAT. From inside it is hairpinning and needs source
		// NAT too, or the server would answer the client directly.
		x.DstAddr, x.DstPort = srv.addr, srv.port
		o = serverOrigin(srv, natlog.ViaRule)
		if from == Inside {
			o = serverOrigin(srv, natlog.ViaHairpin)
			if _, ok := e.snat(c, &s, &x, class, bh, r); !ok {
				return
			}
		}
	} else if from == Outside {
		r.Verdict = DropUnsolicited
		return
	} else if toPublic {
		// Hairpinning: to the inside endpoint the public endpoint is
		// mapped to, from the sender's own public mapping, and through
		// the target mapping's filtering as if the packet came from
		// outside from that public mapping (RFC 4787 REQ-9). Filtering
		// is address-and-port dependent: the target admits the sender's
		// public endpoint only once it has sent to it — and had it, its
		// session would hold this packet's tuple as its reply key and
		// the lookup would have found it. So the packet is refused; but
		// it was sent, and the sender's mapping now admits the target as
		// it would on its way out: the session is made, held (flagHeld),
		// its Orig direction refused until the target's first packet
		// (held). Hole punching works in the order ICE uses.
		//
		// An address-and-port-dependent session's port admits only the
		// endpoint the session talks to, and that session would have
		// matched too; and the target's answer would leave by a new port
		// of its own, not the one this packet reached, so no session can
		// hold the pair: the packet is refused and nothing made.
		in, ok := e.n.public.lookup(bindKey{addr: t.DstAddr, port: t.DstPort, class: uint8(class)})
		if !ok || t.Proto == packet.ProtoICMP {
			r.Verdict = DropUnsolicited
			return
		}
		if !e.n.bindings.mapsTo(in, t.DstAddr, t.DstPort) {
			r.Verdict = DropHairpinFiltered
			return
		}
		x.DstAddr, x.DstPort = in.addr, in.port
		rule, ok := e.snat(c, &s, &x, class, bh, r)
		if !ok {
			return
		}
		s.Flags |= flagHeld
		o = outboundOrigin(rule, natlog.ViaHairpin)
	} else {
		rule, ok := e.snat(c, &s, &x, class, bh, r)
		if !ok {
			return
		}
		o = outboundOrigin(rule, natlog.ViaRule)
	}
	// What insert waits for last: the reply key's index bucket.
	s.Key[flowtable.Reply] = x.Reverse()
	h1 := e.n.table.Hash(s.Key[flowtable.Reply])
	e.n.table.PrefetchKey(h1)
	if from == Inside {
		s.Flags |= flagOrigFromInside
	}
	if c.isInside(x.DstAddr) {
		s.Flags |= flagOrigToInside
	}
	if t.Proto != packet.ProtoICMP && c.portmap != nil {
		app, entry := c.portmap.Classify(t.Proto, t.DstAddr, t.DstPort, x.DstAddr, x.DstPort)
		s.App, s.MapEntry = uint8(app), int16(entry)
		if app == portmap.AppFTP && c.ftpALG && t.Proto == packet.ProtoTCP {
			s.Flags |= flagALG
		}
	}
	s.Rule, s.Ingress = o.label, e.ingress
	e.insert(frame, p, from, now, c, &s, h0, h1, o, r)
}

// origin is which rule makes a session: the label the session keeps
// (label.go) and, for its create event, the rule's kind, index and way as
// the rules that make it have them.
type origin struct {
	label uint16
	ref   RuleRef
}

func outboundOrigin(rule *outboundRule, v natlog.Via) origin {
	return origin{label: makeLabel(natlog.RuleOutbound, v, rule.id), ref: RuleRef{Kind: natlog.RuleOutbound, Via: v, Index: rule.index}}
}

func serverOrigin(srv serverDest, v natlog.Via) origin {
	return origin{label: makeLabel(natlog.RuleServer, v, srv.id), ref: RuleRef{Kind: natlog.RuleServer, Via: v, Index: uint16(srv.rule)}}
}

// algOrigin is the origin of an ALG's data connection announced inside a
// control session that parent, its label, made.
func (n *NAT) algOrigin(parent uint16) origin {
	kind, _, id := splitLabel(parent)
	label := makeLabel(kind, natlog.ViaALG, id)
	return origin{label: label, ref: n.Rule(label)}
}

// snat chooses the public source endpoint for an inside source: through the
// outbound rule whose prefixes hold it, with an endpoint-independent
// binding or a port of its own (bh is the hash of x's source's binding
// key, bindings.prefetch's). It returns the rule.
func (e *Engine) snat(c *compiled, s *flowtable.Session, x *packet.Tuple, class int, bh uint64, r *Result) (*outboundRule, bool) {
	rule := c.outboundFor(x.SrcAddr)
	if rule == nil {
		r.Verdict = DropNoRule
		return nil, false
	}
	var (
		addr uint32
		port uint16
		made bool
		v    Verdict
	)
	if rule.eim {
		k := bindKey{addr: x.SrcAddr, port: x.SrcPort, class: uint8(class)}
		addr, port, made, v = e.n.bindings.acquire(k, bh, func() (binding, Verdict) {
			a, p, v := e.claim(c, rule, class, x.SrcAddr, x.SrcPort)
			if v != Forward {
				return binding{}, v
			}
			if e.log.on() {
				proto := protoOfClass(class)
				e.log.emit(&natlog.Event{Type: natlog.BindingCreate, Time: e.wall, RuleKind: natlog.RuleOutbound, Rule: rule.index,
					Inside:  packet.Tuple{SrcAddr: x.SrcAddr, SrcPort: x.SrcPort, Proto: proto},
					Outside: packet.Tuple{SrcAddr: a, SrcPort: p, Proto: proto}})
			}
			return binding{pubAddr: a, pubPort: p, since: e.wall, rule: makeLabel(natlog.RuleOutbound, natlog.ViaRule, rule.id)}, Forward
		})
		s.Flags |= flagBinding
	} else {
		addr, port, v = e.claim(c, rule, class, x.SrcAddr, x.SrcPort)
		s.Flags |= flagOwnSrcPort
	}
	if v != Forward {
		r.Verdict = v
		return nil, false
	}
	x.SrcAddr, x.SrcPort = addr, port
	if class == classICMP {
		// An ICMP query's identifier stands in both port fields.
		x.DstPort = port
	}
	// What insert waits for next: the new public endpoint's entry in the
	// public map (a new binding's or the session's own port; insert adds
	// it).
	if made || !rule.eim {
		e.n.public.prefetch(bindKey{addr: addr, port: port, class: uint8(class)})
	}
	e.madeBinding = made
	return rule, true
}

// claim claims the public endpoint of inside endpoint (src, sport) under
// rule: a port of the host's port blocks, of its deterministic range, or
// of the rule's pool (allocate). A refusal is recorded as an event
// (throttled: it repeats for every refused packet) and returned as the
// verdict.
func (e *Engine) claim(c *compiled, rule *outboundRule, class int, src uint32, sport uint16) (uint32, uint16, Verdict) {
	switch {
	case rule.blocks != nil:
		a, p, res := rule.blocks.allocate(class, src, sport, e.rng.Uint32(), func(a uint32, p uint16) bool { return c.reserved(a, class, p) },
			rule.limit, rule.index, 0, &e.log, e.wall)
		switch res {
		case blockOK:
			return a, p, Forward
		case blockQuotaExceeded:
			return 0, 0, DropQuotaExceeded
		}
		return 0, 0, DropPortsExhausted
	case rule.det != nil:
		a, first, last, _ := rule.det.Forward(src)
		if p, ok := e.n.claimIn(c, a, class, first, last, sport, e.rng.Uint32()); ok {
			return a, p, Forward
		}
		e.log.quotaExceeded(rule, src, rule.det.PortsPerHost(), e.wall)
		return 0, 0, DropQuotaExceeded
	}
	a, p, ok := e.allocate(c, rule, class, src, sport)
	if !ok {
		e.log.emitLimited(&natlog.Event{Type: natlog.PortsExhausted, Time: e.wall, RuleKind: natlog.RuleOutbound, Rule: rule.index,
			Inside: packet.Tuple{Proto: protoOfClass(class)}, Outside: packet.Tuple{SrcAddr: a}},
			natlog.ThrottleKey(natlog.PortsExhausted, a, uint16(class)))
		return 0, 0, DropPortsExhausted
	}
	return a, p, Forward
}

// allocate claims a public endpoint for inside endpoint (src, sport): the
// pool address is chosen by the inside address so that one host always
// appears as the same public address ("paired" pooling, RFC 4787 REQ-2);
// the port is preserved when it is in range and free, otherwise a random
// free port is taken, searching this worker's partition of the range first
// (RFC 6056 randomization, no shared lock). On failure the address is
// still the one whose ports ran out.
func (e *Engine) allocate(c *compiled, rule *outboundRule, class int, src uint32, sport uint16) (uint32, uint16, bool) {
	i := rule.pairedIndex(src)
	addr := rule.pool[i]
	spaces := rule.spaces[i].Load()
	if spaces == nil {
		spaces = e.n.pools.of(addr)
		rule.spaces[i].Store(spaces)
	}
	space := &spaces[class]
	lo, hi := rule.lo, rule.hi
	// The random start is drawn first, so that the word it falls in
	// loads while the preserved port is tried (two misses in one; both
	// were prefetched by prefetchClaim already, for a creation from
	// inside).
	start := e.randomStart(rule, true)
	prefetch.Line(&space.bits[start>>6])
	if sport >= lo && sport <= hi && !c.reserved(addr, class, sport) && space.claim(sport) {
		return addr, sport, true
	}
	port, ok := claimFree(c, space, addr, class, lo, hi, uint16(start))
	return addr, port, ok
}

// pairedIndex is the position in rule's pool of the address inside host
// src always appears as ("paired" pooling, RFC 4787 REQ-2).
func (r *outboundRule) pairedIndex(src uint32) int {
	return int(mix32(src) % uint32(len(r.pool)))
}

// prefetchClaim starts loading, as a creation from inside begins, what
// a claim from the pool of src's outbound rule (allocate) would wait
// for: the port bitmap's words and the public map's slots of both ports
// it may take — sport, preserved, and the random start, drawn now and
// kept for allocate (randomStart). Before, they loaded only once the
// binding's slot had arrived (the claim runs under its lock), one miss
// after another; now all of them overlap with it. A guess it makes that
// is wrong (the binding exists, sport is taken and the random port is
// past a taken start) costs only the lines loaded for nothing; the
// rule's other modes (blocks, deterministic) are not guessed at.
func (e *Engine) prefetchClaim(c *compiled, src uint32, sport uint16, class int) {
	rule := c.outboundFor(src)
	if rule == nil || rule.blocks != nil || rule.det != nil || len(rule.pool) == 0 {
		return
	}
	i := rule.pairedIndex(src)
	spaces := rule.spaces[i].Load()
	if spaces == nil {
		return
	}
	addr, space := rule.pool[i], &spaces[class]
	start := uint16(e.randomStart(rule, false))
	prefetch.Line(&space.bits[start>>6])
	e.n.public.prefetch(bindKey{addr: addr, port: start, class: uint8(class)})
	if sport >= rule.lo && sport <= rule.hi {
		prefetch.Line(&space.bits[sport>>6])
		e.n.public.prefetch(bindKey{addr: addr, port: sport, class: uint8(class)})
	}
}

// randomStart is where allocate's search for a free port of rule starts
// when the preserved port is not to be had: a uniform draw from this
// worker's partition of the rule's range (RFC 6056). A draw is made
// once and kept until an allocation takes it (take), so that
// prefetchClaim can draw it before the claim, which may not come (the
// binding exists): every start taken is a draw of its own.
func (e *Engine) randomStart(rule *outboundRule, take bool) uint32 {
	n := uint32(rule.hi) - uint32(rule.lo) + 1
	part := n / uint32(e.n.workers)
	start := uint32(rule.lo) + uint32(e.worker)*part
	if part == 0 {
		return start
	}
	if e.sparePart != part {
		e.spare, e.sparePart = e.rng.Uint32N(part), part
	}
	start += e.spare
	if take {
		e.sparePart = 0
	}
	return start
}

// claimFree claims a free port of class on addr in lo..hi, searching from
// start with wrap-around. A port a nat server owns is left claimed (so
// that it is never handed out) and the search goes on past it.
func claimFree(c *compiled, space *portSpace, addr uint32, class int, lo, hi, start uint16) (uint16, bool) {
	for range uint32(hi) - uint32(lo) + 1 {
		port, ok := space.claimRange(lo, hi, start)
		if !ok {
			return 0, false
		}
		if !c.reserved(addr, class, port) {
			return port, true
		}
		start = port + 1
		if port == hi {
			start = lo
		}
	}
	return 0, false
}

// claimIn claims a port of class on addr in first..last: want when it
// lies there and is free, else a free one from an offset r draws.
func (n *NAT) claimIn(c *compiled, addr uint32, class int, first, last, want uint16, r uint32) (uint16, bool) {
	space := n.pools.space(addr, class)
	if want >= first && want <= last && !c.reserved(addr, class, want) && space.claim(want) {
		return want, true
	}
	return claimFree(c, space, addr, class, first, last, first+uint16(r%(uint32(last-first)+1)))
}

// reserved reports whether a nat server rule owns the public port.
func (c *compiled) reserved(addr uint32, class int, port uint16) bool {
	var proto uint8
	switch class {
	case classTCP:
		proto = packet.ProtoTCP
	case classUDP:
		proto = packet.ProtoUDP
	default:
		return false
	}
	_, ok := c.server(addr, port, proto)
	return ok
}

// server returns the nat server rule's destination for public endpoint
// (addr, port) of proto. Most configurations have none: that case costs
// no map lookup.
func (c *compiled) server(addr uint32, port uint16, proto uint8) (serverDest, bool) {
	if len(c.servers) == 0 {
		return serverDest{}, false
	}
	srv, ok := c.servers[serverKey{addr: addr, port: port, proto: proto}]
	return srv, ok
}

func mix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

// createExpected creates the data session an ALG expectation announced.
func (e *Engine) createExpected(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, c *compiled, class int, ex flowtable.Expectation, h0 uint64, r *Result) {
	t := p.Tuple
	var s flowtable.Session
	s.Key[flowtable.Orig] = t
	reply := ex.Xlate
	reply.DstPort = t.SrcPort
	s.Key[flowtable.Reply] = reply
	s.Parent, s.ParentGen = ex.Parent, ex.ParentGen
	s.App = ex.App
	s.MapEntry = -1
	// The data connection was negotiated while the control session lived;
	// if it has ended since, the session is made all the same, unlabelled.
	o := e.n.algOrigin(0)
	var ps flowtable.Session
	if e.n.table.Read(ex.Parent, ex.ParentGen, &ps) {
		s.MapEntry = ps.MapEntry
		o = e.n.algOrigin(ps.Rule)
	}
	s.Rule, s.Ingress = o.label, e.ingress
	if f := e.n.onExpectUsed.Load(); f != nil {
		(*f)(ex.Parent, ex.ParentGen, s.MapEntry)
	}
	if from == Inside {
		s.Flags |= flagOrigFromInside
	}
	if c.isInside(reply.SrcAddr) {
		s.Flags |= flagOrigToInside
	}
	if _, ok := e.n.pending.take(pendingKey{addr: t.DstAddr, port: t.DstPort, class: uint8(class)}); ok {
		s.Flags |= flagOwnDstPort
	}
	if reply.DstAddr != t.SrcAddr {
		// The connecting side is translated too: see dataSourcePort.
		pub, own, ok := e.n.dataSourcePort(c, reply.DstAddr, t.SrcAddr, class, t.SrcPort, e.rng, &e.log, e.wall)
		if !ok {
			e.n.releasePorts(&s, &e.log, e.wall)
			r.Verdict = DropPortsExhausted
			return
		}
		s.Key[flowtable.Reply].DstPort = pub
		if own {
			s.Flags |= flagOwnSrcPort
		}
	}
	e.insert(frame, p, from, now, c, &s, h0, e.n.table.Hash(s.Key[flowtable.Reply]), o, r)
}

// insert publishes a new session, whose keys hash (flowtable.Table.Hash)
// to h0 and h1, records its create event and translates its first packet.
// On failure it gives back what the session had claimed.
func (e *Engine) insert(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, c *compiled, s *flowtable.Session, h0, h1 uint64, o origin, r *Result) {
	// The Orig direction's deltas: the table keeps those and derives the
	// Reply direction's, their negation (see deltas).
	l3, l4 := deltas(&s.Key, flowtable.Orig)
	s.L3Delta[flowtable.Orig], s.L4Delta[flowtable.Orig] = uint32(l3), uint32(l4)
	state, timeout := tcpNone, c.timeouts[toUDP]
	switch s.Key[flowtable.Orig].Proto {
	case packet.ProtoTCP:
		state, timeout = tcpSynSent, c.timeouts[toTCPSyn]
	case packet.ProtoICMP:
		timeout = c.timeouts[toICMP]
	case packet.ProtoUDP:
	default:
		timeout = c.timeouts[toOther]
	}
	class, _ := portClass(s.Key[flowtable.Orig].Proto)
	if e.madeBinding || s.Flags&flagOwnSrcPort != 0 {
		// The new binding's or the session's own public endpoint is a
		// mapping others may hairpin to while it lives: recorded before
		// the session is published, so that releasePorts, on any path
		// from here, finds it to remove.
		e.madeBinding = false
		if !e.n.public.add(ownMapping(s, class)) {
			e.n.releasePorts(s, &e.log, e.wall)
			r.Verdict = DropTableFull
			return
		}
	}
	id, gen, res := e.n.table.InsertHashed(s, h0, h1, state, timeout, now)
	if res == flowtable.ErrExists && e.reclaim(s) {
		id, gen, res = e.n.table.InsertHashed(s, h0, h1, state, timeout, now)
	}
	if res != flowtable.Inserted {
		e.n.releasePorts(s, &e.log, e.wall)
		if res == flowtable.ErrExists {
			// Another worker created the same flow a moment ago.
			if id, dir, gen, ok := e.n.table.LookupGen(p.Tuple); ok && e.forward(frame, p, from, now, id, gen, dir, r) {
				return
			}
			r.Verdict = DropRace
			return
		}
		r.Verdict = DropTableFull
		return
	}
	if e.log.on() {
		in, out := natlog.SessionTuples(s.Key[flowtable.Orig], s.Key[flowtable.Reply], from == Inside)
		e.log.emit(&natlog.Event{Type: natlog.SessionCreate, Time: e.wall, Inside: in, Outside: out,
			RuleKind: o.ref.Kind, Via: o.ref.Via, Rule: o.ref.Index, App: s.App, Inbound: from == Outside})
	}
	if !e.forward(frame, p, from, now, id, gen, flowtable.Orig, r) {
		// Expired and reused before its first packet left: only a clock
		// far ahead of the session's timeout does that.
		r.Verdict = DropRace
	}
}

// reclaim ends the TCP sessions that hold a key of new session s and are
// over — reset, or closed by FINs both ways — and reports whether it
// ended any: a SYN reopens a closed tuple (tcpStep), and this is the same
// for a tuple the new session repeats on its other side only. An active
// FTP data connection is the case: the client listens again on the data
// port of one that has just closed, whose session lingers for the
// transitory timeout holding its public port; the new expectation's
// public port differs, but its inside tuple (client and server port 20)
// is the closed one's. Conntrack lets such a SYN replace a connection in
// TIME_WAIT or CLOSE likewise. A session not over is left alone, and the
// insert fails as it did.
func (e *Engine) reclaim(s *flowtable.Session) bool {
	if s.Key[flowtable.Orig].Proto != packet.ProtoTCP {
		return false
	}
	ended := false
	for d := flowtable.Orig; d <= flowtable.Reply; d++ {
		id, dir, gen, ok := e.n.table.LookupGen(s.Key[d])
		if !ok {
			continue
		}
		if _, st, _, ok := e.n.table.HotTCP(id, gen, dir); !ok || !tcpOver(st) {
			return false
		}
		ended = e.n.table.End(id, gen, e.onExpire) || ended
	}
	return ended
}

// l4ChecksumOK verifies the TCP or UDP checksum of an unfragmented packet
// (RFC 9293 §3.1, RFC 768): the sum over the pseudo-header and the
// segment, checksum included, is all ones. A UDP checksum of 0 means none
// was computed; a first fragment's checksum covers data not here, and
// other protocols are not checked.
func l4ChecksumOK(frame []byte, p *packet.Parsed) bool {
	if p.Frag.More {
		return true
	}
	seg := frame[p.L4:p.End]
	switch p.Tuple.Proto {
	case packet.ProtoTCP:
	case packet.ProtoUDP:
		u := packet.UDP(seg)
		if u.Checksum() == 0 {
			return true
		}
		seg = seg[:u.Length()]
	default:
		return true
	}
	s := packet.PseudoHeaderSum(p.Tuple.SrcAddr, p.Tuple.DstAddr, p.Tuple.Proto, uint16(len(seg)))
	return packet.Fold(packet.Sum(seg, s)) == 0xffff
}

// AddrOnly reports whether proto is translated by address alone, as
// conntrack's generic tracker does: a protocol without ports fastnat
// parses. AH is not: its integrity check covers the IP addresses (RFC
// 4302 §3.3.3.1), so no translated packet survives it; nor are SCTP,
// DCCP and UDP-Lite, whose ports Parse reads (and whose checksums
// DCCP's and UDP-Lite's pseudo-header covers) and which fastnat does
// not track.
func AddrOnly(proto uint8) bool {
	switch proto {
	case packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP, packet.ProtoAH,
		packet.ProtoSCTP, packet.ProtoDCCP, packet.ProtoUDPLite:
		return false
	}
	return true
}

// createAddrOnly makes an address-only session for the first packet of
// a protocol without ports (GRE, ESP, ...) from inside: both keys have
// ports 0 and only the source address is translated, to the public
// address the host's other sessions get (paired pooling). The reply key
// — remote to public address — must be unique, so a second host sending
// the same protocol to the same remote takes the rule's next pool
// address, and when every address is taken the packet is dropped as
// ports_exhausted, as the kernel's NAT does. Nothing from outside starts
// one.
func (e *Engine) createAddrOnly(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, c *compiled, r *Result) {
	t := p.Tuple
	if !AddrOnly(t.Proto) {
		r.Verdict = DropProtocol
		return
	}
	if from == Outside || c.isPublic(t.DstAddr) {
		// Nothing publishes such a protocol (nat.server is TCP and UDP),
		// so nothing from outside, or hairpinned to a public address,
		// has an inside host to reach.
		r.Verdict = DropUnsolicited
		return
	}
	if p.IPv4(frame).TTL() <= 1 {
		r.Verdict = DropTTLExpired
		return
	}
	rule := c.outboundFor(t.SrcAddr)
	if rule == nil || len(rule.pool) == 0 {
		r.Verdict = DropNoRule
		return
	}
	first := rule.pairedIndex(t.SrcAddr)
	if rule.det != nil {
		a, _, _, _ := rule.det.Forward(t.SrcAddr)
		for i, pa := range rule.pool {
			if pa == a {
				first = i
			}
		}
	}
	var s flowtable.Session
	s.Key[flowtable.Orig] = t
	s.MapEntry = -1
	s.Flags |= flagOrigFromInside
	if c.isInside(t.DstAddr) {
		s.Flags |= flagOrigToInside
	}
	o := outboundOrigin(rule, natlog.ViaRule)
	s.Rule, s.Ingress = o.label, e.ingress
	for k := range rule.pool {
		x := t
		x.SrcAddr = rule.pool[(first+k)%len(rule.pool)]
		if _, _, _, taken := e.n.table.LookupGen(x.Reverse()); taken {
			continue
		}
		s.Key[flowtable.Reply] = x.Reverse()
		e.madeBinding = false
		e.insert(frame, p, from, now, c, &s, e.n.table.Hash(t), e.n.table.Hash(s.Key[flowtable.Reply]), o, r)
		return
	}
	e.log.emitLimited(&natlog.Event{Type: natlog.PortsExhausted, Time: e.wall, RuleKind: natlog.RuleOutbound, Rule: rule.index,
		Inside: packet.Tuple{Proto: t.Proto}, Outside: packet.Tuple{SrcAddr: rule.pool[first]}},
		natlog.ThrottleKey(natlog.PortsExhausted, rule.pool[first], uint16(t.Proto)<<8))
	r.Verdict = DropPortsExhausted
}

// addressVerdict is what a new flow's addresses alone decide, before any
// rule: DropMartian for an address no host has at either end (martian) or
// a source of the router's own — the kernel's ip_route_input finds a
// local source a martian, on any interface — and DropBroadcast
// for a destination that is a directed broadcast, which the kernel
// delivers to itself and never forwards (bc_forwarding 0). Forward lets
// the flow go on. Slow path only.
func (c *compiled) addressVerdict(t packet.Tuple) Verdict {
	switch {
	case martian(t.SrcAddr) || martian(t.DstAddr) || c.isOwn(t.SrcAddr):
		return DropMartian
	case c.isDirectedBroadcast(t.DstAddr):
		return DropBroadcast
	}
	return Forward
}

// martian reports whether a is an address that no flow through a router
// may have at either end, as the kernel's ip_route_input finds it a
// martian source or destination, or a multicast or limited broadcast
// destination it never forwards (without multicast routing): 0/8, 127/8,
// 224/4 and 255.255.255.255. Inside hosts' mDNS, SSDP, LLMNR and
// broadcasts stay on their link instead of being translated out.
func martian(a uint32) bool {
	switch a >> 24 {
	case 0, 127:
		return true
	}
	return a>>28 == 0xe || a == 0xffffffff
}
