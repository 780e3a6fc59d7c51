package alg

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// The ALG against the real NAT and flow table: the contract both sides
// code against (translated frames in, Expecter out, expectations matched
// by the data connection's first packet). The whole pipeline with its
// rings is the pipeline package's test; this one drives nat.Engine and
// FTP.Process by hand.

var _ Expecter = (*nat.NAT)(nil)

type natRig struct {
	tb  testing.TB
	eng *nat.Engine
	n   *nat.NAT
	ftp *FTP
	now flowtable.Time
}

func newNATRig(tb testing.TB) *natRig {
	tb.Helper()
	table, err := flowtable.New(flowtable.Config{MaxSessions: 1024})
	if err != nil {
		tb.Fatal(err)
	}
	pm, _ := portmap.Build([]portmap.Mapping{{App: portmap.AppFTP, Port: 9091, Proto: packet.ProtoTCP}})
	n, err := nat.New(nat.Rules{
		Outbound: []nat.Outbound{{Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24")},
			Pool: []netip.Addr{netip.MustParseAddr("198.18.0.204")}, PortLo: 1024, PortHi: 65535}},
		Servers: []nat.Server{{Proto: packet.ProtoTCP, Public: netip.MustParseAddrPort("198.18.0.204:9091"),
			Inside: netip.MustParseAddrPort("10.77.0.226:2021")}},
		PortMap:  pm,
		Timeouts: nat.DefaultTimeouts,
		FTPALG:   true,
	}, table, 1)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := New(Config{Enabled: true}, table, n)
	if err != nil {
		tb.Fatal(err)
	}
	n.OnSessionEnd(f.SessionEnded)
	return &natRig{tb: tb, eng: n.Engine(0), n: n, ftp: f, now: 10}
}

// send runs a frame arriving on side from through the NAT and, for a
// diverted session, the ALG; it returns what leaves, decoded by gopacket.
func (g *natRig) send(from nat.Side, src, dst string, flags int, seq, ack uint32, payload string) (seg, nat.Result) {
	g.tb.Helper()
	s, r, v := g.sendALG(from, src, dst, flags, seq, ack, payload)
	if r.Verdict == nat.Forward && v != Forward {
		g.tb.Fatalf("alg verdict %v", v)
	}
	return s, r
}

// sendALG is send that returns the ALG's verdict (Forward for a frame
// the NAT dropped or did not divert) rather than fail on a drop.
func (g *natRig) sendALG(from nat.Side, src, dst string, flags int, seq, ack uint32, payload string) (seg, nat.Result, Verdict) {
	g.tb.Helper()
	b := testutil.TCP(g.tb, src, dst, flags, seq, ack, []byte(payload))
	fr := make([]byte, len(b), frameSize)
	copy(fr, b)
	var p packet.Parsed
	if r := packet.Parse(fr, &p); r != packet.OK {
		g.tb.Fatalf("parse: %v", r)
	}
	var r nat.Result
	g.eng.Process(fr, &p, from, g.now, &r)
	if r.Verdict != nat.Forward {
		return seg{}, r, Forward
	}
	n := len(fr)
	if r.Divert {
		it := Item{Buf: fr, Session: r.Session, Gen: r.Gen, Dir: r.Dir}
		g.ftp.Process(&it, g.now)
		if it.Verdict != Forward {
			return seg{}, r, it.Verdict
		}
		n = len(it.Buf)
	}
	return decodeSeg(g.tb, fr[:n]), r, Forward
}

// TestWithNATAckChecks: on a control connection whose EPRT the ALG
// lengthened, the server acknowledges the client's stream as it got it,
// past the end the NAT's tracker holds for the client: the NAT leaves
// that acknowledgment to the ALG, which maps it back and passes it, as it
// does one past the client's end in the NAT's space but within the
// shifted end; one past what the client sent, in the server's shifted
// space, is dropped and counted (alg_ack_unsent), as conntrack drops it
// with nf_nat_ftp's offset taken off. Data from the client acknowledging
// what the server never sent is the ALG's to drop too.
func TestWithNATAckChecks(t *testing.T) {
	g := newNATRig(t)
	cli, srv := "10.77.0.5:40000", "198.18.1.1:21"
	c, _ := g.send(nat.Inside, cli, srv, testutil.SYN, 100, 0, "")
	g.send(nat.Outside, srv, c.src, testutil.SYN|testutil.ACK, 500, 101, "")
	const eprt = "EPRT |1|10.77.0.5|50000|\r\n"
	s, _ := g.send(nat.Inside, cli, srv, testutil.ACK, 101, 501, eprt)
	if len(s.payload) <= len(eprt) {
		t.Fatalf("EPRT not lengthened: %q", s.payload)
	}
	shiftedEnd := 101 + uint32(len(s.payload))
	before := g.ftp.Stats().Total.AckUnsent
	for _, tc := range []struct {
		name string
		ack  uint32
		want Verdict
	}{
		{"one past the shifted end", shiftedEnd + 1, DropAckUnsent},
		{"past the client's end in the NAT's space only", 101 + uint32(len(eprt)) + 1, Forward},
		{"far past", shiftedEnd + 1<<20, DropAckUnsent},
		{"at the shifted end", shiftedEnd, Forward},
	} {
		a, r, v := g.sendALG(nat.Outside, srv, c.src, testutil.ACK, 501, tc.ack, "")
		if r.Verdict != nat.Forward || v != tc.want {
			t.Errorf("%s (ack %d): NAT %v, ALG %v, want forward, %v", tc.name, tc.ack, r.Verdict, v, tc.want)
			continue
		}
		if v == Forward && tc.ack == shiftedEnd && a.ack != 101+uint32(len(eprt)) {
			t.Errorf("%s: ack passed on as %d, want %d", tc.name, a.ack, 101+len(eprt))
		}
	}
	if n := g.ftp.Stats().Total.AckUnsent - before; n != 2 {
		t.Errorf("ack_unsent counted %d, want 2", n)
	}
	if _, r, v := g.sendALG(nat.Inside, cli, srv, testutil.ACK|testutil.PSH, 101+uint32(len(eprt)), 502, "NOOP\r\n"); r.Verdict != nat.Forward || v != DropAckUnsent {
		t.Errorf("client data acknowledging a byte the server never sent: NAT %v, ALG %v, want forward, %v", r.Verdict, v, DropAckUnsent)
	}
	if n := g.ftp.Stats().Total.AckUnsent - before; n != 3 {
		t.Errorf("ack_unsent counted %d, want 3", n)
	}
	// The connection carries on.
	a, _ := g.send(nat.Outside, srv, c.src, testutil.ACK|testutil.PSH, 501, shiftedEnd, "200 EPRT command successful.\r\n")
	if a.ack != 101+uint32(len(eprt)) {
		t.Errorf("reply's ack %d, want %d", a.ack, 101+len(eprt))
	}
}

// TestWithNAT runs the case's four FTP modes through the real NAT: the
// announced endpoint is rewritten to the public one, and the data
// connection's first packet finds its expectation and is translated to
// the announcer, labelled ftp-data.
func TestWithNAT(t *testing.T) {
	t.Run("server inside, PASV", func(t *testing.T) {
		g := newNATRig(t)
		cli, pub := "198.18.7.10:40000", "198.18.0.204:9091"
		g.send(nat.Outside, cli, pub, testutil.SYN, 100, 0, "")
		g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.SYN|testutil.ACK, 500, 101, "")
		s, r := g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.ACK, 501, 101, "227 Entering Passive Mode (10,77,0,226,195,80).\r\n")
		if !r.Divert || s.src != pub {
			t.Fatalf("227 not diverted (%v) or not translated (%s)", r.Divert, s.src)
		}
		want := "227 Entering Passive Mode (198,18,0,204,195,80).\r\n"
		if s.payload != want {
			t.Fatalf("payload %q, want %q", s.payload, want)
		}
		d, r := g.send(nat.Outside, "198.18.7.10:40001", "198.18.0.204:50000", testutil.SYN, 9000, 0, "")
		if r.Verdict != nat.Forward || d.dst != "10.77.0.226:50000" {
			t.Fatalf("data SYN: %v to %s", r.Verdict, d.dst)
		}
		var ds flowtable.Session
		if !g.n.Table().Read(r.Session, r.Gen, &ds) {
			t.Fatal("data session not readable by its Result's id and generation")
		}
		if app := portmap.App(ds.App); app != portmap.AppFTPData || ds.ParentGen == 0 {
			t.Errorf("data session labelled %v, parent %d", app, ds.Parent)
		}
		// Single use: a second connection to the endpoint finds nothing.
		if _, r := g.send(nat.Outside, "198.18.7.10:40002", "198.18.0.204:50000", testutil.SYN, 9100, 0, ""); r.Verdict == nat.Forward {
			t.Error("expectation matched twice")
		}
	})
	t.Run("server inside, EPSV", func(t *testing.T) {
		g := newNATRig(t)
		cli, pub := "198.18.7.10:40000", "198.18.0.204:9091"
		g.send(nat.Outside, cli, pub, testutil.SYN, 100, 0, "")
		g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.SYN|testutil.ACK, 500, 101, "")
		s, _ := g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.ACK, 501, 101, "229 Entering Extended Passive Mode (|||50001|)\r\n")
		var port int
		if _, err := fmt.Sscanf(s.payload, "229 Entering Extended Passive Mode (|||%d|)", &port); err != nil {
			t.Fatalf("payload %q: %v", s.payload, err)
		}
		d, r := g.send(nat.Outside, "198.18.7.10:40001", fmt.Sprintf("198.18.0.204:%d", port), testutil.SYN, 9000, 0, "")
		if r.Verdict != nat.Forward || d.dst != "10.77.0.226:50001" {
			t.Fatalf("data SYN: %v to %s", r.Verdict, d.dst)
		}
	})
	t.Run("server inside, PORT from outside client", func(t *testing.T) {
		g := newNATRig(t)
		cli, pub := "198.18.7.10:40000", "198.18.0.204:9091"
		g.send(nat.Outside, cli, pub, testutil.SYN, 100, 0, "")
		g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.SYN|testutil.ACK, 500, 101, "")
		s, _ := g.send(nat.Outside, cli, pub, testutil.ACK, 101, 501, "PORT 198,18,7,10,195,80\r\n")
		if s.payload != "PORT 198,18,7,10,195,80\r\n" || s.dst != "10.77.0.226:2021" {
			t.Fatalf("PORT %q to %s", s.payload, s.dst)
		}
		// The server connects from its data port to the client.
		d, r := g.send(nat.Inside, "10.77.0.226:2020", "198.18.7.10:50000", testutil.SYN, 7000, 0, "")
		if r.Verdict != nat.Forward || d.src[:len("198.18.0.204:")] != "198.18.0.204:" || d.dst != "198.18.7.10:50000" {
			t.Fatalf("active data SYN: %v %s -> %s", r.Verdict, d.src, d.dst)
		}
	})
	t.Run("client inside, EPRT and PORT", func(t *testing.T) {
		g := newNATRig(t)
		cli, srv := "10.77.0.5:40000", "198.18.1.1:21"
		c, r := g.send(nat.Inside, cli, srv, testutil.SYN, 100, 0, "")
		if r.Verdict != nat.Forward {
			t.Fatal(r.Verdict)
		}
		g.send(nat.Outside, srv, c.src, testutil.SYN|testutil.ACK, 500, 101, "")
		s, r := g.send(nat.Inside, cli, srv, testutil.ACK, 101, 501, "EPRT |1|10.77.0.5|50000|\r\n")
		if !r.Divert {
			t.Fatal("port 21 session not diverted")
		}
		var port int
		if _, err := fmt.Sscanf(s.payload, "EPRT |1|198.18.0.204|%d|", &port); err != nil {
			t.Fatalf("payload %q: %v", s.payload, err)
		}
		d, r := g.send(nat.Outside, "198.18.1.1:20", fmt.Sprintf("198.18.0.204:%d", port), testutil.SYN, 9000, 0, "")
		if r.Verdict != nat.Forward || d.dst != "10.77.0.5:50000" {
			t.Fatalf("active data SYN: %v to %s", r.Verdict, d.dst)
		}
		// The server's reply to EPRT is acknowledged in the client's
		// space after the shift.
		grow := uint32(len(s.payload) - len("EPRT |1|10.77.0.5|50000|\r\n"))
		a, _ := g.send(nat.Outside, srv, c.src, testutil.ACK, 501, 101+uint32(len(s.payload)), "200 EPRT command successful.\r\n")
		if want := 101 + uint32(len(s.payload)) - grow; a.ack != want {
			t.Errorf("ack %d, want %d", a.ack, want)
		}
	})
	t.Run("client inside, PASV", func(t *testing.T) {
		g := newNATRig(t)
		cli, srv := "10.77.0.5:40000", "198.18.1.1:21"
		c, _ := g.send(nat.Inside, cli, srv, testutil.SYN, 100, 0, "")
		g.send(nat.Outside, srv, c.src, testutil.SYN|testutil.ACK, 500, 101, "")
		s, _ := g.send(nat.Outside, srv, c.src, testutil.ACK, 501, 101, "227 Entering Passive Mode (198,18,1,1,195,80).\r\n")
		if s.payload != "227 Entering Passive Mode (198,18,1,1,195,80).\r\n" {
			t.Fatalf("payload %q", s.payload)
		}
		d, r := g.send(nat.Inside, "10.77.0.5:40001", "198.18.1.1:50000", testutil.SYN, 9000, 0, "")
		if r.Verdict != nat.Forward || d.src[:len("198.18.0.204:")] != "198.18.0.204:" {
			t.Fatalf("data SYN: %v from %s", r.Verdict, d.src)
		}
	})
}

// TestWithNATActiveFromPort20: the server inside opens every active data
// connection from its port 20 (RFC 959: the server's data port, L-1), and
// every one leaves from public port 20, not only the first.
func TestWithNATActiveFromPort20(t *testing.T) {
	g := newNATRig(t)
	cli, pub := "198.18.7.10:40000", "198.18.0.204:9091"
	g.send(nat.Outside, cli, pub, testutil.SYN, 100, 0, "")
	g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.SYN|testutil.ACK, 500, 101, "")
	seq := uint32(101)
	for i := 0; i < 3; i++ {
		cmd := fmt.Sprintf("PORT 198,18,7,10,195,%d\r\n", 80+i)
		g.send(nat.Outside, cli, pub, testutil.ACK, seq, 501, cmd)
		seq += uint32(len(cmd))
		d, r := g.send(nat.Inside, "10.77.0.226:20", fmt.Sprintf("198.18.7.10:%d", 195<<8|(80+i)), testutil.SYN, 7000+uint32(i)*100, 0, "")
		if r.Verdict != nat.Forward || d.src != "198.18.0.204:20" {
			t.Errorf("data connection %d: %v from %s, want 198.18.0.204:20", i, r.Verdict, d.src)
		}
	}
	if use := g.n.PoolUse(); len(use) != 0 && use[0].TCP != 0 {
		t.Errorf("pool use %+v: port 20 is shared, not claimed", use)
	}
}

// TestWithNATActiveReusedPort: a client inside that listens again on the
// data port of an active connection that has just closed (both FINs; its
// session lingers for the transitory timeout, holding the public port)
// gets a new public port, and the server's connection from its port 20
// to it reaches the client: the closed session, whose inside tuple the
// new one repeats, gives way, as a SYN reopens a closed tuple.
func TestWithNATActiveReusedPort(t *testing.T) {
	g := newNATRig(t)
	cli, srv := "10.77.0.5:40000", "198.18.7.10:9091"
	g.send(nat.Inside, cli, srv, testutil.SYN, 100, 0, "")
	g.send(nat.Outside, srv, "198.18.0.204:40000", testutil.SYN|testutil.ACK, 500, 101, "")
	seq := uint32(101)
	var public []string
	for i := 0; i < 2; i++ {
		cmd := "PORT 10,77,0,5,195,80\r\n"
		s, _ := g.send(nat.Inside, cli, srv, testutil.ACK, seq, 501, cmd)
		seq += uint32(len(cmd))
		var p1, p2 int
		if _, err := fmt.Sscanf(s.payload, "PORT 198,18,0,204,%d,%d\r\n", &p1, &p2); err != nil {
			t.Fatalf("PORT %d rewritten to %q", i, s.payload)
		}
		pub := fmt.Sprintf("198.18.0.204:%d", p1<<8|p2)
		public = append(public, pub)
		isn := 7000 + uint32(i)*1000
		d, r := g.send(nat.Outside, "198.18.7.10:20", pub, testutil.SYN, isn, 0, "")
		if r.Verdict != nat.Forward || d.dst != "10.77.0.5:50000" {
			t.Fatalf("data connection %d to %s: %v to %s, want 10.77.0.5:50000", i, pub, r.Verdict, d.dst)
		}
		g.send(nat.Inside, "10.77.0.5:50000", "198.18.7.10:20", testutil.SYN|testutil.ACK, 9000, isn+1, "")
		g.send(nat.Outside, "198.18.7.10:20", pub, testutil.ACK, isn+1, 9001, "")
		g.send(nat.Outside, "198.18.7.10:20", pub, testutil.FIN|testutil.ACK, isn+1, 9001, "")
		g.send(nat.Inside, "10.77.0.5:50000", "198.18.7.10:20", testutil.FIN|testutil.ACK, 9001, isn+2, "")
		g.send(nat.Outside, "198.18.7.10:20", pub, testutil.ACK, isn+2, 9002, "")
	}
	if public[0] == public[1] {
		t.Errorf("both data connections on %s: the first still holds it", public[0])
	}
	// A data connection not over is not ended for a new one.
	cmd := "PORT 10,77,0,5,195,80\r\n"
	s, _ := g.send(nat.Inside, cli, srv, testutil.ACK, seq, 501, cmd)
	var p1, p2 int
	fmt.Sscanf(s.payload, "PORT 198,18,0,204,%d,%d\r\n", &p1, &p2)
	third := fmt.Sprintf("198.18.0.204:%d", p1<<8|p2)
	g.send(nat.Outside, "198.18.7.10:20", third, testutil.SYN, 20000, 0, "")
	g.send(nat.Inside, "10.77.0.5:50000", "198.18.7.10:20", testutil.SYN|testutil.ACK, 30000, 20001, "")
	g.send(nat.Outside, "198.18.7.10:20", third, testutil.ACK, 20001, 30001, "")
	s, _ = g.send(nat.Inside, cli, srv, testutil.ACK, seq+uint32(len(cmd)), 501, cmd)
	fmt.Sscanf(s.payload, "PORT 198,18,0,204,%d,%d\r\n", &p1, &p2)
	fourth := fmt.Sprintf("198.18.0.204:%d", p1<<8|p2)
	if _, r := g.send(nat.Outside, "198.18.7.10:20", fourth, testutil.SYN, 40000, 0, ""); r.Verdict == nat.Forward || fourth == third {
		t.Errorf("a SYN to %s replaced the established data connection to %s: %v", fourth, third, r.Verdict)
	}
	if d, r := g.send(nat.Outside, "198.18.7.10:20", third, testutil.ACK, 20001, 30001, "x"); r.Verdict != nat.Forward || d.dst != "10.77.0.5:50000" {
		t.Errorf("the established data connection: %v to %s", r.Verdict, d.dst)
	}
}

// TestWithNATExpectationLimit: nine passive replies with no data
// connection: the ninth is rewritten like the first, the session keeps
// eight expectations, and the public ports of the replaced ones go back
// to the pool.
func TestWithNATExpectationLimit(t *testing.T) {
	g := newNATRig(t)
	cli, pub := "198.18.7.10:40000", "198.18.0.204:9091"
	g.send(nat.Outside, cli, pub, testutil.SYN, 100, 0, "")
	c, r := g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.SYN|testutil.ACK, 500, 101, "")
	_ = c
	seq := uint32(501)
	for i := 0; i < 9; i++ {
		l := fmt.Sprintf("227 Entering Passive Mode (10,77,0,226,117,%d).\r\n", 48+i)
		s, _ := g.send(nat.Inside, "10.77.0.226:2021", cli, testutil.ACK, seq, 101, l)
		if !strings.Contains(s.payload, "(198,18,0,204,") {
			t.Fatalf("reply %d: %q", i, s.payload)
		}
		seq += uint32(len(l))
	}
	if n := g.n.Table().ExpectationCount(r.Session, r.Gen); n != DefaultMaxExpectations {
		t.Errorf("%d expectations, want %d", n, DefaultMaxExpectations)
	}
	if use := g.n.PoolUse(); len(use) != 1 || use[0].TCP != DefaultMaxExpectations {
		t.Errorf("pool use %+v, want %d TCP ports", use, DefaultMaxExpectations)
	}
	if st := g.ftp.Stats().Total; st.Replaced != 1 || st.ExpectCreated != 9 {
		t.Errorf("stats %+v", st)
	}
	// The newest expectation works; the oldest is gone.
	if _, r := g.send(nat.Outside, "198.18.7.10:40001", fmt.Sprintf("198.18.0.204:%d", 117<<8|56), testutil.SYN, 9000, 0, ""); r.Verdict != nat.Forward {
		t.Errorf("newest expectation: %v", r.Verdict)
	}
	if _, r := g.send(nat.Outside, "198.18.7.10:40002", fmt.Sprintf("198.18.0.204:%d", 117<<8|48), testutil.SYN, 9100, 0, ""); r.Verdict == nat.Forward {
		t.Error("the replaced expectation still matched")
	}
}
