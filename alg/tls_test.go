package alg

import (
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// conversation drives one control connection through a harness in order,
// each segment acknowledging everything the other side sent.
type conversation struct {
	t    *testing.T
	h    *harness
	seq  [2]uint32 // the next original sequence number of each direction
	sent [2]uint32 // the next sequence number each receiver sees
}

func newConversation(t *testing.T, sc scenario) *conversation {
	h := newHarness(t, sc, Config{})
	h.handshake(1000, 5000)
	return &conversation{t: t, h: h, seq: [2]uint32{1001, 5001}, sent: [2]uint32{1001, 5001}}
}

// send passes payload p from direction dir through the ALG and returns
// what it forwarded (or sent back).
func (c *conversation) send(dir flowtable.Dir, p string) (string, Verdict) {
	c.t.Helper()
	g, v := c.h.process(dir, c.h.frame(dir, testutil.ACK|testutil.PSH, c.seq[dir], c.sent[1-dir], []byte(p)))
	c.seq[dir] += uint32(len(p))
	if v == Forward {
		c.sent[dir] = g.seq + uint32(len(g.payload))
	}
	return g.payload, v
}

// TestTLSPassesUntouched: once the server accepts AUTH (234, RFC 4217),
// the control connection is TLS both ways: the ALG passes every byte on
// as it comes and holds none back. Before, a TLS record that ended in a
// line feed and a byte that may start a PORT or a 227 (1 in ~13,000
// records) had that byte held for the rest of a line that never came, and
// the FTPS session hung.
func TestTLSPassesUntouched(t *testing.T) {
	orig, reply := flowtable.Orig, flowtable.Reply
	for _, c := range []struct {
		name string
		auth []string // the server's replies to AUTH TLS, segment by segment
	}{
		{"one line", []string{"234 Proceed with negotiation.\r\n"}},
		{"multi-line", []string{"234-Hello\r\n 227 text\r\n", "234 AUTH TLS OK.\r\n"}},
		{"cut", []string{"23", "4 Proceed", " with negotiation.\r\n"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cv := newConversation(t, clientInside(t))
			cv.send(orig, "AUTH TLS\r\n")
			for _, r := range c.auth {
				cv.send(reply, r)
			}
			for _, s := range []struct {
				dir flowtable.Dir
				p   string
			}{
				{orig, "\x16\x03\x01\x00\x05\x01\xff\nP"},
				{reply, "\x16\x03\x03\x00\x05\x02\n2"},
				{reply, "27 "},
				{orig, "\x17\x03\x03\x00\x10\n"},
				{orig, "PORT 10,0,0,5,195,80\r\n"},
				{reply, "227 Entering Passive Mode (10,0,0,5,195,80)\r\n"},
			} {
				if got, v := cv.send(s.dir, s.p); v != Forward || got != s.p {
					t.Fatalf("%v %q: %v %q, want it forwarded untouched", s.dir, s.p, v, got)
				}
			}
			st := cv.h.ftp.Stats().Total
			if st.TLS != 1 || st.Commands != 0 || len(cv.h.nat.calls) != 0 {
				t.Fatalf("tls %d, commands %d, expectations %d; want 1, 0, 0", st.TLS, st.Commands, len(cv.h.nat.calls))
			}
		})
	}
}

// TestAuthRefusedStillInspected: a server that refuses AUTH (or a 234
// that is text inside another multi-line reply) leaves the connection in
// clear text, and the ALG goes on rewriting it.
func TestAuthRefusedStillInspected(t *testing.T) {
	for _, replies := range [][]string{
		{"534 Local policy on server does not allow TLS.\r\n"},
		{"211-Status\r\n", "234 is not a reply here\r\n", "211 End\r\n"},
	} {
		cv := newConversation(t, clientInside(t))
		cv.send(flowtable.Orig, "AUTH TLS\r\n")
		for _, r := range replies {
			cv.send(flowtable.Reply, r)
		}
		if got, _ := cv.send(flowtable.Orig, "PORT 10,0,0,5,195,80\r\n"); got == "PORT 10,0,0,5,195,80\r\n" {
			t.Fatalf("after %q: PORT not rewritten", replies)
		}
		if st := cv.h.ftp.Stats().Total; st.TLS != 0 || st.Rewritten != 1 {
			t.Fatalf("after %q: tls %d, rewritten %d; want 0, 1", replies, st.TLS, st.Rewritten)
		}
	}
}
