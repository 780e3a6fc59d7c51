package nat

import (
	"net/netip"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// TestSessionOrigins: every way a session is made records the rule that
// made it, named as events and `show sessions` name it, and the interface
// its first packet came in on.
func TestSessionOrigins(t *testing.T) {
	g := newRig(t, testRules(t))
	tests := []struct {
		name    string
		from    Side
		ingress uint16
		frame   []byte
		rule    string
	}{
		{"outbound, endpoint-independent", Inside, 1, udp(t, hostA+":4000", remote+":5300"), "nat.outbound[0]"},
		{"outbound, per session", Inside, 1, syn(t, hostC+":4100", remote+":80"), "nat.outbound[1]"},
		{"nat server from outside", Outside, 0, syn(t, remote+":40000", pubEIM+":9091"), "nat.server[0]"},
		{"nat server from inside", Inside, 2, udp(t, hostB+":5000", pubEIM+":5353"), "nat.server[1]/hairpin"},
		{"another host's mapping", Inside, 2, udp(t, hostB+":5001", pubEIM+":4000"), "nat.outbound[0]/hairpin"},
		{"the per-session rule's host reaching a mapping", Inside, 1, udp(t, hostC+":4101", pubEIM+":4000"), "nat.outbound[1]/hairpin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.ingress = tc.ingress
			r := g.process(tc.from, tc.frame)
			if r.Verdict == DropHairpinFiltered {
				r = g.held(tc.frame) // made, and held for the target
			} else if r.Verdict != Forward {
				t.Fatal(r.Verdict)
			}
			s := g.session(r)
			if got := g.n.RuleName(s.Rule); got != tc.rule || s.Ingress != tc.ingress {
				t.Errorf("rule %q ingress %d, want %q %d", got, s.Ingress, tc.rule, tc.ingress)
			}
		})
	}

	// An ALG's data connection carries its control session's rule; after
	// the control session has ended, just the ALG.
	g.ingress = 0
	ctl := g.process(Outside, syn(t, remote+":40100", pubEIM+":9091"))
	if _, _, ok := g.n.ExpectData(ctl.Session, ctl.Gen, flowtable.Reply, testutil.Addr(t, srvIn), 50000, g.now); !ok {
		t.Fatal("ExpectData")
	}
	if _, _, ok := g.n.ExpectData(ctl.Session, ctl.Gen, flowtable.Reply, testutil.Addr(t, srvIn), 50001, g.now); !ok {
		t.Fatal("ExpectData")
	}
	g.ingress = 3
	data := g.process(Outside, syn(t, remote+":40101", pubEIM+":50000"))
	if s := g.session(data); g.n.RuleName(s.Rule) != "nat.server[0]/alg" || s.Ingress != 3 {
		t.Errorf("data session: rule %q ingress %d", g.n.RuleName(s.Rule), s.Ingress)
	}
	// The control session goes from the table without its release (as
	// if its expiry were still running): its expectation is used.
	if !g.table.DeleteGen(ctl.Session, ctl.Gen) {
		t.Fatal("delete control session")
	}
	orphan := g.process(Outside, syn(t, remote+":40102", pubEIM+":50001"))
	if orphan.Verdict != Forward {
		t.Fatal(orphan.Verdict)
	}
	if s := g.session(orphan); g.n.RuleName(s.Rule) != "alg" {
		t.Errorf("orphan data session: rule %q", g.n.RuleName(s.Rule))
	}
}

// TestRuleNamesAcrossReloads: a session keeps naming the rule that made
// it when a reload moves the rule, is marked removed (with the index the
// rule last had) when a reload takes it away, and is named by it again
// when it comes back. A rule's blocks per host are not part of what it
// is; its port range is.
func TestRuleNamesAcrossReloads(t *testing.T) {
	r := testRules(t)
	g := newRig(t, r)
	out1 := g.process(Inside, syn(t, hostC+":4100", remote+":80"))
	srv1 := g.process(Outside, udp(t, remote+":7000", pubEIM+":5353"))
	name := func(res Result) string { return g.n.RuleName(g.session(res).Rule) }
	if name(out1) != "nat.outbound[1]" || name(srv1) != "nat.server[1]" {
		t.Fatalf("before: %q %q", name(out1), name(srv1))
	}
	// Swap the outbound rules and the servers, and edit server 1's inside
	// endpoint: the sessions follow their rules.
	moved := r
	moved.Outbound = []Outbound{r.Outbound[1], r.Outbound[0]}
	moved.Servers = []Server{r.Servers[1], r.Servers[0]}
	moved.Servers[0].Inside = netip.MustParseAddrPort(srvIn + ":5301")
	if err := g.n.Reload(moved); err != nil {
		t.Fatal(err)
	}
	if name(out1) != "nat.outbound[0]" || name(srv1) != "nat.server[0]" {
		t.Errorf("after the swap: %q %q", name(out1), name(srv1))
	}
	// Remove the per-session rule (and change the other's port range,
	// which makes it another rule): both sessions of theirs are removed.
	out0 := g.process(Inside, udp(t, hostA+":4000", remote+":5300"))
	removed := moved
	removed.Outbound = []Outbound{moved.Outbound[1]}
	removed.Outbound[0].PortHi = 60000
	if err := g.n.Reload(removed); err != nil {
		t.Fatal(err)
	}
	if name(out1) != "nat.outbound[0] (removed)" || name(out0) != "nat.outbound[1] (removed)" || name(srv1) != "nat.server[0]" {
		t.Errorf("after the removal: %q %q %q", name(out1), name(out0), name(srv1))
	}
	// Back as they were first: named again, at their first indexes.
	if err := g.n.Reload(r); err != nil {
		t.Fatal(err)
	}
	if name(out1) != "nat.outbound[1]" || name(out0) != "nat.outbound[0]" || name(srv1) != "nat.server[1]" {
		t.Errorf("restored: %q %q %q", name(out1), name(out0), name(srv1))
	}
	// Blocks per host do not change what a rule is.
	blocks := r
	blocks.Outbound = append([]Outbound(nil), r.Outbound...)
	blocks.Outbound[1].BlockSize, blocks.Outbound[1].BlocksPerHost = 512, 2
	limit := blocks
	limit.Outbound = append([]Outbound(nil), blocks.Outbound...)
	limit.Outbound[1].BlocksPerHost = 9
	if outboundIdentity(&blocks.Outbound[1]) != outboundIdentity(&limit.Outbound[1]) ||
		outboundIdentity(&blocks.Outbound[1]) == outboundIdentity(&r.Outbound[1]) {
		t.Error("a rule's identity depends on its blocks per host, or not on its block size")
	}
}

// TestLabels: every label code round-trips, and an identity past the ids a
// NAT tells apart is named but never confused with another rule.
func TestLabels(t *testing.T) {
	for code, c := range labelCodes {
		l := makeLabel(c.kind, c.via, 77)
		kind, via, id := splitLabel(l)
		if int(l>>labelShift) != code || kind != c.kind || via != c.via || (c.kind != 0 && id != 77) {
			t.Errorf("code %d: label %#x splits into %v %v %d", code, l, kind, via, id)
		}
	}
	var ids ruleIDs
	for i := range MaxRuleIDs + 2 {
		id := ids.id(1, string(rune(i)))
		if want := min(i, unknownID); int(id) != want {
			t.Fatalf("identity %d got id %d, want %d", i, id, want)
		}
	}
	n := &NAT{}
	n.rules.Store(&compiled{index: [2]map[uint16]uint16{{}, {}}})
	if got := n.RuleName(makeLabel(1, 0, unknownID)); got != "nat.outbound[?]" {
		t.Errorf("unknown id named %q", got)
	}
}
