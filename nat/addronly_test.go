package nat

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
)

// A GRE packet from inside makes an address-only session: the source
// address becomes the host's public address, nothing past the IPv4
// header changes, and the reply comes back to the host.
func TestAddrOnlyGRE(t *testing.T) {
	g := newRig(t, testRules(t))
	out := testutil.GRE(t, hostA, remote)
	r, d := g.send(Inside, out)
	if r.Verdict != Forward {
		t.Fatalf("outbound GRE: %v", r.Verdict)
	}
	if d.Src() != pubEIM || d.Dst() != remote || d.IP.Protocol != 47 || d.IP.TTL != 63 {
		t.Fatalf("outbound GRE written %s -> %s proto %d ttl %d", d.Src(), d.Dst(), d.IP.Protocol, d.IP.TTL)
	}
	if !bytes.Equal(d.Raw[34:], out[34:]) {
		t.Fatal("outbound GRE: bytes past the IPv4 header changed")
	}
	s := g.session(r)
	want := packet.Tuple{SrcAddr: testutil.Addr(t, remote), DstAddr: testutil.Addr(t, pubEIM), Proto: packet.ProtoGRE}
	if s.Key[flowtable.Reply] != want || s.Key[flowtable.Orig].SrcPort != 0 || s.Key[flowtable.Orig].DstPort != 0 {
		t.Fatalf("keys %v, want reply %v with ports 0", s.Key, want)
	}
	if _, to := g.table.State(r.Session); to != 600 {
		t.Errorf("timeout %d s, want the other class's 600 (conntrack's generic timeout)", to)
	}
	in := testutil.GRE(t, remote, pubEIM)
	r, d = g.send(Outside, in)
	if r.Verdict != Forward || d.Src() != remote || d.Dst() != hostA {
		t.Fatalf("reply GRE: %v", r.Verdict)
	}
	if !bytes.Equal(d.Raw[34:], in[34:]) {
		t.Fatal("reply GRE: bytes past the IPv4 header changed")
	}
	// Unsolicited GRE from another remote starts nothing.
	if r := g.process(Outside, testutil.GRE(t, remote2, pubEIM)); r.Verdict != DropUnsolicited {
		t.Fatalf("unsolicited GRE: %v, want %v", r.Verdict, DropUnsolicited)
	}
	// Nor does GRE from inside to a public address (no hairpinning).
	if r := g.process(Inside, testutil.GRE(t, hostB, pubEIM)); r.Verdict != DropUnsolicited {
		t.Fatalf("GRE to the public address from inside: %v, want %v", r.Verdict, DropUnsolicited)
	}
	// An inside address no rule holds.
	if r := g.process(Inside, testutil.GRE(t, "10.99.0.9", remote)); r.Verdict != DropNoRule {
		t.Fatalf("GRE from outside every rule: %v, want %v", r.Verdict, DropNoRule)
	}
	// Ended by its timeout (the other class), the session frees its reply
	// key: another host then gets the same public address to the remote.
	g.expire(601)
	if r := g.process(Inside, testutil.GRE(t, hostB, remote)); r.Verdict != Forward {
		t.Fatalf("GRE after the first session expired: %v", r.Verdict)
	}
}

// A second host sending the same protocol to the same remote cannot
// share the public address's reply key: it takes the rule's next pool
// address, and with none left it is dropped as ports_exhausted.
func TestAddrOnlyCollision(t *testing.T) {
	rules := testRules(t)
	g := newRig(t, rules)
	if r := g.process(Inside, testutil.IPProto(t, hostA, remote, packet.ProtoESP, make([]byte, 32))); r.Verdict != Forward {
		t.Fatalf("host A ESP: %v", r.Verdict)
	}
	if r := g.process(Inside, testutil.IPProto(t, hostB, remote, packet.ProtoESP, make([]byte, 32))); r.Verdict != DropPortsExhausted {
		t.Fatalf("host B ESP through the one pool address: %v, want %v", r.Verdict, DropPortsExhausted)
	}
	// To another remote the same public address serves.
	if r := g.process(Inside, testutil.IPProto(t, hostB, remote2, packet.ProtoESP, make([]byte, 32))); r.Verdict != Forward {
		t.Fatalf("host B ESP to another remote: %v", r.Verdict)
	}

	rules.Outbound[0].Pool = append(rules.Outbound[0].Pool, netip.MustParseAddr("198.18.0.206"))
	g = newRig(t, rules)
	pubs := map[string]bool{}
	for _, h := range []string{hostA, hostB} {
		r, d := g.send(Inside, testutil.GRE(t, h, remote))
		if r.Verdict != Forward {
			t.Fatalf("%s GRE with two pool addresses: %v", h, r.Verdict)
		}
		pubs[d.Src()] = true
	}
	if len(pubs) != 2 {
		t.Fatalf("two hosts share public address %v", pubs)
	}
	if r := g.process(Inside, testutil.GRE(t, "10.77.0.7", remote)); r.Verdict != DropPortsExhausted {
		t.Fatalf("third host: %v, want %v", r.Verdict, DropPortsExhausted)
	}
}

// AH cannot survive address translation and stays dropped, counted as
// protocol.
func TestAddrOnlyAHDropped(t *testing.T) {
	g := newRig(t, testRules(t))
	if r := g.process(Inside, testutil.IPProto(t, hostA, remote, packet.ProtoAH, make([]byte, 24))); r.Verdict != DropProtocol {
		t.Fatalf("AH: %v, want %v", r.Verdict, DropProtocol)
	}
}

// An address-only session's create event carries its tuples with ports
// 0 and no binding is logged; the event log names the protocol by
// number.
func TestAddrOnlyEvents(t *testing.T) {
	g := newLogRig(t, testRules(t), 1024)
	if r := g.process(Inside, testutil.GRE(t, hostA, remote)); r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	evs := g.events()
	want := natlog.Event{Type: natlog.SessionCreate, Time: natlogT0, RuleKind: natlog.RuleOutbound,
		Inside:  packet.Tuple{SrcAddr: ip(t, hostA), DstAddr: ip(t, remote), Proto: packet.ProtoGRE},
		Outside: packet.Tuple{SrcAddr: ip(t, pubEIM), DstAddr: ip(t, remote), Proto: packet.ProtoGRE}}
	if len(evs) != 1 || evs[0] != want {
		t.Fatalf("events %+v\nwant [%+v]", evs, want)
	}
	if name := packet.ProtoName(evs[0].Inside.Proto); name != "gre" {
		t.Errorf("protocol named %q, want gre", name)
	}
	if got := string(evs[0].AppendBody(nil)); !strings.HasPrefix(got, "session-create gre 10.77.0.5:0 -> 198.18.0.1:0 as 198.18.0.204:0 -> 198.18.0.1:0") {
		t.Errorf("event text %q", got)
	}
}

// A fragmented GRE packet: the first fragment makes the session, the
// next is translated by it like a UDP datagram's.
func TestAddrOnlyFragments(t *testing.T) {
	g := newRig(t, testRules(t))
	big := testutil.IPProto(t, hostA, remote, packet.ProtoGRE, append([]byte{0, 0, 8, 0}, bytes.Repeat([]byte("gre"), 200)...))
	big[14+6] &^= 0x40 // clear DF
	packet.IPv4(big[14:]).SetChecksum(packet.IPv4(big[14:]).CalculateChecksum())
	frags := testutil.Fragment(t, big, 256)
	if len(frags) < 2 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, f := range frags {
		r, d := g.send(Inside, f)
		if r.Verdict != Forward || d.Src() != pubEIM || d.Dst() != remote {
			t.Fatalf("fragment %d: %v", i, r.Verdict)
		}
	}
}
