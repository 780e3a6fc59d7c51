package nat

import (
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
	"github.com/google/gopacket/layers"
)

// The acknowledgment window of conntrack's tcp_in_window, written out
// independently of ackInWindow: a segment's ACK (its highest SACK edge)
// may be no later than what the receiver has sent (td_end) and no earlier
// than that less MAXACKWINDOW = max(the sender's largest window, 66000).

// TestTCPTrackerAckWindow: on an established connection (both sides'
// largest window 65536, so the lower bound is 66000 below the
// receiver's end), an ACK over the upper bound is dropped as
// tcp_ack_out_of_window from either side, data or pure ACK, FIN or RST,
// with state and words unchanged; one at either bound passes and is
// tracked; one under the lower bound passes untracked (conntrack's
// NFCT_TCP_IGNORE), but a RST or FIN with it is dropped; a segment
// starting beyond the window is tcp_out_of_window whatever its ACK.
func TestTCPTrackerAckWindow(t *testing.T) {
	st, tr := runTCP(t, with(scaled(),
		tcpStepCase{reply, seg(fACK|fPSH, isnB+1, isnA+1, 512, 50000), Forward, "ESTABLISHED"},
		tcpStepCase{orig, seg(fACK|fPSH, isnA+1, isnB+1+50000, 512, 50000), Forward, "ESTABLISHED"},
	))
	ends := [2]uint32{isnA + 1 + 50000, isnB + 1 + 50000}
	for _, d := range []flowtable.Dir{orig, reply} {
		seq, peer := ends[d], ends[1-d]
		for _, c := range []struct {
			name    string
			g       tcpSeg
			v       Verdict
			tracked bool
		}{
			{"data, ACK at the peer's end", seg(fACK|fPSH, seq, peer, 512, 100), Forward, true},
			{"data, ACK one past the peer's end", seg(fACK|fPSH, seq, peer+1, 512, 100), DropTCPAckWindow, false},
			{"data, ACK far past it", seg(fACK|fPSH, seq, peer+1<<30, 512, 100), DropTCPAckWindow, false},
			{"pure ACK past it", seg(fACK, seq, peer+1000, 512, 0), DropTCPAckWindow, false},
			{"FIN, ACK past it", seg(fFIN|fACK, seq, peer+1, 512, 0), DropTCPAckWindow, false},
			{"RST, ACK past it", seg(fRST|fACK, seq, peer+1, 0, 0), DropTCPAckWindow, false},
			{"data, ACK at the lower bound", seg(fACK|fPSH, seq, peer-66000, 512, 100), Forward, true},
			{"data, ACK under it", seg(fACK|fPSH, seq, peer-66001, 512, 100), Forward, false},
			{"pure ACK far under it", seg(fACK, seq, peer-1<<30, 512, 0), Forward, false},
			{"FIN, ACK under it", seg(fFIN|fACK, seq, peer-66001, 512, 0), DropTCPAckWindow, false},
			{"RST, ACK under it", seg(fRST|fACK, seq, peer-66001, 0, 0), DropTCPAckWindow, false},
			{"data beyond the window, ACK past the end", seg(fACK|fPSH, seq+1<<30, peer+1, 512, 100), DropTCPOutOfWindow, false},
			{"data behind the window, ACK past the end", seg(fACK|fPSH, seq-1<<30, peer+1, 512, 100), DropTCPAckWindow, false},
			{"RST without ACK: its ACK field is not read", seg(fRST, seq, peer+12345, 0, 0), Forward, true},
			{"RST|ACK with ACK 0: a broken stack's, not read", seg(fRST|fACK, seq, 0, 0, 0), Forward, true},
		} {
			g := c.g
			nst, _, ntr, v := tcpStep(st, tr, d, &g)
			if v != c.v {
				t.Errorf("from %v, %s: %v, want %v", d, c.name, v, c.v)
				continue
			}
			if moved := nst != st || ntr != tr; moved != c.tracked {
				t.Errorf("from %v, %s: state %s→%s, words %x→%x (tracked: want %v)", d, c.name,
					TCPStateName(st), TCPStateName(nst), tr, ntr, c.tracked)
			}
		}
	}
}

// TestTCPTrackerAckWindowSenderWindow: the lower bound is the sender's
// largest window below the receiver's end when that window is above
// 66000 (MAXACKWINDOW), scaled as the handshake negotiated.
func TestTCPTrackerAckWindowSenderWindow(t *testing.T) {
	st, tr := runTCP(t, with(scaled(),
		tcpStepCase{orig, seg(fACK, isnA+1, isnB+1, 4000, 0), Forward, "ESTABLISHED"}, // 512000 bytes
	))
	bEnd := uint32(isnB + 1)
	for _, c := range []struct {
		ack uint32
		v   Verdict
		in  bool
	}{{bEnd - 512000, Forward, true}, {bEnd - 512001, Forward, false}, {bEnd + 1, DropTCPAckWindow, false}} {
		g := seg(fACK|fPSH, isnA+1, c.ack, 4000, 10)
		_, _, ntr, v := tcpStep(st, tr, orig, &g)
		if v != c.v || (ntr != tr) != c.in {
			t.Errorf("ACK %d below the end: %v, tracked %v", bEnd-c.ack, v, ntr != tr)
		}
	}
	// The receiver's window does not count: B's is 65536, so from B the
	// lower bound is 66000 below A's end.
	aEnd := uint32(isnA + 1)
	for ack, in := range map[uint32]bool{aEnd - 66000: true, aEnd - 66001: false} {
		g := seg(fACK|fPSH, bEnd, ack, 512, 10)
		if _, _, ntr, v := tcpStep(st, tr, reply, &g); v != Forward || (ntr != tr) != in {
			t.Errorf("from B, ACK %d below: %v, tracked %v", aEnd-ack, v, ntr != tr)
		}
	}
}

// TestTCPTrackerAckWindowSACK: the highest SACK edge is checked as the
// ACK is (conntrack's tcp_sack): a block past what the receiver sent
// drops the segment, blocks within pass, and a block below a valid ACK
// is no reason to ignore it.
func TestTCPTrackerAckWindowSACK(t *testing.T) {
	st, tr := runTCP(t, with(scaled(),
		tcpStepCase{reply, seg(fACK|fPSH, isnB+1, isnA+1, 512, 5000), Forward, "ESTABLISHED"},
	))
	bEnd := uint32(isnB + 1 + 5000)
	for _, c := range []struct {
		name      string
		ack, sack uint32
		v         Verdict
	}{
		{"SACK within", bEnd - 5000, bEnd, Forward},
		{"SACK past the end", bEnd - 5000, bEnd + 1, DropTCPAckWindow},
		{"SACK far past", bEnd - 5000, bEnd + 1<<20, DropTCPAckWindow},
		{"ACK under the lower bound, SACK within", bEnd - 70000, bEnd, Forward},
	} {
		g := seg(fACK, isnA+1, c.ack, 512, 0)
		g.sack = c.sack
		if _, _, _, v := tcpStep(st, tr, orig, &g); v != c.v {
			t.Errorf("%s: %v, want %v", c.name, v, c.v)
		}
	}
}

// TestTCPTrackerAckUnchecked: where conntrack skips the ACK check or
// fastnat cannot make it, nothing is dropped for it: a liberal direction
// (or a liberal receiver), a receiver whose tracking has not begun, a
// segment whose ACK is in the ALG's shifted space (ackFree), and the
// ACK of data sent in a fragmented segment, whose end fastnat did not see
// (trOpen) — until its sender's next segment moves its end on.
func TestTCPTrackerAckUnchecked(t *testing.T) {
	t.Run("liberal", func(t *testing.T) {
		tr := [2]uint64{trWith(trInit|trLiberal, isnA+1, 65535), synWord(&tcpSeg{win: 65535}, isnB+1)}
		for _, d := range []flowtable.Dir{orig, reply} {
			g := seg(fACK|fPSH, trEnd(tr[d]), trEnd(tr[1-d])+1<<20, 512, 10)
			if _, _, _, v := tcpStep(tcpEstablished, tr, d, &g); v != Forward {
				t.Errorf("from %v: %v", d, v)
			}
		}
	})
	t.Run("receiver not tracked yet", func(t *testing.T) {
		// A's SYN, then data from A before any answer: B's word is empty.
		st, tr := runTCP(t, []tcpStepCase{{orig, seg(fSYN, isnA, 0, 64240, 0), Forward, "SYN_SENT"}})
		tr[orig] = trWith(tr[orig], isnA+1, 65535)
		g := seg(fACK|fPSH, isnA+1, 777777, 512, 10)
		if _, _, _, v := tcpStep(st, tr, orig, &g); v != Forward {
			t.Errorf("%v", v)
		}
	})
	t.Run("ALG's shifted space", func(t *testing.T) {
		st, tr := runTCP(t, scaled())
		g := seg(fACK|fPSH, isnB+1, isnA+1+40, 512, 10)
		g.ackFree = true
		if _, _, _, v := tcpStep(st, tr, reply, &g); v != Forward {
			t.Errorf("%v", v)
		}
	})
	t.Run("fragmented data", func(t *testing.T) {
		st, tr := runTCP(t, scaled())
		// B sends 3000 bytes in fragments: the tracker sees the first 1480.
		first := seg(fACK|fPSH, isnB+1, isnA+1, 512, 1480)
		first.frag = true
		st, _, tr, v := tcpStep(st, tr, reply, &first)
		if v != Forward || tr[reply]&trOpen == 0 || trEnd(tr[reply]) != isnB+1+1480 {
			t.Fatalf("first fragment: %v, word %x", v, tr[reply])
		}
		ack := seg(fACK, isnA+1, isnB+1+3000, 512, 0)
		if _, _, _, v := tcpStep(st, tr, orig, &ack); v != Forward {
			t.Fatalf("ACK of the whole segment: %v", v)
		}
		// B's next segment moves its end past what A acknowledged: the
		// check is back.
		next := seg(fACK|fPSH, isnB+1+3000, isnA+1, 512, 100)
		st, _, tr, v = tcpStep(st, tr, reply, &next)
		if v != Forward || tr[reply]&trOpen != 0 {
			t.Fatalf("next segment: %v, word %x", v, tr[reply])
		}
		ack = seg(fACK, isnA+1, isnB+1+3101, 512, 0)
		if _, _, _, v := tcpStep(st, tr, orig, &ack); v != DropTCPAckWindow {
			t.Fatalf("ACK past the end once it is known again: %v", v)
		}
	})
}

// TestTCPTrackerAckHandshake: a SYN/ACK must acknowledge the SYN exactly
// and the ACK completing the handshake must not acknowledge past the
// SYN/ACK; a RST answering the SYN must acknowledge it.
func TestTCPTrackerAckHandshake(t *testing.T) {
	syn := []tcpStepCase{{orig, seg(fSYN, isnA, 0, 64240, 0, ws(7)), Forward, "SYN_SENT"}}
	runTCP(t, with(syn,
		tcpStepCase{reply, seg(fSYN|fACK, isnB, isnA+2, 65160, 0, ws(7)), DropTCPOutOfWindow, "SYN_SENT"},
		tcpStepCase{reply, seg(fRST|fACK, 0, isnA+2, 0, 0), DropTCPOutOfWindow, "SYN_SENT"},
		tcpStepCase{reply, seg(fSYN|fACK, isnB, isnA+1, 65160, 0, ws(7)), Forward, "SYN_RECV"},
		tcpStepCase{orig, seg(fACK, isnA+1, isnB+2, 512, 0), DropTCPAckWindow, "SYN_RECV"},
		tcpStepCase{orig, seg(fACK, isnA+1, isnB+1, 512, 0), Forward, "ESTABLISHED"},
	))
}

// ackFrame is tcpFrame with SACK blocks.
func ackFrame(tb testing.TB, src, dst string, flags int, seq, ack uint32, n int, sack ...[2]uint32) []byte {
	tb.Helper()
	var opts []layers.TCPOption
	if len(sack) > 0 {
		data := make([]byte, 0, 8*len(sack))
		for _, b := range sack {
			data = append(data, byte(b[0]>>24), byte(b[0]>>16), byte(b[0]>>8), byte(b[0]),
				byte(b[1]>>24), byte(b[1]>>16), byte(b[1]>>8), byte(b[1]))
		}
		opts = []layers.TCPOption{{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
			{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(data)), OptionData: data}}
	}
	return testutil.TCP(tb, src, dst, flags, seq, ack, make([]byte, n), opts...)
}

// TestEngineDropsAckOutOfWindow: through the engine, a data segment in
// the window whose ACK (or SACK block) acknowledges data the peer has
// not sent is dropped and counted as tcp_ack_out_of_window from either
// side, and the connection carries on; the established-flow fast path
// leaves it, and any segment with SACK blocks, to the general path,
// which decides as tcpStep does.
func TestEngineDropsAckOutOfWindow(t *testing.T) {
	c := newValidConn(t)
	data := testutil.ACK | testutil.PSH
	for _, tc := range []struct {
		name  string
		from  Side
		frame []byte
		v     Verdict
		fast  bool
	}{
		{"from outside, ACK past the client's end", Outside, ackFrame(t, c.server, c.back, data, c.sNext, c.cNext+1, 10), DropTCPAckWindow, false},
		{"from inside, ACK past the server's end", Inside, ackFrame(t, c.client, c.server, data, c.cNext, c.sNext+1000, 10), DropTCPAckWindow, false},
		{"from outside, SACK past the client's end", Outside,
			ackFrame(t, c.server, c.back, testutil.ACK, c.sNext, c.cNext-50, 0, [2]uint32{c.cNext + 10, c.cNext + 20}), DropTCPAckWindow, false},
		{"from outside, SACK within", Outside,
			ackFrame(t, c.server, c.back, testutil.ACK, c.sNext, c.cNext-50, 0, [2]uint32{c.cNext - 40, c.cNext}), Forward, false},
		{"from outside, timestamps only", Outside,
			testutil.TCP(t, c.server, c.back, data, c.sNext, c.cNext, make([]byte, 10),
				layers.TCPOption{OptionType: layers.TCPOptionKindNop}, layers.TCPOption{OptionType: layers.TCPOptionKindNop},
				layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}), Forward, true},
		{"from inside, ACK at the server's end", Inside, ackFrame(t, c.client, c.server, data, c.cNext, c.sNext, 10), Forward, true},
	} {
		f := append([]byte(nil), tc.frame...)
		var p packet.Parsed
		if packet.Parse(f, &p) != packet.OK {
			t.Fatalf("%s: frame does not parse", tc.name)
		}
		hits := make([]flowtable.Hit, 1)
		c.g.table.LookupBatch([]packet.Tuple{p.Tuple}, hits)
		if !hits[0].Found {
			t.Fatalf("%s: no session", tc.name)
		}
		before := c.g.table.Track(hits[0].ID, hits[0].Dir)
		if _, _, ok := c.g.e.ForwardCommon(f, &hits[0], tc.from, c.g.now); ok != tc.fast {
			t.Fatalf("%s: fast path took it: %v", tc.name, ok)
		} else if ok {
			continue
		}
		if string(f) != string(tc.frame) || c.g.table.Track(hits[0].ID, hits[0].Dir) != before {
			t.Fatalf("%s: the fast path refused it, but changed the frame or the tracking", tc.name)
		}
		c.expect(t, tc.name, tc.from, tc.frame, tc.v)
		if tc.v == Forward {
			continue
		}
		if c.g.table.Track(hits[0].ID, hits[0].Dir) != before {
			t.Fatalf("%s: dropped, but moved the tracking", tc.name)
		}
	}
	if st := c.g.state(c.established); st&tcpStateMask != tcpEstablished {
		t.Fatalf("state %s after forged ACKs", TCPStateName(st))
	}
	c.expect(t, "data after", Outside, c.fromServer(packet.FlagACK|packet.FlagPSH, c.sNext, 65535, 10), Forward)
	c.expect(t, "data after", Inside, c.inside(packet.FlagACK|packet.FlagPSH, c.cNext, 65535, 10), Forward)
}

// TestSACKRight: the highest SACK edge, in sequence space, over every
// block of every SACK option; malformed lists end the walk.
func TestSACKRight(t *testing.T) {
	for _, c := range []struct {
		name string
		ack  uint32
		sack [][2]uint32
		want uint32
	}{
		{"no blocks", 1000, nil, 1000},
		{"one above", 1000, [][2]uint32{{1100, 1200}}, 1200},
		{"highest of three", 1000, [][2]uint32{{1100, 1200}, {1300, 1500}, {1250, 1280}}, 1500},
		{"D-SACK below the ACK", 1000, [][2]uint32{{900, 950}}, 1000},
		{"across the wrap", 0xffffff00, [][2]uint32{{0xffffff80, 0x10}}, 0x10},
	} {
		f := ackFrame(t, "10.0.0.1:1", "10.0.0.2:2", testutil.ACK, 1, c.ack, 0, c.sack...)
		tcp := packet.TCP(f[packet.EthernetLen+packet.IPv4MinLen:])
		if got := tcp.SACKRight(c.ack); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}
