package pipeline

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// The test topology: inside 10.77.0.0/24 (client .5, FTP server .226 on
// 2021), outside 198.18.0.0/24 (remote hosts .1 and .2, router .99), the
// NAT's public address 198.18.0.204 publishing 9091 → 10.77.0.226:2021.
const (
	public   = "198.18.0.204"
	inClient = "10.77.0.5"
	inServer = "10.77.0.226"
	remote1  = "198.18.0.1"
	remote2  = "198.18.0.2"
	router   = "198.18.0.99"
)

var (
	macIn   = [6]byte{0x02, 0, 0, 0, 1, 1}
	macOut  = [6]byte{0x02, 0, 0, 0, 2, 2}
	macHost = [6]byte{0x02, 0, 0, 0, 9, 9}
)

func caseRules(tb testing.TB, eim bool, lo, hi uint16) nat.Rules {
	tb.Helper()
	pm, _ := portmap.Build([]portmap.Mapping{{App: portmap.AppFTP, Port: 9091, Proto: packet.ProtoTCP}})
	return nat.Rules{
		Outbound: []nat.Outbound{{
			Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
			Pool:   []netip.Addr{netip.MustParseAddr(public)},
			PortLo: lo, PortHi: hi, EndpointIndependent: eim,
		}},
		Servers: []nat.Server{
			{Proto: packet.ProtoTCP, Public: netip.MustParseAddrPort(public + ":9091"), Inside: netip.MustParseAddrPort(inServer + ":2021")},
			{Proto: packet.ProtoUDP, Public: netip.MustParseAddrPort(public + ":5353"), Inside: netip.MustParseAddrPort(inServer + ":5300")},
		},
		PortMap:  pm,
		Timeouts: nat.DefaultTimeouts,
		FTPALG:   true,
	}
}

// rig is one worker over two memory ports with a fake clock.
type rig struct {
	t     testing.TB
	pool  *MemPool
	in    *MemPort
	out   *MemPort
	table *flowtable.Table
	nat   *nat.NAT
	w     *Worker
	now   flowtable.Time
}

type rigOpts struct {
	rules    nat.Rules
	maxFlows int
	alg      *ALGLink
	dropTap  func(frame []byte, reason string)
	frames   int     // pool size (default 512)
	router   *Policy // nil: DefaultRouterConfig
	// addrs gives the ports their own addresses (inside 10.77.0.1,
	// outside routerOut), so that the worker can send ICMP errors.
	addrs         bool
	onBadChecksum func(Port)
	events        *natlog.Hub // the NAT records its events here
}

// The ports' own addresses with rigOpts.addrs.
const (
	routerIn  = "10.77.0.1"
	routerOut = "198.18.0.254"
)

func newRig(tb testing.TB, o rigOpts) *rig {
	tb.Helper()
	if o.maxFlows == 0 {
		o.maxFlows = 1024
	}
	table, err := flowtable.New(flowtable.Config{MaxSessions: o.maxFlows})
	if err != nil {
		tb.Fatal(err)
	}
	n, err := nat.New(o.rules, table, 1)
	if err != nil {
		tb.Fatal(err)
	}
	if o.events != nil {
		if err := n.LogTo(o.events, time.Now()); err != nil {
			tb.Fatal(err)
		}
	}
	if o.frames == 0 {
		o.frames = 512
	}
	r := &rig{t: tb, pool: NewMemPool(o.frames, 2048), table: table, nat: n, now: 100}
	r.in = NewMemPort("in", macIn, r.pool)
	r.out = NewMemPort("out", macOut, r.pool)
	if o.addrs {
		r.in.SetAddr(testutil.Addr(tb, routerIn))
		r.out.SetAddr(testutil.Addr(tb, routerOut))
	}
	for _, a := range []string{inClient, inServer, "10.77.0.6"} {
		r.in.SetNeighbor(testutil.Addr(tb, a), macHost)
	}
	for _, a := range []string{remote1, remote2, router} {
		r.out.SetNeighbor(testutil.Addr(tb, a), macHost)
	}
	r.w = NewWorker(Config{
		Ports: []PortSpec{{Port: r.in, Side: nat.Inside}, {Port: r.out, Side: nat.Outside}},
		Poll:  PollBusy, Batch: 32, NAT: n.Engine(0), Table: table, ALG: o.alg,
		DropTap: o.dropTap, Frames: o.frames, Router: o.router, OnBadChecksum: o.onBadChecksum,
		Clock: func() flowtable.Time { return r.now },
	})
	r.w.pubEvery = 0 // counters exact after every poll
	return r
}

// send injects frames on port p, runs one poll, and returns what each port
// transmitted.
func (r *rig) send(p *MemPort, frames ...[]byte) (toIn, toOut [][]byte) {
	r.t.Helper()
	for _, f := range frames {
		if !p.Inject(f) {
			r.t.Fatal("pool exhausted")
		}
	}
	r.w.Poll()
	return r.in.Sent(), r.out.Sent()
}

// one sends a frame and expects exactly one frame out on the port want,
// decoded and checksum-checked by gopacket.
func (r *rig) one(from, want *MemPort, frame []byte) *testutil.Decoded {
	r.t.Helper()
	toIn, toOut := r.send(from, frame)
	got, other := toOut, toIn
	if want == r.in {
		got, other = toIn, toOut
	}
	if len(got) != 1 || len(other) != 0 {
		r.t.Fatalf("want 1 frame on %s, got %d (and %d on the other port); counters: %s", want.Name(), len(got), len(other), r.drops())
	}
	d := testutil.Decode(r.t, got[0])
	if d.Eth.DstMAC.String() != "02:00:00:00:09:09" {
		r.t.Errorf("dst MAC %v, want the next hop's", d.Eth.DstMAC)
	}
	wantSrc := macOut
	if want == r.in {
		wantSrc = macIn
	}
	if [6]byte(d.Eth.SrcMAC) != wantSrc {
		r.t.Errorf("src MAC %v, want the port's own", d.Eth.SrcMAC)
	}
	return d
}

// none sends a frame and expects nothing out; it returns the verdict
// counters' change.
func (r *rig) none(from *MemPort, frame []byte) {
	r.t.Helper()
	toIn, toOut := r.send(from, frame)
	if len(toIn)+len(toOut) != 0 {
		r.t.Fatalf("want no frame out, got %d in / %d out", len(toIn), len(toOut))
	}
}

func (r *rig) verdicts(v nat.Verdict) uint64 { return r.w.Counters().Verdict[v].Load() }

func (r *rig) drops() string {
	c := r.w.Counters()
	s := ""
	for i := range c.Verdict {
		if n := c.Verdict[i].Load(); n > 0 {
			s += nat.Verdict(i).String() + "=" + itoa(n) + " "
		}
	}
	for i := range c.Drop {
		if n := c.Drop[i].Load(); n > 0 {
			s += DropReason(i).String() + "=" + itoa(n) + " "
		}
	}
	for i := range c.Parse {
		if n := c.Parse[i].Load(); n > 0 && packet.Result(i) != packet.OK {
			s += packet.Result(i).String() + "=" + itoa(n) + " "
		}
	}
	return s
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// wait is a helper for tests that run the worker on its own goroutine.
func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
