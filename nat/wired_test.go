package nat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
)

// wiredRules have one rule of every allocation mode, each on pool
// addresses of its own, small enough that random traffic fills them, and
// two FTP servers published on addresses of the port-block and the
// deterministic rule.
func wiredRules(t testing.TB) Rules {
	r := testRules(t)
	r.Outbound = []Outbound{
		{Inside: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/26")}, Pool: []netip.Addr{netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")},
			PortLo: 1024, PortHi: 1087, EndpointIndependent: true, BlockSize: 4, BlocksPerHost: 2},
		{Inside: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/27")}, Pool: []netip.Addr{netip.MustParseAddr("198.18.2.1")},
			PortLo: 1024, PortHi: 1151, EndpointIndependent: true, Deterministic: true, PortsPerHost: 4},
		{Inside: []netip.Prefix{netip.MustParsePrefix("10.3.0.0/26")}, Pool: []netip.Addr{netip.MustParseAddr("198.18.3.1")},
			PortLo: 1024, PortHi: 1151, BlockSize: 8, BlocksPerHost: 1},
		{Inside: []netip.Prefix{netip.MustParsePrefix("10.4.0.0/26")}, Pool: []netip.Addr{netip.MustParseAddr("198.18.4.1")},
			PortLo: 1024, PortHi: 1039},
	}
	r.Servers = []Server{
		{Proto: packet.ProtoTCP, Public: netip.MustParseAddrPort("198.18.1.1:2121"), Inside: netip.MustParseAddrPort("10.5.0.8:21")},
		{Proto: packet.ProtoTCP, Public: netip.MustParseAddrPort("198.18.2.1:2121"), Inside: netip.MustParseAddrPort("10.5.0.9:21")},
	}
	return r
}

// pubPort is a public endpoint of one port class.
type pubPort struct {
	addr  uint32
	class int
	port  uint16
}

// TestWiredAllocation drives random traffic through the engine — new
// sessions of every allocation mode, FTP control connections whose ALG
// announcements claim data ports (client inside, PORT; server inside,
// PASV), data connections using them, expiry and `clear sessions` — and
// after every step checks, from the flow table, the ALG's pending ports
// and the event log alone:
//
//   - no two inside hosts hold one public address and port at once;
//   - every port a host holds on a port-block address lies in a block the
//     block events say it holds, and no host holds more blocks than its
//     rule allows;
//   - every port a host holds on the deterministic address lies in the
//     range `fastnat lookup` gives it, and Lookup names the host from the
//     port (the server's data ports lie outside every range);
//
// and at the end, with everything cleared, that every port, block and
// binding went back and the events balance.
func TestWiredAllocation(t *testing.T) {
	steps := 6000
	if testing.Short() {
		steps = 1500
	}
	rules := wiredRules(t)
	g := newLogRig(t, rules, 1<<16)
	lookup, err := NewLookup(rules.Outbound)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 7))
	blockOf := map[uint32]Outbound{}
	for _, o := range rules.Outbound {
		if o.BlockSize > 0 {
			for _, a := range o.Pool {
				blockOf[addr4(a)] = o
			}
		}
	}
	det := addr4(rules.Outbound[1].Pool[0])
	blockOwner := map[[2]uint32]uint32{} // (address, first port) → host, from the events
	balance := map[natlog.Type]int{}
	var controls []Result    // FTP control sessions, for announcements
	seen := map[string]int{} // what the walk covered

	replay := func(step int) {
		for _, e := range g.events() {
			balance[e.Type]++
			k := [2]uint32{e.Outside.SrcAddr, uint32(e.First)}
			switch e.Type {
			case natlog.BlockAlloc:
				if o, taken := blockOwner[k]; taken {
					t.Fatalf("step %d: block %v:%d given to %v while %v holds it", step, Addr(k[0]), k[1], Addr(e.Inside.SrcAddr), Addr(o))
				}
				blockOwner[k] = e.Inside.SrcAddr
			case natlog.BlockRelease:
				if blockOwner[k] != e.Inside.SrcAddr {
					t.Fatalf("step %d: %v releases block %v:%d it does not hold", step, Addr(e.Inside.SrcAddr), Addr(k[0]), k[1])
				}
				delete(blockOwner, k)
			}
		}
	}
	check := func(step int) {
		replay(step)
		owner := map[pubPort]uint32{}
		claim := func(p pubPort, host uint32, what string) {
			if o, ok := owner[p]; ok && o != host {
				t.Fatalf("step %d: %v:%d/%d held by %v and by %v (%s)", step, Addr(p.addr), p.port, p.class, Addr(o), Addr(host), what)
			}
			owner[p] = host
		}
		g.table.Range(func(id, gen uint32, s flowtable.Session) bool {
			class, _ := portClass(s.Key[flowtable.Orig].Proto)
			o, r := s.Key[flowtable.Orig], s.Key[flowtable.Reply]
			if s.Flags&(flagBinding|flagOwnSrcPort) != 0 {
				claim(pubPort{r.DstAddr, class, r.DstPort}, o.SrcAddr, fmt.Sprintf("session %d", id))
			}
			if s.Flags&flagOwnDstPort != 0 {
				claim(pubPort{o.DstAddr, class, o.DstPort}, r.SrcAddr, fmt.Sprintf("data session %d", id))
				if _, ok := blockOf[o.DstAddr]; ok {
					seen["data session in a port block"]++
				}
				if o.DstAddr == det {
					seen["data session on the deterministic address"]++
				}
			}
			return true
		})
		g.n.pending.mu.Lock()
		for k, v := range g.n.pending.m {
			claim(pubPort{k.addr, int(k.class), k.port}, v.host, "pending")
		}
		g.n.pending.mu.Unlock()
		perHost := map[uint32]int{}
		for _, h := range blockOwner {
			perHost[h]++
		}
		for p, host := range owner {
			if o, ok := blockOf[p.addr]; ok {
				seen["port-block port"]++
				first := o.PortLo + (p.port-o.PortLo)/uint16(o.BlockSize)*uint16(o.BlockSize)
				if blockOwner[[2]uint32{p.addr, uint32(first)}] != host {
					t.Fatalf("step %d: %v holds %v:%d outside its blocks", step, Addr(host), Addr(p.addr), p.port)
				}
				if perHost[host] > o.BlocksPerHost {
					t.Fatalf("step %d: %v holds %d blocks, limit %d", step, Addr(host), perHost[host], o.BlocksPerHost)
				}
			}
			if p.addr == det {
				a, err := lookup.ByPublic(netip.AddrPortFrom(Addr(p.addr), p.port))
				switch {
				case host == addr4(rules.Servers[1].Inside.Addr()):
					seen["server data port on the deterministic address"]++
					if err == nil {
						t.Fatalf("step %d: the server's data port %d lies in %v's range", step, p.port, a.Inside)
					}
				case err != nil || a.Inside != Addr(host):
					t.Fatalf("step %d: %v holds %v:%d, which lookup gives to %v (%v)", step, Addr(host), Addr(p.addr), p.port, a.Inside, err)
				}
			}
		}
	}

	hosts := []string{"10.1.0.", "10.2.0.", "10.3.0.", "10.4.0."}
	remotes := []string{remote, remote2}
	for step := range steps {
		switch op := rng.IntN(100); {
		case op < 55: // a new session from inside
			host := fmt.Sprintf("%s%d", hosts[rng.IntN(len(hosts))], 1+rng.IntN(6))
			src := fmt.Sprintf("%s:%d", host, 1024+rng.IntN(300))
			dst := fmt.Sprintf("%s:%d", remotes[rng.IntN(2)], 1+rng.IntN(3000))
			if rng.IntN(2) == 0 {
				g.process(Inside, udp(t, src, dst))
			} else {
				g.process(Inside, syn(t, src, dst))
			}
		case op < 65: // an FTP client inside
			host := fmt.Sprintf("%s%d", hosts[rng.IntN(len(hosts))], 1+rng.IntN(24))
			if r := g.process(Inside, syn(t, fmt.Sprintf("%s:%d", host, 20000+rng.IntN(1000)), remotes[rng.IntN(2)]+":21")); r.Verdict == Forward {
				controls = append(controls, r)
			}
		case op < 70: // a client outside of the servers
			pub := []string{"198.18.1.1:2121", "198.18.2.1:2121"}[rng.IntN(2)]
			if r := g.process(Outside, syn(t, fmt.Sprintf("%s:%d", remotes[rng.IntN(2)], 30000+rng.IntN(1000)), pub)); r.Verdict == Forward {
				controls = append(controls, r)
			}
		case op < 82 && len(controls) > 0: // an announcement, and maybe its data connection
			c := controls[rng.IntN(len(controls))]
			var s flowtable.Session
			if !g.table.Read(c.Session, c.Gen, &s) {
				continue
			}
			dir := flowtable.Orig // PORT from the client inside
			if s.Flags&flagOrigFromInside == 0 {
				dir = flowtable.Reply // PASV from the server inside
			}
			announcer := s.Key[dir].SrcAddr
			a, p, ok := g.n.ExpectData(c.Session, c.Gen, dir, announcer, uint16(40000+rng.IntN(2000)), g.now)
			if ok && rng.IntN(3) > 0 {
				peer := s.Key[1-dir].SrcAddr
				g.process(Outside, syn(t, fmt.Sprintf("%v:%d", Addr(peer), 20+rng.IntN(2)*40000), fmt.Sprintf("%v:%d", Addr(a), p)))
			}
		case op < 95: // time passes
			d := flowtable.Time(1 + rng.IntN(8))
			if rng.IntN(20) == 0 {
				d = 301 // and the expectations' ports expire
			}
			g.now += d
			g.e.SetTime(g.e.wall + int64(d)*1000)
			g.e.Age(g.now, g.table.Capacity())
		default: // clear a session
			var ids [][2]uint32
			g.table.Range(func(id, gen uint32, _ flowtable.Session) bool {
				ids = append(ids, [2]uint32{id, gen})
				return len(ids) < 64
			})
			if len(ids) > 0 {
				k := ids[rng.IntN(len(ids))]
				g.n.Delete(k[0], k[1])
			}
		}
		check(step)
	}
	if balance[natlog.BlockAlloc] == 0 || balance[natlog.QuotaExceeded] == 0 || balance[natlog.PortsExhausted] == 0 {
		t.Errorf("the walk never filled a pool: %v", balance)
	}
	for _, what := range []string{"port-block port", "server data port on the deterministic address",
		"data session in a port block", "data session on the deterministic address"} {
		if seen[what] == 0 {
			t.Errorf("the walk never had a %s: %v", what, seen)
		}
	}

	// Clear everything; the expectations' ports expire.
	if r := clearAll(g.n); r == 0 {
		t.Error("nothing left to clear")
	}
	g.now += 302
	g.e.Age(g.now, g.table.Capacity())
	g.e.Age(g.now+1, g.table.Capacity())
	check(-1)
	for _, u := range g.n.PoolUse() {
		if u.TCP != 0 || u.UDP != 0 || u.ICMP != 0 {
			// A nat server's port the allocator met stays claimed: only
			// 2121 may be left.
			if u.TCP != 1 || u.UDP != 0 || u.ICMP != 0 || !g.n.pools.space(u.Addr, classTCP).taken(2121) {
				t.Errorf("ports still claimed: %+v", u)
			}
		}
	}
	for _, b := range g.n.BlockUse() {
		if b.Held != 0 {
			t.Errorf("blocks still held: %+v", b)
		}
	}
	if g.n.Bindings() != 0 || g.n.public.count() != 0 || len(blockOwner) != 0 {
		t.Errorf("%d bindings, %d public-map entries, %d blocks left", g.n.Bindings(), g.n.public.count(), len(blockOwner))
	}
	for _, p := range [][2]natlog.Type{{natlog.SessionCreate, natlog.SessionDelete}, {natlog.BindingCreate, natlog.BindingDelete},
		{natlog.BlockAlloc, natlog.BlockRelease}} {
		if balance[p[0]] != balance[p[1]] {
			t.Errorf("%d %s, %d %s", balance[p[0]], p[0], balance[p[1]], p[1])
		}
	}
	if d := g.hub.Stats().Producers; d[0].Dropped+d[1].Dropped+d[2].Dropped != 0 {
		t.Errorf("events dropped: %+v", d)
	}
}

// clearAll deletes every session of n's table and returns how many.
func clearAll(n *NAT) int {
	var ids [][2]uint32
	n.table.Range(func(id, gen uint32, _ flowtable.Session) bool {
		ids = append(ids, [2]uint32{id, gen})
		return true
	})
	c := 0
	for _, k := range ids {
		if n.Delete(k[0], k[1]) {
			c++
		}
	}
	return c
}

// taken reports whether port is claimed.
func (s *portSpace) taken(port uint16) bool {
	return atomic.LoadUint64(&s.bits[port>>6])&(1<<(port&63)) != 0
}

// TestBlocksAcrossReloads: a reload that keeps a port-block rule's
// layout keeps every host's blocks (its blocks per host may change); one
// that changes the layout gives out no block on an address while blocks
// of the old layout are held there, so blocks never overlap — and once
// the old sessions are cleared, the new layout runs.
func TestBlocksAcrossReloads(t *testing.T) {
	r := testRules(t)
	r.Outbound[0].BlockSize, r.Outbound[0].BlocksPerHost = 64, 1
	g := newLogRig(t, r, 4096)
	first := g.process(Inside, udp(t, hostA+":4000", remote+":5300"))
	if first.Verdict != Forward || g.n.BlockUse()[0].Held != 1 {
		t.Fatalf("%v, blocks %+v", first.Verdict, g.n.BlockUse())
	}
	g.events()
	// More blocks per host: the same pool, the host's block is kept.
	more := r
	more.Outbound = append([]Outbound(nil), r.Outbound...)
	more.Outbound[0].BlocksPerHost = 4
	if err := g.n.Reload(more); err != nil {
		t.Fatal(err)
	}
	if res := g.process(Inside, udp(t, hostA+":4001", remote+":5300")); res.Verdict != Forward {
		t.Fatal(res.Verdict)
	}
	if b := g.n.BlockUse(); len(b) != 1 || b[0].Held != 1 {
		t.Fatalf("blocks after a reload that kept the layout: %+v", b)
	}
	if evs := g.events(); len(evs) != 2 {
		t.Fatalf("events %+v, want only the session's and its binding's", evs)
	}
	// Another block size: no block while the old layout holds one.
	other := more
	other.Outbound = append([]Outbound(nil), more.Outbound...)
	other.Outbound[0].BlockSize = 128
	if err := g.n.Reload(other); err != nil {
		t.Fatal(err)
	}
	if res := g.process(Inside, udp(t, hostB+":4000", remote+":5300")); res.Verdict != DropPortsExhausted {
		t.Fatalf("a new layout's block beside the old one's: %v", res.Verdict)
	}
	if n := clearAll(g.n); n != 2 {
		t.Fatalf("cleared %d sessions, want 2", n)
	}
	res := g.process(Inside, udp(t, hostB+":4000", remote+":5300"))
	if res.Verdict != Forward {
		t.Fatalf("after the old blocks went: %v", res.Verdict)
	}
	var alloc *natlog.Event
	for _, e := range g.events() {
		if e.Type == natlog.BlockAlloc {
			alloc = &e
		}
	}
	if alloc == nil || alloc.Last-alloc.First+1 != 128 {
		t.Fatalf("block of the new layout: %+v", alloc)
	}
}
