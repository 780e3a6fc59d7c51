package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// The test addressing: inside 10.77.0.0/24, its lower half source-NATed
// endpoint-independently to 198.18.0.204, its upper half per session to
// 198.18.0.205; 198.18.0.204 also publishes an FTP server (9091 →
// 10.77.0.226:2021, ftp by port mapping) and a UDP service (5353 →
// 10.77.0.226:5300). Outside hosts are 198.18.0.1 and .2.
const (
	pubEIM  = "198.18.0.204"
	pubAPDM = "198.18.0.205"
	hostA   = "10.77.0.5"
	hostB   = "10.77.0.6"
	hostC   = "10.77.0.200" // in the APDM half
	srvIn   = "10.77.0.226"
	remote  = "198.18.0.1"
	remote2 = "198.18.0.2"
)

// testRules are the rules above, with timeouts short enough to expire
// sessions by advancing the rig's clock.
func testRules(tb testing.TB) Rules {
	tb.Helper()
	pm, err := portmap.Build([]portmap.Mapping{{App: portmap.AppFTP, Port: 9091, Proto: packet.ProtoTCP}})
	if err != nil {
		tb.Fatal(err)
	}
	to := DefaultTimeouts
	to.UDP, to.ICMP, to.TCPSyn = 30*time.Second, 30*time.Second, 30*time.Second
	return Rules{
		Outbound: []Outbound{
			{Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/25")}, Pool: []netip.Addr{netip.MustParseAddr(pubEIM)},
				PortLo: 1024, PortHi: 65535, EndpointIndependent: true},
			{Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")}, Pool: []netip.Addr{netip.MustParseAddr(pubAPDM)},
				PortLo: 1024, PortHi: 65535},
		},
		Servers: []Server{
			{Proto: packet.ProtoTCP, Public: netip.MustParseAddrPort(pubEIM + ":9091"), Inside: netip.MustParseAddrPort(srvIn + ":2021")},
			{Proto: packet.ProtoUDP, Public: netip.MustParseAddrPort(pubEIM + ":5353"), Inside: netip.MustParseAddrPort(srvIn + ":5300")},
		},
		PortMap:  pm,
		Timeouts: to,
	}
}

// rig is one engine over a small table with a fake clock.
type rig struct {
	tb      testing.TB
	table   *flowtable.Table
	n       *NAT
	e       *Engine
	now     flowtable.Time
	ingress uint16 // the interface index frames arrive on (Result.Ingress)
}

func newRig(tb testing.TB, r Rules) *rig {
	tb.Helper()
	table, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
	if err != nil {
		tb.Fatal(err)
	}
	n, err := New(r, table, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return &rig{tb: tb, table: table, n: n, e: n.Engine(0), now: 100}
}

// send runs a copy of frame, arriving on side from, through the engine.
// A forwarded frame comes back decoded by gopacket, which has verified
// its IPv4 and transport checksums from scratch.
func (g *rig) send(from Side, frame []byte) (Result, *testutil.Decoded) {
	g.tb.Helper()
	r, f := g.run(from, frame)
	if r.Verdict != Forward {
		return r, nil
	}
	return r, testutil.Decode(g.tb, f)
}

// process runs a copy of frame through the engine without decoding what
// comes out (random ports would make gopacket guess protocols).
func (g *rig) process(from Side, frame []byte) Result {
	g.tb.Helper()
	r, _ := g.run(from, frame)
	return r
}

// run runs a copy of frame, arriving on side from, through the engine and
// returns the copy as the engine left it.
func (g *rig) run(from Side, frame []byte) (Result, []byte) {
	g.tb.Helper()
	f := append([]byte(nil), frame...)
	var p packet.Parsed
	if res := packet.Parse(f, &p); res != packet.OK {
		g.tb.Fatalf("test frame does not parse: %v", res)
	}
	var r Result
	g.e.SetIngress(g.ingress)
	g.e.Process(f, &p, from, g.now, &r)
	return r, f
}

// session reads the session of a forwarded result, which must be live.
func (g *rig) session(r Result) flowtable.Session {
	g.tb.Helper()
	var s flowtable.Session
	if !g.table.Read(r.Session, r.Gen, &s) {
		g.tb.Fatalf("session %d gen %d is not live", r.Session, r.Gen)
	}
	return s
}

// held returns the session a frame the target's filtering refused
// (DropHairpinFiltered) left held, as a forwarded result would name it.
func (g *rig) held(frame []byte) Result {
	g.tb.Helper()
	var p packet.Parsed
	if res := packet.Parse(frame, &p); res != packet.OK {
		g.tb.Fatalf("test frame does not parse: %v", res)
	}
	id, dir, gen, ok := g.table.LookupGen(p.Tuple)
	if !ok {
		g.tb.Fatalf("no session holds %v", p.Tuple)
	}
	return Result{Session: id, Gen: gen, Dir: dir}
}

// expire advances the clock by d seconds and ages the whole table.
func (g *rig) expire(d flowtable.Time) {
	g.now += d
	g.e.Age(g.now, g.table.Capacity())
}

// udp, tcp and echo build test frames from "addr:port" strings.
func udp(tb testing.TB, src, dst string) []byte {
	tb.Helper()
	return testutil.UDP(tb, src, dst, []byte("fastnat"))
}

func syn(tb testing.TB, src, dst string) []byte {
	tb.Helper()
	return testutil.TCP(tb, src, dst, testutil.SYN, 1000, 0, nil)
}

func synAck(tb testing.TB, src, dst string) []byte {
	tb.Helper()
	return testutil.TCP(tb, src, dst, testutil.SYN|testutil.ACK, 5000, 1001, nil)
}

func echo(tb testing.TB, src, dst string, id uint16, reply bool) []byte {
	tb.Helper()
	return testutil.ICMPEcho(tb, src, dst, id, 1, reply)
}

// tuple builds a flow tuple from "addr:port" strings (for ICMP, plain
// addresses and the identifier in both ports).
func tuple(tb testing.TB, proto uint8, src, dst string, id uint16) packet.Tuple {
	tb.Helper()
	if proto == packet.ProtoICMP {
		return packet.Tuple{SrcAddr: testutil.Addr(tb, src), DstAddr: testutil.Addr(tb, dst), SrcPort: id, DstPort: id, Proto: proto}
	}
	s, d := testutil.AddrPort(tb, src), testutil.AddrPort(tb, dst)
	return packet.Tuple{SrcAddr: testutil.Addr(tb, s.Addr().String()), DstAddr: testutil.Addr(tb, d.Addr().String()),
		SrcPort: s.Port(), DstPort: d.Port(), Proto: proto}
}
