package nat

import (
	"testing"

	"github.com/fastnat/fastnat/internal/testutil"
)

// TestSYNAfterMissedClose: both endpoints closed a connection but
// fastnat saw neither FIN nor RST (lost, or taken by another path), so
// the session is still ESTABLISHED when the client opens a new
// connection from the same port to the same server. The SYN passes and
// changes nothing (it may be a forgery on a live connection); the
// server, which has no connection, answers with a SYN/ACK that
// acknowledges that SYN — out of the old connection's window — and
// fastnat, which remembered the ignored SYN's end, takes the connection
// up again from there, as conntrack does. Before, the SYN/ACK was dropped
// as out of window and the tuple stayed blocked for tcp_established.
// A SYN/ACK that acknowledges anything else is still dropped.
func TestSYNAfterMissedClose(t *testing.T) {
	cases := []struct {
		name                    string
		from                    Side
		client, server, server2 string
	}{
		{"outbound EIM", Inside, hostA + ":40000", remote + ":9091", remote + ":9091"},
		{"nat server", Outside, remote + ":40000", pubEIM + ":9091", srvIn + ":2021"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t, testRules(t))
			r, d := g.send(c.from, testutil.TCP(t, c.client, c.server, testutil.SYN, 1000, 0, nil))
			if r.Verdict != Forward {
				t.Fatalf("SYN: %v", r.Verdict)
			}
			back := d.Src()
			g.mustForward(other(c.from), testutil.TCP(t, c.server2, back, testutil.SYN|testutil.ACK, 5000, 1001, nil))
			g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.ACK, 1001, 5001, nil))
			// Both ends close; fastnat sees none of it. A SYN/ACK before
			// any new SYN is refused.
			if v := g.process(other(c.from), testutil.TCP(t, c.server2, back, testutil.SYN|testutil.ACK, 70000, 90001, nil)).Verdict; v != DropTCPOutOfWindow {
				t.Fatalf("SYN/ACK with no SYN ignored before it: %v, want %v", v, DropTCPOutOfWindow)
			}
			s := g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.SYN, 90000, 0, nil))
			if s.Session != r.Session || s.Gen != r.Gen {
				t.Fatalf("the new SYN made session %d/%d, want the live one %d/%d", s.Session, s.Gen, r.Session, r.Gen)
			}
			if st := g.state(r); TCPStateName(st) != "ESTABLISHED" {
				t.Fatalf("after the SYN: %s, want it ignored (ESTABLISHED)", TCPStateName(st))
			}
			if v := g.process(other(c.from), testutil.TCP(t, c.server2, back, testutil.SYN|testutil.ACK, 70000, 90002, nil)).Verdict; v != DropTCPOutOfWindow {
				t.Fatalf("SYN/ACK acknowledging another number: %v, want %v", v, DropTCPOutOfWindow)
			}
			g.mustForward(other(c.from), testutil.TCP(t, c.server2, back, testutil.SYN|testutil.ACK, 70000, 90001, nil))
			if st := g.state(r); TCPStateName(st) != "SYN_RECV" {
				t.Fatalf("after the SYN/ACK: %s, want SYN_RECV", TCPStateName(st))
			}
			g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.ACK, 90001, 70001, nil))
			if st := g.state(r); TCPStateName(st) != "ESTABLISHED" {
				t.Fatalf("after the handshake: %s, want ESTABLISHED", TCPStateName(st))
			}
			s, d = g.send(other(c.from), testutil.TCP(t, c.server2, back, testutil.ACK|testutil.PSH, 70001, 90001, []byte("hello\r\n")))
			if s.Verdict != Forward || string(d.TCP.Payload) != "hello\r\n" {
				t.Fatalf("data on the new connection: %v", s.Verdict)
			}
			g.mustForward(c.from, testutil.TCP(t, c.client, c.server, testutil.FIN|testutil.ACK, 90001, 70008, nil))
			g.mustForward(other(c.from), testutil.TCP(t, c.server2, back, testutil.FIN|testutil.ACK, 70008, 90002, nil))
			if st := g.state(r); !tcpOver(st) {
				t.Fatalf("after a FIN each way: %s, want over", TCPStateName(st))
			}
		})
	}
}
