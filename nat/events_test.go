package nat

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// logRig is a rig whose NAT records events into a hub nobody drains:
// the test pops the rings itself.
type logRig struct {
	*rig
	hub   *natlog.Hub
	epoch time.Time
}

func newLogRig(t testing.TB, r Rules, ring int) *logRig {
	t.Helper()
	g := newRig(t, r)
	hub, err := natlog.NewHub(natlog.HubConfig{Producers: Producers(1), Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.UnixMilli(natlogT0).Add(-100 * time.Second) // the rig's clock starts at 100
	if err := g.n.LogTo(hub, epoch); err != nil {
		t.Fatal(err)
	}
	g.e = g.n.Engine(0)
	g.e.SetTime(natlogT0)
	return &logRig{rig: g, hub: hub, epoch: epoch}
}

const natlogT0 = 1764753506295 // 2025-12-03T09:18:26.295Z

// events pops what every ring holds, worker's first.
func (g *logRig) events() []natlog.Event {
	var out []natlog.Event
	buf := make([]natlog.Event, 256)
	for i := range g.hub.Producers() {
		for {
			n := g.hub.Ring(i).Pop(buf)
			if n == 0 {
				break
			}
			out = append(out, buf[:n]...)
		}
	}
	return out
}

func ip(t testing.TB, s string) uint32 { return testutil.Addr(t, s) }

// TestEventsOfSessions: a session's create and delete events carry its
// tuples seen from the inside host, its rule, application and direction;
// the delete its start and counters; an endpoint-independent binding logs
// its own create and delete.
func TestEventsOfSessions(t *testing.T) {
	g := newLogRig(t, testRules(t), 1024)
	r, out := g.send(Inside, udp(t, hostA+":4000", remote+":5300"))
	if r.Verdict != Forward {
		t.Fatal(r.Verdict)
	}
	pub := testutil.AddrPort(t, out.Src())
	g.send(Outside, udp(t, remote+":5300", out.Src()))
	g.send(Outside, udp(t, remote+":5300", out.Src()))
	srv := g.process(Outside, syn(t, remote+":40000", pubEIM+":9091"))
	if srv.Verdict != Forward {
		t.Fatal(srv.Verdict)
	}
	evs := g.events()
	udpIn := tuple(t, packet.ProtoUDP, hostA+":4000", remote+":5300", 0)
	udpOut := packet.Tuple{SrcAddr: ip(t, pubEIM), SrcPort: pub.Port(), DstAddr: ip(t, remote), DstPort: 5300, Proto: packet.ProtoUDP}
	want := []natlog.Event{
		{Type: natlog.BindingCreate, Time: natlogT0, RuleKind: natlog.RuleOutbound,
			Inside:  packet.Tuple{SrcAddr: ip(t, hostA), SrcPort: 4000, Proto: packet.ProtoUDP},
			Outside: packet.Tuple{SrcAddr: ip(t, pubEIM), SrcPort: pub.Port(), Proto: packet.ProtoUDP}},
		{Type: natlog.SessionCreate, Time: natlogT0, RuleKind: natlog.RuleOutbound, Inside: udpIn, Outside: udpOut},
		{Type: natlog.SessionCreate, Time: natlogT0, RuleKind: natlog.RuleServer, App: uint8(portmap.AppFTP), Inbound: true,
			Inside:  tuple(t, packet.ProtoTCP, srvIn+":2021", remote+":40000", 0),
			Outside: tuple(t, packet.ProtoTCP, pubEIM+":9091", remote+":40000", 0)},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %+v", evs)
	}
	for i := range want {
		if evs[i] != want[i] {
			t.Errorf("event %d\n got %+v\nwant %+v", i, evs[i], want[i])
		}
	}

	// Expiry: the UDP session and its binding end, and the half-open TCP
	// session.
	g.e.SetTime(natlogT0 + 31_000)
	g.expire(31)
	evs = g.events()
	if len(evs) != 3 || evs[0].Type != natlog.SessionDelete || evs[1].Type != natlog.BindingDelete || evs[2].Type != natlog.SessionDelete {
		t.Fatalf("expiry events %+v", evs)
	}
	if s := evs[2]; s.Inside != want[2].Inside || s.Outside != want[2].Outside || !s.Inbound || s.RuleKind != natlog.RuleServer ||
		s.App != uint8(portmap.AppFTP) || s.Packets != [2]uint64{1, 0} {
		t.Errorf("server session delete %+v", s)
	}
	del := evs[0]
	if del.Inside != udpIn || del.Outside != udpOut || del.Time != natlogT0+31_000 || del.Start != g.epoch.UnixMilli()+100_000 ||
		del.Packets != [2]uint64{1, 2} || del.Bytes[0] == 0 || del.Bytes[1] != 2*del.Bytes[0] || del.RuleKind != natlog.RuleOutbound {
		t.Errorf("session delete %+v", del)
	}
	if b := evs[1]; b.Start != natlogT0 || b.Inside.SrcPort != 4000 || b.Outside.SrcPort != pub.Port() {
		t.Errorf("binding delete %+v", b)
	}
}

// TestEventsOfRefusals: an exhausted pool logs ports-exhausted once a
// second however many packets it refuses; a deterministic host out of
// ports logs quota-exceeded and its packets get DropQuotaExceeded.
func TestEventsOfRefusals(t *testing.T) {
	r := testRules(t)
	r.Outbound[1].PortLo, r.Outbound[1].PortHi = 2000, 2001 // two ports per session
	r.Outbound = append(r.Outbound, Outbound{Inside: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/30")},
		Pool: []netip.Addr{netip.MustParseAddr("198.18.0.209")}, PortLo: 3000, PortHi: 3007, Deterministic: true, PortsPerHost: 2})
	g := newLogRig(t, r, 1024)
	for i := range 5 {
		want := Forward
		if i >= 2 {
			want = DropPortsExhausted
		}
		if res := g.process(Inside, syn(t, hostC+":"+itoa(4000+i), remote+":80")); res.Verdict != want {
			t.Fatalf("session %d: %v, want %v", i, res.Verdict, want)
		}
	}
	for i := range 4 {
		want := Forward
		if i >= 2 {
			want = DropQuotaExceeded
		}
		if res := g.process(Inside, udp(t, "10.9.0.2:"+itoa(6000+i), remote+":5300")); res.Verdict != want {
			t.Fatalf("deterministic session %d: %v, want %v", i, res.Verdict, want)
		}
	}
	var exhausted, quota []natlog.Event
	for _, e := range g.events() {
		switch e.Type {
		case natlog.PortsExhausted:
			exhausted = append(exhausted, e)
		case natlog.QuotaExceeded:
			quota = append(quota, e)
		}
	}
	if len(exhausted) != 1 || exhausted[0].Outside.SrcAddr != ip(t, pubAPDM) || exhausted[0].Inside.Proto != packet.ProtoTCP || exhausted[0].Rule != 1 {
		t.Errorf("ports exhausted %+v", exhausted)
	}
	if len(quota) != 1 || quota[0].Inside.SrcAddr != ip(t, "10.9.0.2") || quota[0].Limit != 2 || quota[0].Rule != 2 {
		t.Errorf("quota exceeded %+v", quota)
	}
}

func itoa(i int) string { return netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(i)).String()[8:] }

// TestDeleteReleases: Delete (`fastnat clear sessions`) ends sessions of
// every kind as expiry does: their ports, bindings, port blocks, public
// map entries and the expectations' ports go back — pool use returns to
// zero — and each logs its session-delete, exactly once.
func TestDeleteReleases(t *testing.T) {
	r := testRules(t)
	r.Outbound = append(r.Outbound,
		Outbound{Inside: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/24")}, Pool: []netip.Addr{netip.MustParseAddr("198.18.0.208")},
			PortLo: 1024, PortHi: 2047, EndpointIndependent: true, BlockSize: 64, BlocksPerHost: 2},
		Outbound{Inside: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/28")}, Pool: []netip.Addr{netip.MustParseAddr("198.18.0.209")},
			PortLo: 1024, PortHi: 2047, Deterministic: true, PortsPerHost: 64})
	g := newLogRig(t, r, 4096)
	var ends int
	g.n.OnSessionEnd(func(uint32, uint32, flowtable.Session) { ends++ })
	var made []Result
	for _, f := range []struct {
		from  Side
		frame []byte
	}{
		{Inside, udp(t, hostA+":4000", remote+":5300")},  // binding
		{Inside, udp(t, hostA+":4000", remote2+":5300")}, // the same binding
		{Inside, syn(t, hostC+":4100", remote+":80")},    // own port
		{Inside, udp(t, hostB+":5000", pubEIM+":4000")},  // hairpin
		{Inside, udp(t, "10.8.0.5:7000", remote+":5300")},
		{Inside, syn(t, "10.8.0.5:7001", remote+":21")}, // an FTP client in a port block
		{Inside, udp(t, "10.9.0.5:7000", remote+":5300")},
		{Outside, syn(t, remote+":40000", pubEIM+":9091")},
	} {
		res := g.process(f.from, f.frame)
		if res.Verdict == DropHairpinFiltered {
			res = g.held(f.frame) // made, and held for the target
		} else if res.Verdict != Forward {
			t.Fatalf("%v", res.Verdict)
		}
		made = append(made, res)
	}
	// The FTP client announces a data port (PORT): a port of its block.
	a, p, ok := g.n.ExpectData(made[5].Session, made[5].Gen, flowtable.Orig, ip(t, "10.8.0.5"), 7100, g.now)
	if !ok || Addr(a).String() != "198.18.0.208" {
		t.Fatalf("ExpectData %v:%d %v", Addr(a), p, ok)
	}
	if b := g.n.BlockUse(); len(b) != 1 || b[0].Held != 1 {
		t.Fatalf("blocks %+v", b)
	}
	g.events()
	for _, res := range made {
		if !g.n.Delete(res.Session, res.Gen) {
			t.Fatalf("Delete %d", res.Session)
		}
		if g.n.Delete(res.Session, res.Gen) {
			t.Fatalf("Delete %d twice", res.Session)
		}
	}
	if st := g.table.Stats(); st.Sessions != 0 || st.Deletes != uint64(len(made)) || ends != len(made) {
		t.Fatalf("%d sessions left, %d deleted, %d ended", st.Sessions, st.Deletes, ends)
	}
	for _, u := range g.n.PoolUse() {
		if u.TCP != 0 || u.UDP != 0 || u.ICMP != 0 {
			t.Errorf("ports still claimed: %+v", u)
		}
	}
	if b := g.n.BlockUse(); b[0].Held != 0 {
		t.Errorf("blocks still held: %+v", b)
	}
	if g.n.Bindings() != 0 || g.n.public.count() != 0 || len(g.n.pending.m) != 0 {
		t.Errorf("%d bindings, %d public-map entries, %d pending ports left", g.n.Bindings(), g.n.public.count(), len(g.n.pending.m))
	}
	count := map[natlog.Type]int{}
	for _, e := range g.events() {
		count[e.Type]++
	}
	if count[natlog.SessionDelete] != len(made) || count[natlog.BindingDelete] != 5 || count[natlog.BlockRelease] != 1 {
		t.Errorf("events of the clear: %v", count)
	}
	if st := g.hub.Ring(1).Stats(); st.Queued == 0 {
		t.Errorf("Delete's events went elsewhere than its ring: %+v", st)
	}
}

// TestDeleteRacesExpiry: Delete from two goroutines and expiry on the
// worker race for the same sessions: each is released exactly once and
// every port goes back.
func TestDeleteRacesExpiry(t *testing.T) {
	r := testRules(t)
	r.Outbound[0].BlockSize, r.Outbound[0].BlocksPerHost = 64, 4
	// No nat server: a block that holds a server's public port keeps
	// that port claimed for the server whenever its scan meets it
	// (claimIn), which the pool's count below would show as a leak.
	r.Servers = nil
	g := newLogRig(t, r, 1<<16)
	var mu sync.Mutex
	ended := map[[2]uint32]int{}
	g.n.OnSessionEnd(func(id, gen uint32, _ flowtable.Session) {
		mu.Lock()
		ended[[2]uint32{id, gen}]++
		mu.Unlock()
	})
	for round := range 20 {
		var made []Result
		for i := range 40 {
			host := []string{hostA, hostB, hostC}[i%3]
			res := g.process(Inside, udp(t, host+":"+itoa(2000+i), remote+":"+itoa(5000+round)))
			if res.Verdict != Forward {
				t.Fatalf("round %d session %d: %v", round, i, res.Verdict)
			}
			made = append(made, res)
		}
		g.now += 31 // every session is expired now
		var wg sync.WaitGroup
		for w := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < len(made); i += 2 {
					g.n.Delete(made[i].Session, made[i].Gen)
				}
			}()
		}
		g.e.Age(g.now, g.table.Capacity())
		wg.Wait()
		g.events()
	}
	for k, n := range ended {
		if n != 1 {
			t.Errorf("session %v released %d times", k, n)
		}
	}
	if len(ended) != 20*40 || g.table.Stats().Sessions != 0 {
		t.Errorf("%d sessions released, %d left", len(ended), g.table.Stats().Sessions)
	}
	for _, u := range g.n.PoolUse() {
		if u.TCP != 0 || u.UDP != 0 || u.ICMP != 0 {
			t.Errorf("ports still claimed: %+v", u)
		}
	}
	if b := g.n.BlockUse(); b[0].Held != 0 || g.n.Bindings() != 0 {
		t.Errorf("blocks %+v, %d bindings left", b, g.n.Bindings())
	}
}
