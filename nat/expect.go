package nat

import (
	"math/rand/v2"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// ExpectData makes a data endpoint announced inside an ALG-inspected
// control connection reachable through the NAT, and returns the endpoint
// the receiver of the announcement must be told.
//
// The announcement (addr:port) travels in direction dir of control session
// (parent, gen), the id and generation of the packet's Result; its sender is the announcer A, its receiver R, who will connect
// to the endpoint. In the session's keys A's real address is
// Key[dir].SrcAddr, the address R knows A by is Key[1-dir].DstAddr, R's
// real address is Key[1-dir].SrcAddr and the address A knows R by is
// Key[dir].DstAddr. Two cases:
//
//   - A announces its own address and A is translated (server inside
//     answering PASV/EPSV; client inside sending PORT/EPRT): a public port
//     on A's public address is claimed (the announced port if free), R is
//     told that public endpoint, and the expectation translates R's
//     connection to it back to addr:port.
//   - Otherwise (A is not translated, e.g. a client outside sending PORT to
//     a server inside, or a third party the ALG allowed): R is told
//     addr:port unchanged and the expectation translates R's connection
//     only on R's side (a server inside connecting out appears from its
//     public address).
//
// The expectation admits one connection from R's real address, is labelled
// ftp-data, is linked to the control session and expires after the
// configured expectation timeout. ok is false when no public port or
// expectation slot is free, or when the control session has ended.
//
// A public port on an address of a port-block or deterministic rule comes
// from A's own blocks or range there (claimFor), so that the block and
// range logs, and `fastnat lookup`, still name the host behind every
// port. ExpectData runs on one goroutine at a time (the ALG's): its
// events share one ring.
func (n *NAT) ExpectData(parent, gen uint32, dir flowtable.Dir, addr uint32, port uint16, now flowtable.Time) (uint32, uint16, bool) {
	n.algLog.mu.Lock()
	defer n.algLog.mu.Unlock()
	log, wall := &n.algLog.log, time.Now().UnixMilli()
	c := n.rules.Load()
	var s flowtable.Session
	if !n.table.Read(parent, gen, &s) {
		return 0, 0, false
	}
	k := s.Key
	aReal, aSeen := k[dir].SrcAddr, k[1-dir].DstAddr
	rReal, rSeenByA := k[1-dir].SrcAddr, k[dir].DstAddr
	proto := k[dir].Proto
	class, _ := portClass(proto)
	ex := flowtable.Expectation{
		Proto:   proto,
		SrcAddr: rReal,
		DstAddr: addr,
		DstPort: port,
		// Key[Reply] of the data session; DstPort 0 = R's source port,
		// known when the connection arrives.
		Xlate:     packet.Tuple{SrcAddr: addr, DstAddr: rSeenByA, SrcPort: port, Proto: proto},
		Parent:    parent,
		ParentGen: gen,
		App:       uint8(portmap.AppFTPData),
		Expires:   now + flowtable.Time(c.expectTTL),
	}
	if addr == aReal && aReal != aSeen {
		pub, ok := n.claimFor(c, aSeen, aReal, class, port, nil, log, wall)
		if !ok {
			return 0, 0, false
		}
		ex.DstAddr, ex.DstPort = aSeen, pub
		if n.table.Expect(ex) != flowtable.Inserted {
			n.releasePort(aSeen, pub, class, aReal, log, wall)
			return 0, 0, false
		}
		n.pending.add(pendingKey{addr: aSeen, port: pub, class: uint8(class)}, parent, gen, aReal, ex.Expires)
		return aSeen, pub, n.parentStillLives(parent, gen, log, wall)
	}
	if n.table.Expect(ex) != flowtable.Inserted {
		return 0, 0, false
	}
	return addr, port, n.parentStillLives(parent, gen, log, wall)
}

// parentStillLives reports whether the control session is still live
// after ExpectData stored what it made for it. If the session ended
// meanwhile, its release may have run before the store, so the
// expectation and its port are released here (both releases are
// idempotent: what one of them took, the other no longer finds).
func (n *NAT) parentStillLives(parent, gen uint32, log *eventLog, wall int64) bool {
	if n.table.Valid(parent, gen) {
		return true
	}
	n.table.RemoveExpectations(parent, gen)
	n.pending.releaseParent(parent, gen, n, log, wall)
	return false
}

// claimFor claims a public port of class on addr for a connection an ALG
// announced, which inside host's public endpoint stands for: want when
// possible. On the address of a port-block rule the port comes from the
// host's blocks there (a block of its own if it has none yet); on the
// address of a deterministic rule from the host's range when addr is the
// host's public address, else — a host the rule does not map, such as a
// nat server's — from the ports outside the rule's range, which no host
// owns; on any other address from 1024-65535 (claimPort).
func (n *NAT) claimFor(c *compiled, addr, host uint32, class int, want uint16, rng *rand.Rand, log *eventLog, wall int64) (uint16, bool) {
	rule := c.owner[addr]
	if rule == nil {
		return n.claimPort(c, addr, class, want, rng)
	}
	var r uint32
	if rng != nil {
		r = rng.Uint32()
	} else {
		r = rand.Uint32()
	}
	if rule.blocks != nil {
		_, p, res := rule.blocks.allocate(class, host, want, r, func(a uint32, p uint16) bool { return c.reserved(a, class, p) },
			rule.limit, rule.index, addr, log, wall)
		return p, res == blockOK
	}
	if pub, first, last, ok := rule.det.Forward(host); ok {
		if pub != addr {
			return 0, false
		}
		p, ok := n.claimIn(c, addr, class, first, last, want, r)
		if !ok {
			log.quotaExceeded(rule, host, rule.det.PortsPerHost(), wall)
		}
		return p, ok
	}
	if rule.lo > 1024 {
		if p, ok := n.claimIn(c, addr, class, 1024, rule.lo-1, want, r); ok {
			return p, true
		}
	}
	if rule.hi < 65535 {
		return n.claimIn(c, addr, class, rule.hi+1, 65535, want, r)
	}
	return 0, false
}

// claimPort claims a port on public address addr for an ALG-created flow:
// want itself when free (port preservation keeps FTP's conventions, such
// as active data from port 20), else a random free port in 1024–65535.
func (n *NAT) claimPort(c *compiled, addr uint32, class int, want uint16, rng *rand.Rand) (uint16, bool) {
	space := n.pools.space(addr, class)
	if want != 0 && !c.reserved(addr, class, want) && space.claim(want) {
		return want, true
	}
	var r uint32
	if rng != nil {
		r = rng.Uint32N(65536 - 1024)
	} else {
		r = rand.Uint32N(65536 - 1024)
	}
	for tries := 0; tries < 4; tries++ {
		p, ok := space.claimRange(1024, 65535, uint16(1024+r))
		if !ok {
			return 0, false
		}
		if !c.reserved(addr, class, p) {
			return p, true
		}
		r = uint32(p) + 1 - 1024
	}
	return 0, false
}

// DropOldestExpectation removes the oldest open expectation of control
// session (parent, gen) and gives back the public port it had claimed, if
// any. It reports whether there was one. The ALG calls it at its
// per-session limit, so that a new announcement replaces the oldest
// instead of being refused.
func (n *NAT) DropOldestExpectation(parent, gen uint32) bool {
	ex, ok := n.table.RemoveOldestExpectation(parent, gen)
	if !ok {
		return false
	}
	class, ok := portClass(ex.Proto)
	if !ok {
		return true
	}
	if host, ok := n.pending.take(pendingKey{addr: ex.DstAddr, port: ex.DstPort, class: uint8(class)}); ok {
		// The ALG's goroutine, as ExpectData's: its ring.
		n.algLog.mu.Lock()
		n.releasePort(ex.DstAddr, ex.DstPort, class, host, &n.algLog.log, time.Now().UnixMilli())
		n.algLog.mu.Unlock()
	}
	return true
}

// ResetSession moves TCP session (id, gen) to the closed state with the
// closed timeout (a RST's): the ALG reset both of its ends, and nothing will
// close it otherwise.
// It runs on the ALG's goroutine, outside any worker's poll: the grace
// period it brackets the check and the store with keeps a session that
// expires meanwhile from being replaced in its slot by one that would
// receive the closed state (and this one's hot flags).
func (n *NAT) ResetSession(id, gen uint32) {
	n.table.EnterAside()
	n.table.SetState(id, gen, tcpClosed, n.rules.Load().timeouts[toTCPClosed])
	n.table.LeaveAside()
}

// dataSourcePort chooses the public source port of a data connection
// opened from a translated host (an FTP server inside connecting out in
// active mode, from public address addr): the connection's own source
// port want when possible, so that it keeps FTP's conventions. RFC 959
// (3.2, 5.2) has the server open the data connection from its data port,
// L-1 — 20 for the standard control port — and clients and the firewalls
// in front of them may expect it. A privileged port outside every dynamic
// range of the outbound rules and published by no nat.server is never
// handed out, so it is kept and shared by every such data connection, with
// no claim (own false): the connections differ by the client's endpoint,
// and the flow table keeps their keys apart. Any other port is claimed
// for host, the source port when free (claimFor: in host's port blocks or
// deterministic range when addr has them; log and wall for the events).
func (n *NAT) dataSourcePort(c *compiled, addr, host uint32, class int, want uint16, rng *rand.Rand, log *eventLog, wall int64) (port uint16, own, ok bool) {
	if want != 0 && want < 1024 && !c.reserved(addr, class, want) && !c.dynamic(want) {
		return want, false, true
	}
	port, ok = n.claimFor(c, addr, host, class, want, rng, log, wall)
	return port, ok, ok
}

// dynamic reports whether port lies in the dynamic range of any outbound
// rule.
func (c *compiled) dynamic(port uint16) bool {
	for i := range c.outbound {
		if r := &c.outbound[i]; r.lo <= port && port <= r.hi {
			return true
		}
	}
	return false
}
