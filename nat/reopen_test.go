package nat

import (
	"fmt"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// TestReopenIsANewSession: a SYN on a tuple whose connection is over —
// closed by a FIN each way, or reset — while its session lingers for the
// transitory timeout starts a new session, as conntrack kills a TIME_WAIT
// or CLOSE entry and makes a new one for the SYN: the old session ends
// (what it held is released, and its end is told, OnSessionEnd) and the
// new one has a generation of its own. Whoever keeps state by session —
// the FTP ALG's sequence corrections of a control connection — therefore
// never applies the old connection's to the new one. A client whose
// ephemeral port comes round again reconnects this way to the same
// server; an FTP control connection reopened on its old session kept the
// ALG's stream of the closed one, and every segment of the new
// connection was moved to the old sequence numbers, which its server
// discarded: connected, then nothing (not even the client's FIN) for as
// long as the session lived.
//
// A SYN on a connection not over is never taken for a new one: it passes
// and changes nothing (tcpStep).
func TestReopenIsANewSession(t *testing.T) {
	type side struct {
		name           string
		from           Side
		client, server string // the client's and server's endpoints as the client sees them
		server2        string // the server's endpoint as the server sees itself (nat server)
	}
	cases := []side{
		{"outbound EIM", Inside, hostA + ":40000", remote + ":9091", ""},
		{"outbound own port", Inside, hostC + ":40000", remote + ":9091", ""},
		{"nat server", Outside, remote + ":40000", pubEIM + ":9091", srvIn + ":2021"},
	}
	closes := map[string]func(g *rig, c side, back string, isnC, isnS uint32){
		"FIN each way": func(g *rig, c side, back string, isnC, isnS uint32) {
			g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.FIN|testutil.ACK, isnC+1, isnS+1, nil))
			g.mustForward(other(c.from), testutil.TCP(t, c.server2, back, testutil.FIN|testutil.ACK, isnS+1, isnC+2, nil))
			g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.ACK, isnC+2, isnS+2, nil))
		},
		"RST": func(g *rig, c side, back string, isnC, isnS uint32) {
			g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.RST|testutil.ACK, isnC+1, isnS+1, nil))
		},
	}
	for _, c := range cases {
		if c.server2 == "" {
			c.server2 = c.server
		}
		for name, close := range closes {
			t.Run(fmt.Sprintf("%s/%s", c.name, name), func(t *testing.T) {
				g := newRig(t, testRules(t))
				var ended []flowtable.Session
				g.n.OnSessionEnd(func(id, gen uint32, s flowtable.Session) { ended = append(ended, s) })
				// open runs a handshake and returns the session and the
				// client's endpoint as the server sees it.
				open := func(isnC, isnS uint32) (Result, string) {
					r, d := g.send(c.from, testutil.TCP(t, c.client, c.server, testutil.SYN, isnC, 0, nil))
					if r.Verdict != Forward {
						t.Fatalf("SYN: %v", r.Verdict)
					}
					back := d.Src()
					g.mustForward(other(c.from), testutil.TCP(t, c.server2, back, testutil.SYN|testutil.ACK, isnS, isnC+1, nil))
					g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.ACK, isnC+1, isnS+1, nil))
					return r, back
				}
				first, back := open(1000, 5000)
				close(g, c, back, 1000, 5000)
				if st := g.state(first); !tcpOver(st) {
					t.Fatalf("closed connection: state %s, want over", TCPStateName(st))
				}
				second, back := open(90000, 70000)
				if second.Session == first.Session && second.Gen == first.Gen {
					t.Fatal("the new connection reopened the closed one's session")
				}
				if g.table.Valid(first.Session, first.Gen) {
					t.Error("the closed connection's session lives on beside the new one")
				}
				if len(ended) != 1 || ended[0].Key[flowtable.Orig] != g.session(second).Key[flowtable.Orig] {
					t.Errorf("sessions ended: %d, want the closed one", len(ended))
				}
				// The new connection carries data both ways and closes.
				s, d := g.send(other(c.from), testutil.TCP(t, c.server2, back, testutil.ACK|testutil.PSH, 70001, 90001, []byte("220 ready\r\n")))
				if s.Verdict != Forward || s.Session != second.Session || s.Gen != second.Gen || string(d.TCP.Payload) != "220 ready\r\n" {
					t.Fatalf("the server's banner: %v, session %d/%d", s.Verdict, s.Session, s.Gen)
				}
				g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.FIN|testutil.ACK, 90001, 70012, nil))
				if st := g.state(second); TCPStateName(st) != "FIN_WAIT" {
					t.Errorf("after the client's FIN: %s", TCPStateName(st))
				}
			})
		}
	}
}

// TestSYNOnLiveConnection: a SYN on a tuple whose connection is not over
// (established, or closed one way only) passes and leaves the session as
// it was. The peer that still holds the connection answers it with a
// challenge ACK (RFC 5961 §4.2), which passes; the SYN's sender, which
// holds none, answers that with a RST at the acknowledged number (RFC
// 9293 §3.10.7.3), inside the window: the connection is over, and the
// SYN's retransmission gets a session of its own.
func TestSYNOnLiveConnection(t *testing.T) {
	g := newRig(t, testRules(t))
	client, server := hostA+":40000", remote+":9091"
	r, d := g.send(Inside, testutil.TCP(t, client, server, testutil.SYN, 1000, 0, nil))
	back := d.Src()
	g.mustForward(Outside, testutil.TCP(t, server, back, testutil.SYN|testutil.ACK, 5000, 1001, nil))
	g.mustForward(Inside, testutil.TCP(t, client, server, testutil.ACK, 1001, 5001, nil))
	g.mustForward(Inside, testutil.TCP(t, client, server, testutil.FIN|testutil.ACK, 1001, 5001, nil))
	s := g.process(Inside, testutil.TCP(t, client, server, testutil.SYN, 90000, 0, nil))
	if s.Verdict != Forward || s.Session != r.Session || s.Gen != r.Gen {
		t.Fatalf("SYN on a half-closed connection: %v, session %d/%d, want the same %d/%d", s.Verdict, s.Session, s.Gen, r.Session, r.Gen)
	}
	if st := g.state(r); TCPStateName(st) != "FIN_WAIT" {
		t.Errorf("state %s after the SYN, want FIN_WAIT", TCPStateName(st))
	}
	g.mustForward(Outside, testutil.TCP(t, server, back, testutil.ACK, 5001, 1002, nil)) // the challenge ACK
	g.mustForward(Inside, testutil.TCP(t, client, server, testutil.RST, 1002, 0, nil))
	if st := g.state(r); TCPStateName(st) != "CLOSED" {
		t.Fatalf("state %s after the RST, want CLOSED", TCPStateName(st))
	}
	s, d = g.send(Inside, testutil.TCP(t, client, server, testutil.SYN, 90000, 0, nil))
	if s.Verdict != Forward || s.Session == r.Session && s.Gen == r.Gen {
		t.Fatalf("the SYN again: %v, session %d/%d", s.Verdict, s.Session, s.Gen)
	}
	g.mustForward(Outside, testutil.TCP(t, server, d.Src(), testutil.SYN|testutil.ACK, 70000, 90001, nil))
}

// mustForward runs frame through the engine and fails the test unless it
// is forwarded.
func (g *rig) mustForward(from Side, frame []byte) Result {
	g.tb.Helper()
	r := g.process(from, frame)
	if r.Verdict != Forward {
		g.tb.Fatalf("%v", r.Verdict)
	}
	return r
}

// state returns the TCP state of a forwarded result's session, which
// must be live.
func (g *rig) state(r Result) uint8 {
	g.tb.Helper()
	g.session(r)
	st, _ := g.table.State(r.Session)
	return st
}

func other(s Side) Side {
	if s == Inside {
		return Outside
	}
	return Inside
}
