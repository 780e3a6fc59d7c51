package nat

import (
	"net/netip"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// TestResetBeforeHandshakeEndsSession: a connection reset before its
// handshake completed never was, and its session ends as the RST passes:
// a SYN to a closed port, as most probes of a port scan are (conntrack
// deletes such a connection at once: "if only reply is a RST ... delete
// the conntrack immediately"), or a SYN scan's reset of an open port's
// SYN/ACK (conntrack keeps that one 10 s in CLOSE). A RST once the
// connection is established leaves the session CLOSED for its timeout.
// Before, every port an inside host scanned held a CLOSED session for
// the transitory timeout (4 minutes): `nmap -p-` from one host filled a
// 64 Ki table. The RST itself is translated as any other (gopacket
// checks it), and what the session held is given back: the host's next
// SYN gets a new session.
func TestResetBeforeHandshakeEndsSession(t *testing.T) {
	// Handshake stages the connection reaches before the RST.
	const (
		synOnly = iota
		synAcked
		established
	)
	cases := []struct {
		name string
		from Side
		// client and server are the connection's ends as the client
		// sees them; server2 the server's as it sees itself.
		client, server, server2 string
		stage                   int
		rstFromServer           bool // the server sends the RST (else the client)
		ends                    bool
	}{
		{"outbound closed port", Inside, hostA + ":40000", remote + ":22", remote + ":22", synOnly, true, true},
		{"outbound per-session closed port", Inside, hostC + ":40000", remote + ":22", remote + ":22", synOnly, true, true},
		{"outbound connect given up", Inside, hostA + ":40001", remote + ":22", remote + ":22", synOnly, false, true},
		{"outbound open port, SYN scan resets", Inside, hostA + ":40002", remote + ":8080", remote + ":8080", synAcked, false, true},
		{"outbound server resets its SYN/ACK", Inside, hostA + ":40003", remote + ":8080", remote + ":8080", synAcked, true, true},
		{"outbound established, client resets", Inside, hostA + ":40004", remote + ":8080", remote + ":8080", established, false, false},
		{"outbound established, server resets", Inside, hostC + ":40005", remote + ":8080", remote + ":8080", established, true, false},
		{"nat server closed port", Outside, remote + ":40000", pubEIM + ":8080", srvIn + ":80", synOnly, true, true},
		{"nat server, SYN scan resets", Outside, remote + ":40001", pubEIM + ":8080", srvIn + ":80", synAcked, false, true},
		{"nat server established, server resets", Outside, remote + ":40002", pubEIM + ":8080", srvIn + ":80", established, true, false},
	}
	rules := testRules(t)
	rules.Servers = append(rules.Servers, Server{Proto: packet.ProtoTCP,
		Public: netip.MustParseAddrPort(pubEIM + ":8080"), Inside: netip.MustParseAddrPort(srvIn + ":80")})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, rules)
			var ended []flowtable.Session
			g.n.OnSessionEnd(func(id, gen uint32, s flowtable.Session) { ended = append(ended, s) })
			const isnC, isnS = 1000, 5000
			r, d := g.send(c.from, testutil.TCP(t, c.client, c.server, testutil.SYN, isnC, 0, nil))
			if r.Verdict != Forward {
				t.Fatalf("SYN: %v", r.Verdict)
			}
			back := d.Src() // the client as the server sees it
			if c.stage >= synAcked {
				g.mustForward(other(c.from), testutil.TCP(t, c.server2, back, testutil.SYN|testutil.ACK, isnS, isnC+1, nil))
			}
			if c.stage >= established {
				g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.ACK, isnC+1, isnS+1, nil))
			}
			rst, from := testutil.TCP(t, c.client, c.server, testutil.RST, isnC+1, 0, nil), c.from
			if c.rstFromServer {
				seq := uint32(0)
				if c.stage >= synAcked {
					seq = isnS + 1
				}
				rst, from = testutil.TCP(t, c.server2, back, testutil.RST|testutil.ACK, seq, isnC+1, nil), other(c.from)
			}
			rr, rd := g.send(from, rst)
			if rr.Verdict != Forward {
				t.Fatalf("RST: %v", rr.Verdict)
			}
			if !rd.TCP.RST {
				t.Fatalf("forwarded %v, want the RST", rd.TCP)
			}
			want := c.client
			if from == c.from {
				want = c.server2
			}
			if rd.Dst() != want {
				t.Fatalf("RST sent to %s, want %s", rd.Dst(), want)
			}
			live := g.table.Valid(r.Session, r.Gen)
			if live == c.ends {
				t.Fatalf("session live after the RST: %v, want %v", live, !c.ends)
			}
			if !c.ends {
				if st := g.state(r); st&tcpStateMask != tcpClosed {
					t.Fatalf("state %s, want CLOSED", TCPStateName(st))
				}
				return
			}
			if len(ended) != 1 || g.table.Stats().Sessions != 0 {
				t.Fatalf("%d ends told, %d sessions left; want 1 and 0", len(ended), g.table.Stats().Sessions)
			}
			// The host's next SYN on the same tuple opens a new session.
			r2, _ := g.send(c.from, testutil.TCP(t, c.client, c.server, testutil.SYN, isnC+7777, 0, nil))
			if r2.Verdict != Forward || (r2.Session == r.Session && r2.Gen == r.Gen) {
				t.Fatalf("next SYN: %v, session %d gen %d (the ended one was %d gen %d)", r2.Verdict, r2.Session, r2.Gen, r.Session, r.Gen)
			}
		})
	}
}

// TestResetBeforeHandshakeEndsALGSession: a control connection the FTP
// ALG inspects (port 9091 here, 21 by default) ends the same way when a
// RST answers its SYN, and the RST leaves past the ALG (Divert false),
// which would find the session gone and drop it.
func TestResetBeforeHandshakeEndsALGSession(t *testing.T) {
	rules := testRules(t)
	rules.FTPALG = true
	g := newRig(t, rules)
	r, _ := g.send(Outside, testutil.TCP(t, remote+":40000", pubEIM+":9091", testutil.SYN, 1000, 0, nil))
	if r.Verdict != Forward || !r.Divert {
		t.Fatalf("SYN: %v, divert %v; want a control connection", r.Verdict, r.Divert)
	}
	rr, rd := g.send(Inside, testutil.TCP(t, srvIn+":2021", remote+":40000", testutil.RST|testutil.ACK, 0, 1001, nil))
	if rr.Verdict != Forward || rr.Divert || rd.Src() != pubEIM+":9091" {
		t.Fatalf("RST: %v, divert %v, from %v", rr.Verdict, rr.Divert, rd)
	}
	if g.table.Valid(r.Session, r.Gen) {
		t.Fatal("the control session outlived the RST")
	}
}

// TestSYNWithDataOpens: a SYN carrying data (hping3 -S -d, nmap
// --data-length, TCP Fast Open) opens its connection whether the server
// acknowledges only ISN+1 (it did not take the data: every server
// without Fast Open) or the data too; before, only the latter passed and
// the usual SYN/ACK was dropped as out of window. Both directions are
// translated (gopacket decodes them, checksums verified) and the
// connection is established by the client's ACK.
func TestSYNWithDataOpens(t *testing.T) {
	data := make([]byte, 100)
	for _, taken := range []bool{false, true} {
		g := newRig(t, testRules(t))
		const isnC, isnS = 1000, 5000
		r, d := g.send(Inside, testutil.TCP(t, hostA+":40000", remote+":8080", testutil.SYN, isnC, 0, data))
		if r.Verdict != Forward || len(d.TCP.Payload) != len(data) {
			t.Fatalf("SYN: %v", r.Verdict)
		}
		pub := d.Src()
		ack := uint32(isnC + 1)
		if taken {
			ack += uint32(len(data))
		}
		rr, rd := g.send(Outside, testutil.TCP(t, remote+":8080", pub, testutil.SYN|testutil.ACK, isnS, ack, nil))
		if rr.Verdict != Forward || rd.Dst() != hostA+":40000" || !rd.TCP.SYN || !rd.TCP.ACK || rd.TCP.Ack != ack {
			t.Fatalf("data taken %v: SYN/ACK acknowledging %d: %v %v", taken, ack, rr.Verdict, rd)
		}
		g.mustForward(Inside, testutil.TCP(t, hostA+":40000", remote+":8080", testutil.ACK, ack, isnS+1, nil))
		if st := g.state(r); st&tcpStateMask != tcpEstablished {
			t.Fatalf("data taken %v: state %s, want ESTABLISHED", taken, TCPStateName(st))
		}
	}
}

// TestResetSessionAgesWithClosedTimeout: a connection reset once
// established keeps its session CLOSED for the tcp_closed timeout (10 s
// by default, conntrack's CLOSE), not the transitory 4 minutes; one
// closed by a FIN each way keeps the transitory timeout (conntrack's
// TIME_WAIT is 2 minutes). The RST is translated as any segment
// (gopacket checks it), and a SYN on the reset tuple within the timeout
// opens a new connection.
func TestResetSessionAgesWithClosedTimeout(t *testing.T) {
	const isnC, isnS = 1000, 5000
	open := func(g *rig, client string) (Result, string) {
		r, d := g.send(Inside, testutil.TCP(t, client, remote+":8080", testutil.SYN, isnC, 0, nil))
		if r.Verdict != Forward {
			t.Fatalf("SYN: %v", r.Verdict)
		}
		g.mustForward(Outside, testutil.TCP(t, remote+":8080", d.Src(), testutil.SYN|testutil.ACK, isnS, isnC+1, nil))
		g.mustForward(Inside, testutil.TCP(t, client, remote+":8080", testutil.ACK, isnC+1, isnS+1, nil))
		return r, d.Src()
	}
	closed := DefaultTimeouts.TCPClosed / time.Second
	g := newRig(t, testRules(t))
	r, pub := open(g, hostA+":40000")
	rr, rd := g.send(Outside, testutil.TCP(t, remote+":8080", pub, testutil.RST|testutil.ACK, isnS+1, isnC+1, nil))
	if rr.Verdict != Forward || !rd.TCP.RST || rd.Dst() != hostA+":40000" {
		t.Fatalf("RST: %v %v", rr.Verdict, rd)
	}
	if st := g.state(r); st&tcpStateMask != tcpClosed {
		t.Fatalf("state %s, want CLOSED", TCPStateName(st))
	}
	// A FIN each way on another connection: transitory.
	f, fpub := open(g, hostA+":40001")
	g.mustForward(Inside, testutil.TCP(t, hostA+":40001", remote+":8080", testutil.FIN|testutil.ACK, isnC+1, isnS+1, nil))
	g.mustForward(Outside, testutil.TCP(t, remote+":8080", fpub, testutil.FIN|testutil.ACK, isnS+1, isnC+2, nil))
	g.mustForward(Inside, testutil.TCP(t, hostA+":40001", remote+":8080", testutil.ACK, isnC+2, isnS+2, nil))
	g.expire(flowtable.Time(closed) - 1)
	if !g.table.Valid(r.Session, r.Gen) {
		t.Fatalf("reset session gone before tcp_closed (%ds)", closed)
	}
	g.expire(2)
	if g.table.Valid(r.Session, r.Gen) {
		t.Fatalf("reset session outlived tcp_closed (%ds)", closed)
	}
	if !g.table.Valid(f.Session, f.Gen) {
		t.Fatal("FIN-closed session gone with tcp_closed; want tcp_transitory")
	}
	// Reset again, then a SYN on the tuple within tcp_closed reopens it.
	g2 := newRig(t, testRules(t))
	r2, pub2 := open(g2, hostA+":40002")
	g2.mustForward(Inside, testutil.TCP(t, hostA+":40002", remote+":8080", testutil.RST, isnC+1, 0, nil))
	g2.expire(1)
	n, nd := g2.send(Inside, testutil.TCP(t, hostA+":40002", remote+":8080", testutil.SYN, isnC+9999, 0, nil))
	if n.Verdict != Forward || nd.Src() != pub2 || (n.Session == r2.Session && n.Gen == r2.Gen) {
		t.Fatalf("SYN after the RST: %v from %s (was %s), session %d/%d (was %d/%d)", n.Verdict, nd.Src(), pub2, n.Session, n.Gen, r2.Session, r2.Gen)
	}
	if st := g2.state(n); st&tcpStateMask != tcpSynSent {
		t.Fatalf("reopened state %s, want SYN_SENT", TCPStateName(st))
	}
}
