package nat

import (
	"net/netip"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// step is one frame of a creation scenario and what must come out.
type step struct {
	from     Side
	frame    []byte
	verdict  Verdict
	out      Side
	src, dst string // the forwarded frame's, as testutil.Decoded prints them
	// flags, when not zero, are the nat flags the step's session must
	// have (checked on the step that creates it).
	flags uint8
}

// endpoint formats one side of a tuple as testutil.Decoded does.
func endpoint(proto uint8, a uint32, port uint16) string {
	if proto == packet.ProtoICMP {
		return Addr(a).String()
	}
	return netip.AddrPortFrom(Addr(a), port).String()
}

// checkSession checks that the session of a forwarded frame has the
// frame as it arrived as its key in the frame's direction, and the frame
// as it left as the other key reversed: both keys and both rewrites.
func checkSession(t *testing.T, g *rig, r Result, in, out *testutil.Decoded) flowtable.Session {
	t.Helper()
	s := g.session(r)
	k, x := s.Key[r.Dir], s.Key[1-r.Dir].Reverse()
	if endpoint(k.Proto, k.SrcAddr, k.SrcPort) != in.Src() || endpoint(k.Proto, k.DstAddr, k.DstPort) != in.Dst() {
		t.Errorf("session key %v does not match the frame %s -> %s", k, in.Src(), in.Dst())
	}
	if endpoint(x.Proto, x.SrcAddr, x.SrcPort) != out.Src() || endpoint(x.Proto, x.DstAddr, x.DstPort) != out.Dst() {
		t.Errorf("session translation %v does not match the output %s -> %s", x, out.Src(), out.Dst())
	}
	if in.ICMP != nil && (k.SrcPort != in.ICMP.Id || x.SrcPort != out.ICMP.Id) {
		t.Errorf("ICMP identifier %d→%d, session %v→%v", in.ICMP.Id, out.ICMP.Id, k, x)
	}
	return s
}

// TestSessionCreation covers session creation by every rule type: the
// first packet's translation, the session's keys and flags, and the
// reply's translation back.
func TestSessionCreation(t *testing.T) {
	cases := []struct {
		name  string
		steps func(t *testing.T) []step
	}{
		{"outbound endpoint-independent UDP", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostA+":4000", remote+":7000"), Forward, Outside, pubEIM + ":4000", remote + ":7000", flagOrigFromInside | flagBinding},
				{Outside, udp(t, remote+":7000", pubEIM+":4000"), Forward, Inside, remote + ":7000", hostA + ":4000", 0},
				// The same endpoint to another destination keeps its mapping.
				{Inside, udp(t, hostA+":4000", remote2+":7000"), Forward, Outside, pubEIM + ":4000", remote2 + ":7000", flagOrigFromInside | flagBinding},
				// The filtering is address-and-port dependent.
				{Outside, udp(t, remote2+":7001", pubEIM+":4000"), DropUnsolicited, 0, "", "", 0},
			}
		}},
		{"outbound address-and-port-dependent UDP", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostC+":4000", remote+":7000"), Forward, Outside, pubAPDM + ":4000", remote + ":7000", flagOrigFromInside | flagOwnSrcPort},
				{Outside, udp(t, remote+":7000", pubAPDM+":4000"), Forward, Inside, remote + ":7000", hostC + ":4000", 0},
				// Another destination gets a port of its own.
				{Inside, udp(t, hostC+":4000", remote2+":7000"), Forward, Outside, "", remote2 + ":7000", flagOrigFromInside | flagOwnSrcPort},
			}
		}},
		{"outbound TCP", func(t *testing.T) []step {
			return []step{
				{Inside, syn(t, hostA+":40000", remote+":80"), Forward, Outside, pubEIM + ":40000", remote + ":80", flagOrigFromInside | flagBinding},
				{Outside, synAck(t, remote+":80", pubEIM+":40000"), Forward, Inside, remote + ":80", hostA + ":40000", 0},
				{Inside, testutil.TCP(t, hostA+":40001", remote+":80", testutil.ACK, 1, 1, nil), DropTCPNoSYN, 0, "", "", 0},
			}
		}},
		{"nat server TCP", func(t *testing.T) []step {
			return []step{
				{Outside, syn(t, remote+":40000", pubEIM+":9091"), Forward, Inside, remote + ":40000", srvIn + ":2021", flagOrigToInside},
				{Inside, synAck(t, srvIn+":2021", remote+":40000"), Forward, Outside, pubEIM + ":9091", remote + ":40000", 0},
			}
		}},
		{"nat server UDP", func(t *testing.T) []step {
			return []step{
				{Outside, udp(t, remote+":999", pubEIM+":5353"), Forward, Inside, remote + ":999", srvIn + ":5300", flagOrigToInside},
				{Inside, udp(t, srvIn+":5300", remote+":999"), Forward, Outside, pubEIM + ":5353", remote + ":999", 0},
			}
		}},
		{"nat server from inside (hairpin)", func(t *testing.T) []step {
			return []step{
				{Inside, syn(t, hostA+":41000", pubEIM+":9091"), Forward, Inside, pubEIM + ":41000", srvIn + ":2021",
					flagOrigFromInside | flagOrigToInside | flagBinding},
				{Inside, synAck(t, srvIn+":2021", pubEIM+":41000"), Forward, Inside, pubEIM + ":9091", hostA + ":41000", 0},
			}
		}},
		{"hairpin to an endpoint-independent mapping", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostA+":4000", remote+":3478"), Forward, Outside, pubEIM + ":4000", remote + ":3478", 0},
				{Inside, udp(t, hostB+":5000", remote+":3478"), Forward, Outside, pubEIM + ":5000", remote + ":3478", 0},
				// B sends to A's public mapping first: A has not sent to
				// B's public endpoint, so A's filtering refuses it, as it
				// would from outside — every time.
				{Inside, udp(t, hostB+":5000", pubEIM+":4000"), DropHairpinFiltered, 0, "", "", 0},
				{Inside, udp(t, hostB+":5000", pubEIM+":4000"), DropHairpinFiltered, 0, "", "", 0},
				// A sends to B's public mapping, which B has sent to: B
				// receives it from A's own public mapping, never from A's
				// private address ...
				{Inside, udp(t, hostA+":4000", pubEIM+":5000"), Forward, Inside, pubEIM + ":4000", hostB + ":5000", 0},
				// ... and now A's mapping admits B.
				{Inside, udp(t, hostB+":5000", pubEIM+":4000"), Forward, Inside, pubEIM + ":5000", hostA + ":4000", 0},
				// B's mapping is its binding, shared with its outbound flows.
				{Inside, udp(t, hostB+":5000", remote+":3478"), Forward, Outside, pubEIM + ":5000", remote + ":3478", 0},
			}
		}},
		{"hairpin to an address-and-port-dependent session's port", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostC+":4000", remote+":3478"), Forward, Outside, pubAPDM + ":4000", remote + ":3478", 0},
				// C's port admits remote:3478 alone; nothing is made.
				{Inside, udp(t, hostA+":6000", pubAPDM+":4000"), DropHairpinFiltered, 0, "", "", 0},
				{Inside, udp(t, hostA+":6000", pubAPDM+":4000"), DropHairpinFiltered, 0, "", "", 0},
			}
		}},
		{"hairpin TCP to an outbound mapping", func(t *testing.T) []step {
			return []step{
				{Inside, syn(t, hostA+":42000", remote+":80"), Forward, Outside, pubEIM + ":42000", remote + ":80", 0},
				{Inside, syn(t, hostB+":43000", pubEIM+":42000"), DropHairpinFiltered, 0, "", "", 0},
				// A's SYN to B's mapping: a simultaneous open (RFC 9293
				// §3.5), as TCP hole punching does.
				{Inside, syn(t, hostA+":42000", pubEIM+":43000"), Forward, Inside, pubEIM + ":42000", hostB + ":43000", 0},
				{Inside, syn(t, hostB+":43000", pubEIM+":42000"), Forward, Inside, pubEIM + ":43000", hostA + ":42000", 0},
			}
		}},
		{"hairpin to its own endpoint-independent mapping", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostA+":4000", remote+":3478"), Forward, Outside, pubEIM + ":4000", remote + ":3478", 0},
				// A sends to its own mapping (the classic STUN client's
				// hairpin test): it comes back from that mapping, every
				// time, with no session (the two keys would be one).
				{Inside, udp(t, hostA+":4000", pubEIM+":4000"), Forward, Inside, pubEIM + ":4000", hostA + ":4000", 0},
				{Inside, udp(t, hostA+":4000", pubEIM+":4000"), Forward, Inside, pubEIM + ":4000", hostA + ":4000", 0},
				// Another port of A's is not its mapping: another
				// endpoint, which the mapping has not sent to.
				{Inside, udp(t, hostA+":4001", pubEIM+":4000"), DropHairpinFiltered, 0, "", "", 0},
				// TCP: a socket connecting to its own mapping meets itself
				// (simultaneous open), every segment reflected.
				{Inside, syn(t, hostA+":42000", remote+":80"), Forward, Outside, pubEIM + ":42000", remote + ":80", 0},
				{Inside, syn(t, hostA+":42000", pubEIM+":42000"), Forward, Inside, pubEIM + ":42000", hostA + ":42000", 0},
				{Inside, synAck(t, hostA+":42000", pubEIM+":42000"), Forward, Inside, pubEIM + ":42000", hostA + ":42000", 0},
				{Inside, testutil.WithTTL(t, udp(t, hostA+":4000", pubEIM+":4000"), 1), DropTTLExpired, 0, "", "", 0},
			}
		}},
		{"hairpin to its own address-and-port-dependent session's port", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostC+":4000", remote+":3478"), Forward, Outside, pubAPDM + ":4000", remote + ":3478", 0},
				// The new port it would send from is not the endpoint its
				// session talks to: filtered.
				{Inside, udp(t, hostC+":4000", pubAPDM+":4000"), DropHairpinFiltered, 0, "", "", 0},
			}
		}},
		{"hairpin to a public port nobody maps", func(t *testing.T) []step {
			return []step{
				{Inside, udp(t, hostB+":5000", pubEIM+":4999"), DropUnsolicited, 0, "", "", 0},
				{Inside, syn(t, hostB+":5000", pubAPDM+":4999"), DropUnsolicited, 0, "", "", 0},
			}
		}},
		{"ICMP query", func(t *testing.T) []step {
			return []step{
				{Inside, echo(t, hostA, remote, 7777, false), Forward, Outside, pubEIM, remote, flagOrigFromInside | flagBinding},
				{Outside, echo(t, remote, pubEIM, 7777, true), Forward, Inside, remote, hostA, 0},
				{Outside, echo(t, remote, pubEIM, 7778, true), DropUnsolicited, 0, "", "", 0},
			}
		}},
		{"echo to a public address", func(t *testing.T) []step {
			return []step{
				{Outside, echo(t, remote, pubAPDM, 9, false), Forward, Outside, pubAPDM, remote, 0},
				{Inside, echo(t, hostA, pubEIM, 9, false), Forward, Inside, pubEIM, hostA, 0},
			}
		}},
		{"unsolicited and unruled", func(t *testing.T) []step {
			return []step{
				{Outside, udp(t, remote+":7000", pubEIM+":4444"), DropUnsolicited, 0, "", "", 0},
				{Outside, syn(t, remote+":7000", hostA+":80"), DropUnsolicited, 0, "", "", 0},
				{Inside, udp(t, "10.99.0.1:53", remote+":7000"), DropNoRule, 0, "", "", 0},
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, testRules(t))
			for i, s := range c.steps(t) {
				r, out := g.send(s.from, s.frame)
				if r.Verdict != s.verdict {
					t.Fatalf("step %d: verdict %v, want %v", i, r.Verdict, s.verdict)
				}
				if r.Verdict != Forward {
					continue
				}
				if r.Out != s.out || s.src != "" && out.Src() != s.src || out.Dst() != s.dst {
					t.Fatalf("step %d: left on %v as %s -> %s, want %v %s -> %s", i, r.Out, out.Src(), out.Dst(), s.out, s.src, s.dst)
				}
				if r.Gen == 0 {
					continue // answered by the NAT itself
				}
				in := testutil.Decode(t, s.frame)
				if ss := checkSession(t, g, r, in, out); s.flags != 0 && ss.Flags != s.flags {
					t.Errorf("step %d: session flags %#x, want %#x", i, ss.Flags, s.flags)
				}
			}
		})
	}
}

// TestExpectedSession: a data connection announced on a control session
// is created by its expectation, labelled ftp-data and linked to the
// control session by id and generation.
func TestExpectedSession(t *testing.T) {
	g := newRig(t, testRules(t))
	ctl, _ := g.send(Outside, syn(t, remote+":40000", pubEIM+":9091"))
	if ctl.Verdict != Forward {
		t.Fatal(ctl.Verdict)
	}
	if s := g.session(ctl); portmap.App(s.App) != portmap.AppFTP || s.MapEntry != 0 {
		t.Fatalf("control session labelled %v entry %d", portmap.App(s.App), s.MapEntry)
	}
	// The server inside announces 10.77.0.226:50000 in a reply (PASV).
	a, p, ok := g.n.ExpectData(ctl.Session, ctl.Gen, flowtable.Reply, testutil.Addr(t, srvIn), 50000, g.now)
	if !ok || Addr(a).String() != pubEIM || p != 50000 {
		t.Fatalf("ExpectData = %v:%d %v", Addr(a), p, ok)
	}
	// With a stale generation it refuses.
	if _, _, ok := g.n.ExpectData(ctl.Session, ctl.Gen+2, flowtable.Reply, testutil.Addr(t, srvIn), 50001, g.now); ok {
		t.Fatal("ExpectData accepted a control session's stale generation")
	}
	r, out := g.send(Outside, syn(t, remote+":40001", pubEIM+":50000"))
	if r.Verdict != Forward || out.Dst() != srvIn+":50000" || out.Src() != remote+":40001" {
		t.Fatalf("data SYN: %v to %v", r.Verdict, out)
	}
	s := checkSession(t, g, r, testutil.Decode(t, syn(t, remote+":40001", pubEIM+":50000")), out)
	if portmap.App(s.App) != portmap.AppFTPData || s.Parent != ctl.Session || s.ParentGen != ctl.Gen || s.MapEntry != 0 ||
		s.Flags != flagOrigToInside|flagOwnDstPort {
		t.Fatalf("data session %+v", s)
	}
	// Single use.
	if r, _ := g.send(Outside, syn(t, remote+":40002", pubEIM+":50000")); r.Verdict != DropUnsolicited {
		t.Fatalf("second data SYN: %v", r.Verdict)
	}
}

// TestHairpinReleasesEverything: a hairpin session is a normal session —
// when it and the mapping it reached expire, every port, binding and
// public-map entry is released exactly once, and the mapping's public
// port no longer reaches its old owner.
func TestHairpinReleasesEverything(t *testing.T) {
	g := newRig(t, testRules(t))
	var ends int
	g.n.OnSessionEnd(func(id, gen uint32, s flowtable.Session) { ends++ })
	steps := []struct {
		from  Side
		frame []byte
		want  Verdict
	}{
		{Inside, udp(t, hostA+":4000", remote+":3478"), Forward},              // A's binding
		{Inside, udp(t, hostC+":4100", remote+":3478"), Forward},              // C's own port
		{Inside, udp(t, hostB+":5000", pubEIM+":4000"), DropHairpinFiltered},  // B → A, held
		{Inside, udp(t, hostA+":4000", pubEIM+":5000"), Forward},              // A answers
		{Inside, syn(t, hostB+":5001", pubAPDM+":4100"), DropUnsolicited},     // B → C, TCP: C's port is UDP only
		{Inside, udp(t, hostB+":5002", pubAPDM+":4100"), DropHairpinFiltered}, // B → C: nothing made
		{Inside, udp(t, hostC+":4100", pubEIM+":5000"), DropHairpinFiltered},  // C → B, held, a port of its own
		{Inside, syn(t, hostC+":4200", pubEIM+":9091"), Forward},              // C → the FTP server
	}
	for i, s := range steps {
		if r, _ := g.send(s.from, s.frame); r.Verdict != s.want {
			t.Fatalf("step %d: %v, want %v", i, r.Verdict, s.want)
		}
	}
	if g.n.public.count() == 0 || g.table.Stats().Sessions != 5 {
		t.Fatalf("%d sessions, public map %d", g.table.Stats().Sessions, g.n.public.count())
	}
	g.expire(31)
	if st := g.table.Stats(); st.Sessions != 0 || ends != 5 {
		t.Fatalf("%d sessions left, %d ended", st.Sessions, ends)
	}
	for _, u := range g.n.PoolUse() {
		if u.TCP != 0 || u.UDP != 0 || u.ICMP != 0 {
			t.Errorf("ports still claimed: %+v", u)
		}
	}
	if g.n.Bindings() != 0 || g.n.public.count() != 0 {
		t.Errorf("%d bindings, %d public-map entries left", g.n.Bindings(), g.n.public.count())
	}
	if r, _ := g.send(Inside, udp(t, hostB+":5000", pubEIM+":4000")); r.Verdict != DropUnsolicited {
		t.Errorf("hairpin to an expired mapping: %v", r.Verdict)
	}
}

// TestHairpinFiltering: a hairpinned packet passes the target mapping's
// filtering exactly as a packet from outside with the sender's public
// endpoint as its source would — address-and-port dependent: only once
// the target has sent to that endpoint. Targets of both mapping types,
// admitted and refused.
func TestHairpinFiltering(t *testing.T) {
	t.Run("endpoint-independent target", func(t *testing.T) {
		g := newRig(t, testRules(t))
		g.send(Inside, udp(t, hostA+":4000", remote+":3478"))
		// C (per-session mapping) to A's binding: refused, every time,
		// and nothing reaches A.
		for range 3 {
			if r, _ := g.send(Inside, udp(t, hostC+":4100", pubEIM+":4000")); r.Verdict != DropHairpinFiltered {
				t.Fatalf("unsolicited hairpin: %v", r.Verdict)
			}
		}
		// C's own mapping toward A's is a port of its own, which A
		// may now answer (C has sent to A's mapping from it) ...
		h := g.held(udp(t, hostC+":4100", pubEIM+":4000"))
		s := g.session(h)
		port := s.Key[flowtable.Reply].DstPort
		pubC := endpoint(packet.ProtoUDP, s.Key[flowtable.Reply].DstAddr, port)
		if s.Key[flowtable.Reply].DstAddr != testutil.Addr(t, pubAPDM) || s.Flags&flagHeld == 0 {
			t.Fatalf("held session %+v", s)
		}
		// ... but from another endpoint of A's it is still filtered:
		// A's binding is not its mapping.
		if r, _ := g.send(Inside, udp(t, hostA+":4001", pubC)); r.Verdict != DropHairpinFiltered {
			t.Fatalf("from A's other endpoint: %v", r.Verdict)
		}
		r, out := g.send(Inside, udp(t, hostA+":4000", pubC))
		if r.Verdict != Forward || r.Out != Inside || out.Src() != pubEIM+":4000" || out.Dst() != hostC+":4100" {
			t.Fatalf("A's answer: %v on %v %s -> %s", r.Verdict, r.Out, out.Src(), out.Dst())
		}
		// Now A's mapping admits C's, both ways.
		r, out = g.send(Inside, udp(t, hostC+":4100", pubEIM+":4000"))
		if r.Verdict != Forward || out.Src() != pubC || out.Dst() != hostA+":4000" {
			t.Fatalf("C after A answered: %v %s -> %s", r.Verdict, out.Src(), out.Dst())
		}
		if pkts, _ := g.table.Counters(h.Session); pkts != [2]uint64{1, 1} {
			t.Errorf("session counters %v: the refused packets must not count", pkts)
		}
	})
	t.Run("address-and-port-dependent target", func(t *testing.T) {
		g := newRig(t, testRules(t))
		g.send(Inside, udp(t, hostC+":4100", remote+":3478"))
		before := g.table.Stats().Sessions
		for _, f := range [][]byte{
			udp(t, hostA+":4000", pubAPDM+":4100"), // another host
			udp(t, hostC+":4101", pubAPDM+":4100"), // another endpoint of C's
			udp(t, hostC+":4100", pubAPDM+":4100"), // the same endpoint: a new port
		} {
			if r, _ := g.send(Inside, f); r.Verdict != DropHairpinFiltered {
				t.Fatalf("to C's per-session port: %v", r.Verdict)
			}
		}
		if n := g.table.Stats().Sessions; n != before {
			t.Fatalf("%d sessions, want %d: a refused packet to a per-session port makes none", n, before)
		}
		// The port C's session sends from admits what it talks to: a
		// hairpinned packet from that endpoint is admitted. C sends to
		// A's binding first (held), then A answers C's new port.
		g.send(Inside, udp(t, hostA+":4000", remote+":3478"))
		g.send(Inside, udp(t, hostC+":4200", pubEIM+":4000"))
		s := g.session(g.held(udp(t, hostC+":4200", pubEIM+":4000")))
		pubC := endpoint(packet.ProtoUDP, s.Key[flowtable.Reply].DstAddr, s.Key[flowtable.Reply].DstPort)
		if r, out := g.send(Inside, udp(t, hostA+":4000", pubC)); r.Verdict != Forward || out.Dst() != hostC+":4200" {
			t.Fatalf("A to C's port that sent to it: %v", r.Verdict)
		}
		if r, _ := g.send(Inside, udp(t, hostB+":5000", pubC)); r.Verdict != DropHairpinFiltered {
			t.Fatalf("B to C's port that did not send to it: %v", r.Verdict)
		}
	})
	t.Run("nat server", func(t *testing.T) {
		g := newRig(t, testRules(t))
		// A server rule filters nothing, from either side.
		if r, _ := g.send(Inside, udp(t, hostA+":4000", pubEIM+":5353")); r.Verdict != Forward {
			t.Fatalf("to the nat server: %v", r.Verdict)
		}
	})
}

// TestRandomStartDrawnOnce: the random start that a creation's
// prefetchClaim draws ahead is the one the next allocation takes, and a
// start is taken once — the next is a draw of its own — always in the
// worker's partition of the rule's range.
func TestRandomStartDrawnOnce(t *testing.T) {
	table, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	n, err := New(testRules(t), table, 2)
	if err != nil {
		t.Fatal(err)
	}
	e := n.Engine(1)
	rule := &n.rules.Load().outbound[1]
	part := uint32(65535-1024+1) / 2
	lo := 1024 + part // worker 1's partition
	seen := map[uint32]bool{}
	for range 1000 {
		ahead := e.randomStart(rule, false)
		if again := e.randomStart(rule, false); again != ahead {
			t.Fatalf("a start drawn ahead changed before it was taken: %d, then %d", ahead, again)
		}
		if took := e.randomStart(rule, true); took != ahead {
			t.Fatalf("allocation took start %d, want the one drawn ahead, %d", took, ahead)
		}
		if ahead < lo || ahead >= lo+part {
			t.Fatalf("start %d outside worker 1's partition %d..%d", ahead, lo, lo+part-1)
		}
		seen[ahead] = true
	}
	// 1,000 uniform draws from 32,256 values repeat about 15 times.
	if len(seen) < 950 {
		t.Fatalf("%d distinct starts in 1000 allocations: taken starts are used again", len(seen))
	}
}
