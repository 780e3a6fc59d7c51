package alg

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// back returns the "addr:port" source and destination of a frame the ALG
// sends back to the sender of direction dir: the sender's own view of the
// connection, before translation.
func (sc scenario) back(dir flowtable.Dir) (string, string) {
	t := sc.key[dir].Reverse()
	return ep(t.SrcAddr, t.SrcPort), ep(t.DstAddr, t.DstPort)
}

// tsOpt is a Timestamps option (with the two NOPs Linux puts before it).
func tsOpt(val, ecr uint32) []layers.TCPOption {
	d := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, val), ecr)
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: d},
	}
}

// checkBack decodes a frame back to the sender of direction dir and checks
// its addresses, sequence numbers, flags and payload.
func (h *harness) checkBack(fr []byte, dir flowtable.Dir, seq, ack uint32, flags int, payload string) seg {
	h.tb.Helper()
	s := decodeSeg(h.tb, fr)
	src, dst := h.sc.back(dir)
	if s.src != src || s.dst != dst {
		h.tb.Errorf("back frame %s -> %s, want %s -> %s", s.src, s.dst, src, dst)
	}
	if s.seq != seq || s.ack != ack || s.flags != flags || s.payload != payload {
		h.tb.Errorf("back frame seq %d ack %d flags %#x %q, want seq %d ack %d flags %#x %q",
			s.seq, s.ack, s.flags, s.payload, seq, ack, flags, payload)
	}
	return s
}

// TestPolicy: a command or reply the policy forbids is never passed on
// and gets the client a clean failure at once: a PORT or EPRT is answered
// with a 500 reply from the server's side, a 227 or 229 becomes a 425
// reply; no expectation is made; it is counted and logged once, and its
// retransmission is answered the same way.
func TestPolicy(t *testing.T) {
	refused := func(c Counters) uint64 { return c.Refused }
	tests := []struct {
		name    string
		sc      func(testing.TB) scenario
		cfg     Config
		dir     flowtable.Dir
		in      string
		verdict Verdict
		out     string // what the client gets
		calls   int
		count   func(Counters) uint64
	}{
		{"PORT to a third host refused", clientInside, Config{}, flowtable.Orig,
			"PORT 192,0,2,1,195,80\r\n", Back, string(messages[msgPORTRefused]), 0, refused},
		{"EPRT to a third host refused", serverInside, Config{}, flowtable.Orig,
			"EPRT |1|198.18.9.9|50000|\r\n", Back, string(messages[msgEPRTRefused]), 0, refused},
		{"227 naming another host refused", serverInside, Config{}, flowtable.Reply,
			"227 Entering Passive Mode (10,0,0,6,195,80)\r\n", Forward, string(messages[msgPasvRefused]) + "\r\n", 0, refused},
		{"third host allowed", clientInside, Config{AllowThirdParty: true}, flowtable.Orig,
			"PORT 192,0,2,1,195,80\r\n", Forward, "PORT 192,0,2,1,195,80\r\n", 1, func(c Counters) uint64 { return c.ExpectCreated }},
		{"privileged port refused", clientInside, Config{}, flowtable.Orig,
			"PORT 10,0,0,5,0,22\r\n", Back, string(messages[msgPORTRefused]), 0, refused},
		{"privileged port refused even for a third host allowed", clientInside, Config{AllowThirdParty: true}, flowtable.Orig,
			"PORT 192,0,2,1,0,25\r\n", Back, string(messages[msgPORTRefused]), 0, refused},
		{"229 privileged port refused", serverInside, Config{}, flowtable.Reply,
			"229 Entering Extended Passive Mode (|||22|)\n", Forward, string(messages[msgPasvRefused]) + "\n", 0, refused},
		{"malformed passes and counts", clientInside, Config{}, flowtable.Orig,
			"PORT 10,0,0,5,195,999\r\n", Forward, "PORT 10,0,0,5,195,999\r\n", 0, func(c Counters) uint64 { return c.ParseFailures }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.sc(t), tc.cfg)
			h.handshake(isnC, isnS)
			isn, peer := isnOf(tc.dir), isnOf(1-tc.dir)
			var first []byte
			for rep := 0; rep < 2; rep++ {
				fr := h.frame(tc.dir, testutil.ACK|testutil.PSH, isn+1, peer+1, []byte(tc.in))
				it := h.run(tc.dir, fr)
				if it.Verdict != tc.verdict {
					t.Fatalf("verdict %v, want %v", it.Verdict, tc.verdict)
				}
				if tc.verdict == Back {
					// From the server, where its stream stands, acknowledging
					// the refused line.
					h.checkBack(it.Buf, tc.dir, peer+1, isn+1+uint32(len(tc.in)), testutil.ACK|testutil.PSH, tc.out)
				} else if s := decodeSeg(t, it.Buf); s.payload != tc.out {
					t.Errorf("payload %q, want %q", s.payload, tc.out)
				}
				if rep == 0 {
					first = append([]byte(nil), it.Buf...)
				} else if string(first) != string(it.Buf) {
					t.Errorf("retransmission answered differently:\n%x\n%x", first, it.Buf)
				}
			}
			if len(h.nat.calls) != tc.calls {
				t.Errorf("%d expectations, want %d", len(h.nat.calls), tc.calls)
			}
			st := h.ftp.Stats()
			if got := tc.count(st.Total); got != 1 {
				t.Errorf("counter %d, want 1 (%+v)", got, st.Total)
			}
			if len(st.Entries) != 1 || st.Entries[0].Entry != h.sc.entry || tc.count(st.Entries[0].Counters) != 1 {
				t.Errorf("per-entry counters %+v", st.Entries)
			}
			if own, ok := h.ftp.SessionCounters(h.id, 1); !ok || tc.count(own) != 1 {
				t.Errorf("session counters %+v (%v)", own, ok)
			}
			if tc.count(st.Total) == st.Total.Refused && h.logs.n != 1 {
				t.Errorf("%d log lines, want 1", h.logs.n)
			}
		})
	}
}

// TestRefusedPORTStreams follows both streams after a refused PORT: the
// server never sees it, the client's next command reaches the server where
// the PORT would have been, the server's next reply reaches the client
// after the answer, and acknowledgements map back both ways — the deleted
// line counts as received only once the client has its answer.
func TestRefusedPORTStreams(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	port := "PORT 192,0,2,1,195,80\r\n"
	ans := string(messages[msgPORTRefused])
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(port)))
	// The server, before the client got the answer, acknowledges nothing
	// new: the PORT is not acknowledged past its start.
	s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, nil))
	if s.ack != isnC+1 || s.seq != isnS+1+uint32(len(ans)) {
		t.Errorf("server's ack: seq +%d ack +%d, want +%d +0", s.seq-isnS-1, s.ack-isnC-1, len(ans))
	}
	// The client acknowledges the answer and sends its next command.
	pasv := "PASV\r\n"
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1+uint32(len(port)), isnS+1+uint32(len(ans)), []byte(pasv)))
	if s.seq != isnC+1 || s.ack != isnS+1 || s.payload != pasv {
		t.Errorf("next command at +%d ack +%d %q, want +0 +0", s.seq-isnC-1, s.ack-isnS-1, s.payload)
	}
	// The server's reply to it goes after the answer; its acknowledgement
	// of PASV covers the PORT now.
	reply := "227 Entering Passive Mode (198,18,1,1,195,80).\r\n"
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK|testutil.PSH, isnS+1, isnC+1+uint32(len(pasv)), []byte(reply)))
	if s.seq != isnS+1+uint32(len(ans)) || s.ack != isnC+1+uint32(len(port)+len(pasv)) {
		t.Errorf("reply at +%d ack +%d, want +%d +%d", s.seq-isnS-1, s.ack-isnC-1, len(ans), len(port)+len(pasv))
	}
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(len(port)+len(pasv)), isnS+1+uint32(len(ans)+len(reply)), nil))
	if s.ack != isnS+1+uint32(len(reply)) || s.seq != isnC+1+uint32(len(pasv)) {
		t.Errorf("client's ack: seq +%d ack +%d, want +%d +%d", s.seq-isnC-1, s.ack-isnS-1, len(pasv), len(reply))
	}
}

// TestRefusedPipelined: a refused command among others in one segment is
// cut out; the others go on and the answer goes back beside them, with an
// acknowledgement of nothing the server has not acknowledged (the NOOP
// before it may yet be lost). A second refused command in the same
// segment waits for a segment of its own; once the server has
// acknowledged what precedes it, its answer acknowledges it too.
func TestRefusedPipelined(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	in := "NOOP\r\nPORT 192,0,2,1,195,80\r\nLIST\r\nPORT 192,0,2,2,195,80\r\nNLST\r\n"
	it := h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(in)))
	if it.Verdict != Forward || it.Back == nil {
		t.Fatalf("verdict %v, back %v", it.Verdict, it.Back != nil)
	}
	s := decodeSeg(t, it.Buf)
	if s.payload != "NOOP\r\nLIST\r\n" || s.seq != isnC+1 {
		t.Errorf("forwarded %q at +%d", s.payload, s.seq-isnC-1)
	}
	second := strings.Index(in, "PORT 192,0,2,2")
	h.checkBack(it.Back, flowtable.Orig, isnS+1, isnC+1, testutil.ACK|testutil.PSH, string(messages[msgPORTRefused]))
	// The client has the answer; the server acknowledges NOOP and LIST.
	ans := len(messages[msgPORTRefused])
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(second), isnS+1+uint32(ans), nil))
	h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1+uint32(len("NOOP\r\nLIST\r\n")), nil))
	// The rest, retransmitted from the second refused command.
	it = h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1+uint32(second), isnS+1, []byte(in[second:])))
	if it.Verdict != Forward || it.Back == nil {
		t.Fatalf("second: verdict %v, back %v", it.Verdict, it.Back != nil)
	}
	h.checkBack(it.Back, flowtable.Orig, isnS+1+uint32(ans), isnC+1+uint32(strings.Index(in, "NLST")), testutil.ACK|testutil.PSH, string(messages[msgPORTRefused]))
	if s := decodeSeg(t, it.Buf); s.payload != "NLST\r\n" || s.seq != isnC+1+uint32(len("NOOP\r\nLIST\r\n")) {
		t.Errorf("forwarded %q at +%d", s.payload, s.seq-isnC-1)
	}
	if st := h.ftp.Stats().Total; st.Refused != 2 || st.Commands != 0 {
		t.Errorf("stats %+v", st)
	}
	if h.logs.n != 1 {
		t.Errorf("%d log lines, want 1", h.logs.n)
	}
}

// TestRefusedAckKeepsAnswered: an answer never acknowledges less than an
// earlier answer did — a refused command the client has had answered
// counts as arrived even though the server never acknowledged it (it
// never saw it) — and never more than the server has acknowledged.
func TestRefusedAckKeepsAnswered(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	first := "PORT 192,0,2,1,195,80\r\n"
	it := h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(first)))
	if it.Verdict != Back {
		t.Fatalf("verdict %v, want the frame turned around", it.Verdict)
	}
	end := isnC + 1 + uint32(len(first))
	h.checkBack(it.Buf, flowtable.Orig, isnS+1, end, testutil.ACK|testutil.PSH, string(messages[msgPORTRefused]))
	ans := uint32(len(messages[msgPORTRefused]))
	// NOOP and another refused PORT, the first answer acknowledged; the
	// server has acknowledged nothing since the handshake.
	it = h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, end, isnS+1+ans, []byte("NOOP\r\nPORT 192,0,2,2,195,80\r\n")))
	if it.Verdict != Forward || it.Back == nil {
		t.Fatalf("second: verdict %v, back %v", it.Verdict, it.Back != nil)
	}
	h.checkBack(it.Back, flowtable.Orig, isnS+1+ans, end, testutil.ACK|testutil.PSH, string(messages[msgPORTRefused]))
	if s := decodeSeg(t, it.Buf); s.payload != "NOOP\r\n" || s.seq != isnC+1 {
		t.Errorf("forwarded %q at +%d", s.payload, s.seq-isnC-1)
	}
}

// TestExpectationLimit: at the limit, a new announcement replaces the
// session's oldest expectation and is rewritten like any other; the
// replacement is counted.
func TestExpectationLimit(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{MaxExpectations: 2})
	h.handshake(isnC, isnS)
	seq := isnS + 1
	for i := 0; i < 9; i++ {
		l := []byte(fmt.Sprintf("227 Entering Passive Mode (10,0,0,5,195,%d)\r\n", 80+i))
		s, v := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, seq, isnC+1, l))
		if v != Forward || !strings.Contains(s.payload, "198,18,0,204") {
			t.Fatalf("reply %d: verdict %v %q", i, v, s.payload)
		}
		seq += uint32(len(l))
	}
	if h.table.open[h.id] != 2 || h.nat.dropped != 7 {
		t.Errorf("%d open, %d replaced; want 2, 7", h.table.open[h.id], h.nat.dropped)
	}
	if st := h.ftp.Stats().Total; st.Replaced != 7 || st.ExpectCreated != 9 || st.Rewritten != 9 {
		t.Errorf("stats %+v", st)
	}
}

// TestExpectFailed: when the NAT cannot prepare the data connection, the
// client is told so at once, as for a refusal, but with a 425.
func TestExpectFailed(t *testing.T) {
	t.Run("227", func(t *testing.T) {
		h := newHarness(t, serverInside(t), Config{})
		h.handshake(isnC, isnS)
		h.nat.fail = true
		s, v := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 =10,0,0,5,195,80\r\n")))
		if v != Forward || s.payload != string(messages[msgPasvFailed])+"\r\n" {
			t.Errorf("verdict %v %q", v, s.payload)
		}
		if st := h.ftp.Stats().Total; st.ExpectFailed != 1 || st.Refused != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("PORT", func(t *testing.T) {
		h := newHarness(t, clientInside(t), Config{})
		h.handshake(isnC, isnS)
		h.nat.fail = true
		in := "PORT 10,0,0,5,195,80\r\n"
		it := h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, []byte(in)))
		if it.Verdict != Back {
			t.Fatalf("verdict %v", it.Verdict)
		}
		h.checkBack(it.Buf, flowtable.Orig, isnS+1, isnC+1+uint32(len(in)), testutil.ACK|testutil.PSH, string(messages[msgPORTFailed]))
	})
}

// TestClose: the FIN occupies a sequence number (RFC 9293 3.4). After
// rewrites in both directions, a close from either side and a half-close
// with data after the other side's FIN reach their ends with the right
// numbers, so that neither end waits in LAST-ACK: the final ACK is at the
// number after the FIN, and the FIN's acknowledgement maps back to it.
func TestClose(t *testing.T) {
	for _, first := range []flowtable.Dir{flowtable.Orig, flowtable.Reply} {
		t.Run("first "+first.String(), func(t *testing.T) {
			h := newHarness(t, serverInside(t), Config{})
			h.handshake(isnC, isnS)
			cmd, reply := "PASV\r\n", "227 Entering Passive Mode (10,0,0,5,195,80).\r\n"
			h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(cmd)))
			s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK|testutil.PSH, isnS+1, isnC+1+6, []byte(reply)))
			grow := uint32(len(s.payload) - len(reply))
			// Original ends of each stream; the client sees the server's
			// shifted by grow.
			end := [2]uint32{isnC + 1 + 6, isnS + 1 + uint32(len(reply))}
			view := [2]uint32{end[0], end[1] + grow}
			second := 1 - first
			// first closes.
			s, _ = h.process(first, h.frame(first, testutil.ACK|testutil.FIN, end[first], view[second], nil))
			if s.seq != view[first] || s.flags&testutil.FIN == 0 {
				t.Fatalf("FIN at %d, want %d", s.seq, view[first])
			}
			// second acknowledges it, sends data (half-close) and its own
			// FIN with it.
			data := "226 Bye.\r\n"
			if second == flowtable.Orig {
				data = "QUIT\r\n"
			}
			s, _ = h.process(second, h.frame(second, testutil.ACK|testutil.PSH|testutil.FIN, end[second], view[first]+1, []byte(data)))
			if s.ack != end[first]+1 || s.seq != view[second] || s.payload != data || s.flags&testutil.FIN == 0 {
				t.Errorf("second's FIN: seq %d ack %d %q flags %#x; want seq %d ack %d", s.seq, s.ack, s.payload, s.flags, view[second], end[first]+1)
			}
			// first's final ACK: after its FIN, acknowledging data and FIN.
			s, _ = h.process(first, h.frame(first, testutil.ACK, end[first]+1, view[second]+uint32(len(data))+1, nil))
			if s.seq != view[first]+1 || s.ack != end[second]+uint32(len(data))+1 {
				t.Errorf("final ACK seq %d ack %d, want %d %d", s.seq, s.ack, view[first]+1, end[second]+uint32(len(data))+1)
			}
			// A retransmitted FIN keeps its place.
			s, _ = h.process(second, h.frame(second, testutil.ACK|testutil.FIN, end[second]+uint32(len(data)), view[first]+1, nil))
			if s.seq != view[second]+uint32(len(data)) || s.flags&testutil.FIN == 0 || s.payload != "" {
				t.Errorf("retransmitted FIN at %d %q, want %d", s.seq, s.payload, view[second]+uint32(len(data)))
			}
		})
	}
}

// TestFINDiscardsHeldLine: a partial PORT held back when the FIN shows it
// will never be completed is discarded, not passed on (it may carry an
// inside address); the FIN takes its place and its acknowledgement maps
// back past it.
func TestFINDiscardsHeldLine(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	s, _ := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, []byte("NOOP\r\nPORT 10,0")))
	if s.payload != "NOOP\r\n" {
		t.Fatalf("first segment %q", s.payload)
	}
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.FIN, isnC+1+15, isnS+1, nil))
	if s.payload != "" || s.seq != isnC+1+6 || s.flags&testutil.FIN == 0 {
		t.Errorf("FIN segment seq +%d %q flags %#x, want +6, no payload", s.seq-isnC-1, s.payload, s.flags)
	}
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1+6+1, nil))
	if s.ack != isnC+1+15+1 {
		t.Errorf("FIN acknowledged as +%d, want +16", s.ack-isnC-1)
	}
	if st := h.ftp.Stats().Total; st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestStallAcknowledged: a sender that retransmits a held partial line
// with nothing new (its timeout fired, and a timeout shrinks its window
// until something is acknowledged) gets the held bytes acknowledged by the
// ALG, with the receiver's window and timestamps; the line is never passed
// on unrewritten, however long the sender takes. The ALG keeps the bytes
// it acknowledged until the receiver has them: when the frame carrying
// the completed line is lost, they go again in front of the retransmitted
// rest.
func TestStallAcknowledged(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	// A handshake with timestamps and windows.
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.SYN, isnC, 0, nil, tsOpt(1000, 0)...))
	h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.SYN|testutil.ACK, isnS, isnC+1, nil, tsOpt(7000, 1000)...))
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, nil, tsOpt(1001, 7000)...))
	head, rest := "PORT 10,0,0,5,1", "95,80\r\n"
	want := "PORT " + hostPort(testutil.Addr(t, "198.18.0.204"), pubPort(195<<8|80)) + "\r\n"
	for i := 0; i < 5; i++ {
		it := h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1, []byte(head), tsOpt(1002+uint32(i), 7000)...))
		switch {
		case i == 0:
			if it.Verdict != Forward {
				t.Fatalf("first: %v", it.Verdict)
			}
			if s := decodeSeg(t, it.Buf); s.payload != "" {
				t.Fatalf("held bytes passed on: %q", s.payload)
			}
		default:
			if it.Verdict != Back {
				t.Fatalf("retransmission %d: verdict %v, want the ALG's acknowledgement", i, it.Verdict)
			}
			h.checkBack(it.Buf, flowtable.Orig, isnS+1, isnC+1+uint32(len(head)), testutil.ACK, "")
			d := testutil.Decode(t, it.Buf)
			var tsval, tsecr uint32
			for _, o := range d.TCP.Options {
				if o.OptionType == layers.TCPOptionKindTimestamps {
					tsval, tsecr = binary.BigEndian.Uint32(o.OptionData), binary.BigEndian.Uint32(o.OptionData[4:])
				}
			}
			if tsval != 7000 || tsecr != 1002+uint32(i) {
				t.Errorf("timestamps %d/%d, want the server's 7000 and the echo %d", tsval, tsecr, 1002+i)
			}
		}
	}
	// The rest, at last: the whole line goes on, rewritten.
	s, v := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1+uint32(len(head)), isnS+1, []byte(rest)))
	if v != Forward || s.payload != want || s.seq != isnC+1 {
		t.Fatalf("completed line: %v %q at +%d", v, s.payload, s.seq-isnC-1)
	}
	// That frame is lost; the sender retransmits only what it was not
	// acknowledged: the ALG puts the owned bytes back in front.
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1+uint32(len(head)), isnS+1, []byte(rest)))
	if s.payload != want || s.seq != isnC+1 {
		t.Errorf("retransmitted rest: %q at +%d, want the whole line at +0", s.payload, s.seq-isnC-1)
	}
	// The server acknowledges the line; then nothing is owned any more.
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1+uint32(len(want)), nil))
	if s.ack != isnC+1+uint32(len(head)+len(rest)) || h.state().dirs[flowtable.Orig].ownLen != 0 {
		t.Errorf("ack +%d, owned %d", s.ack-isnC-1, h.state().dirs[flowtable.Orig].ownLen)
	}
	if st := h.ftp.Stats().Total; st.HeldAcked != 4 || st.Rewritten != 1 || len(h.nat.calls) != 1 {
		t.Errorf("stats %+v, %d expectations", st, len(h.nat.calls))
	}
}

// TestLongLineResets: a line that may need a rewrite and is longer than
// the limit — whole in one segment or cut anywhere — ends the connection
// with a reset each way, each at the sequence number its receiver expects;
// every later frame of the session is answered with a reset, and the line
// never leaves.
func TestLongLineResets(t *testing.T) {
	line := "PORT 10,0,0,5,195,80" + strings.Repeat(" ", 600) + "\r\n"
	for _, cut := range []int{len(line), 300, 511, 512, 513} {
		t.Run(fmt.Sprint(cut), func(t *testing.T) {
			h := newHarness(t, clientInside(t), Config{})
			h.handshake(isnC, isnS)
			pre := "NOOP\r\n"
			h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, []byte(pre)))
			in := pre + line
			var it Item
			for off := len(pre); off < len(in); off += cut {
				e := min(off+cut, len(in))
				it = h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1+uint32(off), isnS+1, []byte(in[off:e])))
				if it.Back != nil {
					break
				}
				if s := decodeSeg(t, it.Buf); s.payload != "" {
					t.Fatalf("passed on %q", s.payload)
				}
			}
			if it.Verdict != Forward || it.Back == nil {
				t.Fatalf("verdict %v, back %v", it.Verdict, it.Back != nil)
			}
			s := decodeSeg(t, it.Buf)
			if src, dst := h.sc.ends(flowtable.Orig); s.src != src || s.dst != dst || s.flags&testutil.RST == 0 || s.seq != isnC+1+uint32(len(pre)) || s.payload != "" {
				t.Errorf("reset to the server: %s -> %s seq +%d flags %#x %q", s.src, s.dst, s.seq-isnC-1, s.flags, s.payload)
			}
			b := decodeSeg(t, it.Back)
			if src, dst := h.sc.back(flowtable.Orig); b.src != src || b.dst != dst || b.flags&testutil.RST == 0 || b.seq != isnS+1 || b.payload != "" {
				t.Errorf("reset to the client: %s -> %s seq %d flags %#x %q, want seq %d", b.src, b.dst, b.seq, b.flags, b.payload, isnS+1)
			}
			// Anything later, from either end, is answered with a reset.
			for _, d := range []flowtable.Dir{flowtable.Reply, flowtable.Orig} {
				it := h.run(d, h.frame(d, testutil.ACK, isnOf(d)+1, isnOf(1-d)+1+9, []byte("x")))
				if it.Verdict != Back {
					t.Fatalf("%v after the reset: %v", d, it.Verdict)
				}
				if s := decodeSeg(t, it.Buf); s.flags&testutil.RST == 0 || s.seq != isnOf(1-d)+1+9 {
					t.Errorf("%v answered seq %d flags %#x", d, s.seq, s.flags)
				}
			}
			if st := h.ftp.Stats().Total; st.Resets != 1 || st.LongLines != 1 || h.nat.resets != 1 || h.logs.n != 1 {
				t.Errorf("stats %+v, %d NAT resets, %d logs", st, h.nat.resets, h.logs.n)
			}
		})
	}
}

// TestLongLinesCounted: any line longer than the limit is counted once,
// however many segments carry it, and passes when it needs no rewrite.
func TestLongLinesCounted(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	line := "SITE " + strings.Repeat("x", 64<<10) // no line end
	r := newRcvr(t, isnC)
	for off := 0; off < len(line); off += 1400 {
		e := min(off+1400, len(line))
		s, v := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(off), isnS+1, []byte(line[off:e])))
		if v != Forward {
			t.Fatal(v)
		}
		r.add(s)
	}
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(len(line)), isnS+1, []byte("\r\nSITE short\r\n")))
	if r.stream() != line {
		t.Error("the long line did not pass whole")
	}
	if st := h.ftp.Stats().Total; st.LongLines != 1 {
		t.Errorf("%d long lines, want 1", st.LongLines)
	}
}

// TestRefusedDuringReply: a refused command that arrives while the server
// is in the middle of a multi-line reply (RFC 959 4.2) is deleted at once,
// but its answer waits: inside the reply it would be text. It goes into
// the server's stream right after the reply's last line, with the server's
// own bytes, and the client's acknowledgements of it map back.
func TestRefusedDuringReply(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	first := "211-Features:\r\n EPRT\r\n"
	s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK|testutil.PSH, isnS+1, isnC+1, []byte(first)))
	if s.payload != first {
		t.Fatalf("first part %q", s.payload)
	}
	port := "PORT 192,0,2,1,195,80\r\n"
	it := h.run(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK|testutil.PSH, isnC+1, isnS+1+uint32(len(first)), []byte(port)))
	if it.Verdict != Forward || it.Back != nil {
		t.Fatalf("verdict %v, back %v: the answer must wait for the reply's end", it.Verdict, it.Back != nil)
	}
	if s := decodeSeg(t, it.Buf); s.payload != "" {
		t.Fatalf("the refused command went on: %q", s.payload)
	}
	rest := " PASV\r\n211 End\r\n200 Hello\r\n"
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK|testutil.PSH, isnS+1+uint32(len(first)), isnC+1, []byte(rest)))
	ans := string(messages[msgPORTRefused])
	want := " PASV\r\n211 End\r\n" + ans + "200 Hello\r\n"
	if s.payload != want || s.seq != isnS+1+uint32(len(first)) {
		t.Fatalf("rest of the reply at +%d %q, want %q", s.seq-isnS-1, s.payload, want)
	}
	// The client acknowledges it all: the server is told its own end, and
	// the refused command now counts as received.
	end := isnS + 1 + uint32(len(first)+len(want))
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(len(port)), end, nil))
	if s.ack != isnS+1+uint32(len(first)+len(rest)) {
		t.Errorf("client's ack maps to +%d, want +%d", s.ack-isnS-1, len(first)+len(rest))
	}
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1+uint32(len(first)+len(rest)), isnC+1, nil))
	if s.ack != isnC+1+uint32(len(port)) {
		t.Errorf("server's ack maps to +%d, want past the deleted command (+%d)", s.ack-isnC-1, len(port))
	}
	if st := h.ftp.Stats().Total; st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
}
