package nat

import (
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

const (
	fSYN = packet.FlagSYN
	fACK = packet.FlagACK
	fFIN = packet.FlagFIN
	fRST = packet.FlagRST
	fPSH = packet.FlagPSH

	orig  = flowtable.Orig
	reply = flowtable.Reply
)

// tcpStepCase is one segment of a tracker scenario and what must follow.
type tcpStepCase struct {
	dir   flowtable.Dir
	seg   tcpSeg
	v     Verdict // Forward or DropTCPOutOfWindow
	state string  // TCPStateName afterwards
}

// ws returns a SYN's Window Scale option.
func ws(shift uint8) tcpSeg { return tcpSeg{ws: shift, wsOK: true} }

// seg builds a segment; opt carries ws/wsOK from ws().
func seg(flags uint8, seq, ack, win, n uint32, opt ...tcpSeg) tcpSeg {
	g := tcpSeg{flags: flags, seq: seq, ack: ack, sack: ack, win: win, len: n}
	if len(opt) > 0 {
		g.ws, g.wsOK = opt[0].ws, opt[0].wsOK
	}
	return g
}

// stepStateName is TCPStateName with a star for an ESTABLISHED
// connection holding an unconfirmed RST (tcpRSTPending).
func stepStateName(st uint8) string {
	if st&tcpStateMask == tcpEstablished && st&tcpRSTPending != 0 {
		return TCPStateName(st) + "*"
	}
	return TCPStateName(st)
}

// runTCP feeds the steps to tcpStep from a new session and checks every
// verdict and state; a dropped segment must leave state and words alone.
// It returns the final state and words.
func runTCP(t *testing.T, steps []tcpStepCase) (uint8, [2]uint64) {
	t.Helper()
	st, tr := tcpSynSent, [2]uint64{}
	for i, s := range steps {
		g := s.seg
		nst, class, ntr, v := tcpStep(st, tr, s.dir, &g)
		if v != s.v {
			t.Fatalf("step %d (%v %+v): verdict %v, want %v", i, s.dir, s.seg, v, s.v)
		}
		if v != Forward && (nst != st || ntr != tr) {
			t.Fatalf("step %d: a dropped segment moved the state %#x→%#x or tracking %x→%x", i, st, nst, tr, ntr)
		}
		if got := stepStateName(nst); got != s.state {
			t.Fatalf("step %d (%v %+v): state %s, want %s", i, s.dir, s.seg, got, s.state)
		}
		if class != timeoutClass(nst) {
			t.Fatalf("step %d: class %d for state %s", i, class, TCPStateName(nst))
		}
		st, tr = nst, ntr
	}
	return st, tr
}

const (
	isnA = 1000
	isnB = 5000
)

// handshake is a three-way handshake A (Orig) → B (Reply), both sides
// announcing window scale 7 and then advertising 512 (65536 bytes).
func handshake(wsA, wsB []tcpSeg) []tcpStepCase {
	return []tcpStepCase{
		{orig, seg(fSYN, isnA, 0, 64240, 0, wsA...), Forward, "SYN_SENT"},
		{reply, seg(fSYN|fACK, isnB, isnA+1, 65160, 0, wsB...), Forward, "SYN_RECV"},
		{orig, seg(fACK, isnA+1, isnB+1, 512, 0), Forward, "ESTABLISHED"},
		{reply, seg(fACK, isnB+1, isnA+1, 512, 0), Forward, "ESTABLISHED"},
	}
}

func scaled() []tcpStepCase { return handshake([]tcpSeg{ws(7)}, []tcpSeg{ws(7)}) }

func with(base []tcpStepCase, more ...tcpStepCase) []tcpStepCase {
	return append(append([]tcpStepCase(nil), base...), more...)
}

func TestTCPTracker(t *testing.T) {
	const w = 512 << 7 // the scaled window both sides advertise after the handshake
	bEnd := uint32(isnB + 1)
	aEnd := uint32(isnA + 1)
	cases := []struct {
		name  string
		steps []tcpStepCase
	}{
		{"handshake and data", with(scaled(),
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 1000), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK|fPSH, bEnd, aEnd+1000, 512, 1400), Forward, "ESTABLISHED"},
		)},
		{"RST at RCV.NXT closes", with(scaled(),
			tcpStepCase{reply, seg(fRST, bEnd, 0, 0, 0), Forward, "CLOSED"},
		)},
		{"RST far outside the window changes nothing", with(scaled(),
			tcpStepCase{reply, seg(fRST, bEnd+1<<31, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{orig, seg(fRST|fACK, aEnd-1<<30, bEnd, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd, bEnd, 512, 0), Forward, "ESTABLISHED"},
		)},
		{"RST at the window's upper edge", with(scaled(),
			tcpStepCase{reply, seg(fRST, bEnd+w+64, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd+w, 0, 0, 0), Forward, "ESTABLISHED*"},
		)},
		{"RST at the window's lower edge", with(scaled(),
			tcpStepCase{reply, seg(fRST, bEnd-w-64, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd-w, 0, 0, 0), Forward, "ESTABLISHED*"},
		)},
		{"FIN outside the window changes nothing", with(scaled(),
			tcpStepCase{orig, seg(fFIN|fACK, aEnd+3*w, bEnd, 512, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{orig, seg(fFIN|fACK, aEnd, bEnd, 512, 0), Forward, "FIN_WAIT"},
		)},
		{"out-of-window data moves nothing", with(scaled(),
			// Dropped, and the tracker does not follow it, so a RST next
			// to it stays out of window.
			tcpStepCase{reply, seg(fACK, bEnd+1<<30, aEnd, 65535, 1000), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd+1<<30+1000, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
		)},
		{"data advances the window", with(scaled(),
			tcpStepCase{reply, seg(fACK, bEnd, aEnd, 512, 1400), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd+1400, aEnd, 512, 1400), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd+2800+w, 0, 0, 0), Forward, "ESTABLISHED*"},
		)},
		{"without window scaling on both sides the window is unscaled", with(
			handshake([]tcpSeg{ws(7)}, nil),
			// A advertised 512 bytes (its scale is not in effect), and
			// 64240 in its SYN: a RST 65000 beyond B's data is out.
			tcpStepCase{reply, seg(fRST, bEnd+65000, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd+64000, 0, 0, 0), Forward, "ESTABLISHED*"},
		)},
		{"a SYN's window is not scaled", []tcpStepCase{
			{orig, seg(fSYN, isnA, 0, 1000, 0, ws(7)), Forward, "SYN_SENT"},
			{reply, seg(fSYN|fACK, isnB, isnA+1, 65160, 0, ws(7)), Forward, "SYN_RECV"},
			// B may send up to A's SYN window (1000 bytes, not 128000).
			{reply, seg(fRST|fACK, isnB+1+5000, isnA+1, 0, 0), DropTCPOutOfWindow, "SYN_RECV"},
			{reply, seg(fRST|fACK, isnB+1+900, isnA+1, 0, 0), Forward, "CLOSED"},
		}},
		{"sequence numbers wrap", []tcpStepCase{
			{orig, seg(fSYN, 0xffffff00, 0, 64240, 0, ws(2)), Forward, "SYN_SENT"},
			{reply, seg(fSYN|fACK, 0xfffffff0, 0xffffff01, 65160, 0, ws(2)), Forward, "SYN_RECV"},
			{orig, seg(fACK, 0xffffff01, 0xfffffff1, 1000, 0), Forward, "ESTABLISHED"},
			{orig, seg(fACK, 0xffffff01, 0xfffffff1, 1000, 0x200), Forward, "ESTABLISHED"},  // ends at 0x101
			{orig, seg(fRST, 0x101+0x7fff0000, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"}, // far
			{orig, seg(fRST, 0x101+65300, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},      // B's SYN window is 65160
			{orig, seg(fRST, 0x101+65000, 0, 0, 0), Forward, "ESTABLISHED*"},
			{orig, seg(fRST, 0x101, 0, 0, 0), Forward, "CLOSED"}, // at the sender's end
		}},
		{"SYN retransmits", []tcpStepCase{
			{orig, seg(fSYN, isnA, 0, 64240, 0, ws(7)), Forward, "SYN_SENT"},
			{orig, seg(fSYN, isnA, 0, 64240, 0, ws(7)), Forward, "SYN_SENT"},
			{orig, seg(fSYN, isnA+777, 0, 64240, 0, ws(7)), Forward, "SYN_SENT"}, // a new ISN
			{reply, seg(fSYN|fACK, isnB, isnA+1, 65160, 0, ws(7)), DropTCPOutOfWindow, "SYN_SENT"},
			{reply, seg(fSYN|fACK, isnB, isnA+778, 65160, 0, ws(7)), Forward, "SYN_RECV"},
			{reply, seg(fSYN|fACK, isnB, isnA+778, 65160, 0, ws(7)), Forward, "SYN_RECV"}, // retransmitted
			{orig, seg(fACK, isnA+778, isnB+1, 512, 0), Forward, "ESTABLISHED"},
			{orig, seg(fSYN, isnA, 0, 64240, 0), Forward, "ESTABLISHED"}, // a stray SYN changes nothing
		}},
		{"forged SYN/ACK", []tcpStepCase{
			{orig, seg(fSYN, isnA, 0, 64240, 0), Forward, "SYN_SENT"},
			{reply, seg(fSYN|fACK, 99, 12345, 65535, 0), DropTCPOutOfWindow, "SYN_SENT"},
			{reply, seg(fSYN|fACK, isnB, isnA+1, 65160, 0), Forward, "SYN_RECV"},
		}},
		{"simultaneous open", []tcpStepCase{
			{orig, seg(fSYN, isnA, 0, 64240, 0, ws(7)), Forward, "SYN_SENT"},
			{reply, seg(fSYN, isnB, 0, 65160, 0, ws(7)), Forward, "SYN_RECV"},
			{orig, seg(fSYN|fACK, isnA, isnB+1, 64240, 0, ws(7)), Forward, "SYN_RECV"},
			{reply, seg(fSYN|fACK, isnB, isnA+1, 65160, 0, ws(7)), Forward, "SYN_RECV"},
			{orig, seg(fACK|fPSH, isnA+1, isnB+1, 512, 100), Forward, "ESTABLISHED"},
			{reply, seg(fRST, isnB+1+1<<31, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
		}},
		{"RST answering a SYN", []tcpStepCase{
			{orig, seg(fSYN, isnA, 0, 64240, 0), Forward, "SYN_SENT"},
			{reply, seg(fRST, 0, 0, 0, 0), DropTCPOutOfWindow, "SYN_SENT"},           // no ACK
			{reply, seg(fRST|fACK, 0, isnA+9, 0, 0), DropTCPOutOfWindow, "SYN_SENT"}, // wrong ACK
			{reply, seg(fACK, 0, isnA+1, 0, 0), Forward, "SYN_SENT"},                 // not a SYN/ACK: nothing
			{reply, seg(fFIN|fACK, 0, isnA+1, 0, 0), DropTCPOutOfWindow, "SYN_SENT"}, // no FIN before its SYN
			{reply, seg(fRST|fACK, 0, isnA+1, 0, 0), Forward, "CLOSED"},              // RFC 9293 §3.10.7.3
			{orig, seg(fSYN, isnA+50000, 0, 64240, 0), Forward, "SYN_SENT"},          // tried again
			{reply, seg(fSYN|fACK, isnB, isnA+50001, 65160, 0), Forward, "SYN_RECV"},
		}},
		{"unconfirmed RST", with(scaled(),
			// In window but not at its sender's next sequence number: A's
			// stack answers with a challenge ACK and carries on, and so
			// does the session, ESTABLISHED throughout (conntrack's
			// rule), with the closed timeout until that ACK.
			tcpStepCase{reply, seg(fRST, bEnd+5000, 0, 0, 0), Forward, "ESTABLISHED*"},
			tcpStepCase{reply, seg(fRST, bEnd+6000, 0, 0, 0), Forward, "ESTABLISHED*"},
			tcpStepCase{orig, seg(fACK, aEnd, bEnd, 512, 0), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 100), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fRST|fACK, aEnd+100, bEnd, 0, 0), Forward, "CLOSED"},
		)},
		{"RST demotion and recovery", with(scaled(),
			// At the sender's end, but B's stack, having acknowledged less
			// than A sent, challenges it and carries on.
			tcpStepCase{reply, seg(fRST, bEnd, 0, 0, 0), Forward, "CLOSED"},
			tcpStepCase{orig, seg(fACK, aEnd, bEnd, 512, 0), Forward, "CLOSED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 100), Forward, "CLOSED"},
			tcpStepCase{orig, seg(fSYN, 7, 0, 512, 0), Forward, "CLOSED"}.withState("SYN_SENT"),
		)},
		{"RST demotion, traffic both ways restores ESTABLISHED", with(scaled(),
			tcpStepCase{orig, seg(fRST|fACK, aEnd, bEnd, 0, 0), Forward, "CLOSED"},
			tcpStepCase{reply, seg(fACK, bEnd, aEnd, 512, 0), Forward, "CLOSED"},
			tcpStepCase{reply, seg(fRST, bEnd+1<<31, 0, 0, 0), DropTCPOutOfWindow, "CLOSED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 100), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd, aEnd+100, 512, 0), Forward, "ESTABLISHED"},
		)},
		{"FIN demotion and recovery", with(scaled(),
			tcpStepCase{orig, seg(fFIN|fACK, aEnd+300, bEnd, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{reply, seg(fACK|fPSH, bEnd, aEnd, 512, 100), Forward, "FIN_WAIT"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd+100, 512, 100), Forward, "ESTABLISHED"},
		)},
		{"out-of-window traffic does not restore", with(scaled(),
			tcpStepCase{orig, seg(fRST|fACK, aEnd, bEnd, 0, 0), Forward, "CLOSED"},
			tcpStepCase{reply, seg(fACK, bEnd+1<<31, aEnd, 512, 0), DropTCPOutOfWindow, "CLOSED"},
			tcpStepCase{orig, seg(fACK, aEnd+1<<31, bEnd, 512, 0), DropTCPOutOfWindow, "CLOSED"},
		)},
		{"orderly close stays closed", with(scaled(),
			tcpStepCase{orig, seg(fFIN|fACK, aEnd, bEnd, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{reply, seg(fACK, bEnd, aEnd+1, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{reply, seg(fFIN|fACK, bEnd, aEnd+1, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{orig, seg(fACK, aEnd+1, bEnd+1, 512, 0), Forward, "FIN_WAIT"},
		)},
		{"simultaneous close stays closed", with(scaled(),
			tcpStepCase{orig, seg(fFIN|fACK, aEnd, bEnd, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{reply, seg(fFIN|fACK, bEnd, aEnd, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{orig, seg(fACK, aEnd+1, bEnd+1, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{reply, seg(fACK, bEnd+1, aEnd+1, 512, 0), Forward, "FIN_WAIT"},
			tcpStepCase{orig, seg(fSYN, 42, 0, 512, 0), Forward, "SYN_SENT"}, // the tuple reused
			tcpStepCase{reply, seg(fSYN|fACK, 77, isnA+1, 512, 0), DropTCPOutOfWindow, "SYN_SENT"},
			tcpStepCase{reply, seg(fSYN|fACK, 77, 43, 512, 0), Forward, "SYN_RECV"},
		)},
		{"a forged wide window does not widen the check", with(scaled(),
			// A pure ACK claiming a huge window from a wrong sequence
			// number changes nothing; B's RST stays out of window.
			tcpStepCase{orig, seg(fACK, aEnd+1<<31, bEnd, 65535, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd+1<<29, 0, 0, 0), DropTCPOutOfWindow, "ESTABLISHED"},
		)},
		// Data and ACKs starting beyond the receiver's window are dropped
		// like RST and FIN outside it, as conntrack's tcp_in_window marks
		// them INVALID; those ending behind it pass untracked, as
		// conntrack ignores them — and what real stacks send stays
		// inside: retransmissions, keepalives, zero-window probes, data
		// up to the scaled window.
		{"data at the window's upper edge", with(scaled(),
			tcpStepCase{reply, seg(fACK, bEnd+w+64, aEnd, 512, 100), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+w+64, bEnd, 512, 100), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd+w, aEnd, 512, 100), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+w, bEnd, 512, 100), Forward, "ESTABLISHED"},
		)},
		{"data far outside, both ways", with(scaled(),
			tcpStepCase{reply, seg(fACK|fPSH, bEnd+1<<31, aEnd, 512, 1000), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd+1<<30, bEnd, 512, 1000), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd-1<<30, bEnd, 512, 1000), Forward, "ESTABLISHED"}, // behind
			tcpStepCase{reply, seg(fACK, bEnd, aEnd, 512, 0), Forward, "ESTABLISHED"},
		)},
		{"old data below the window", with(scaled(),
			tcpStepCase{reply, seg(fACK, bEnd, aEnd, 512, 1400), Forward, "ESTABLISHED"},
			// Ends more than a window below what B has sent.
			tcpStepCase{reply, seg(fACK, bEnd+1400-w-200, aEnd, 512, 100), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fFIN|fACK, bEnd+1400-w-200, aEnd, 512, 100), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fRST, bEnd+1400-w-200, aEnd, 512, 0), DropTCPOutOfWindow, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd+1400-w-100, aEnd, 512, 100), Forward, "ESTABLISHED"},
		)},
		{"retransmissions", with(scaled(),
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 1400), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd+1400, bEnd, 512, 1400), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 1400), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK|fPSH, aEnd, bEnd, 512, 2800), Forward, "ESTABLISHED"}, // repacketised
			tcpStepCase{orig, seg(fACK|fPSH, aEnd+2800, bEnd, 512, 10), Forward, "ESTABLISHED"},
		)},
		{"keepalives", with(scaled(),
			tcpStepCase{orig, seg(fACK, aEnd-1, bEnd, 512, 0), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd-1, bEnd, 512, 1), Forward, "ESTABLISHED"}, // with a garbage byte
			tcpStepCase{reply, seg(fACK, bEnd-1, aEnd, 512, 0), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd-1, aEnd, 512, 1), Forward, "ESTABLISHED"},
		)},
		{"zero-window probes", with(scaled(),
			tcpStepCase{orig, seg(fACK, aEnd, bEnd, 512, 3000), Forward, "ESTABLISHED"},
			// B's buffer is full: it advertises no window, and A probes
			// with a byte beyond it (RFC 9293 §3.8.6.1), or as Linux does,
			// with an empty segment one below SND.UNA.
			tcpStepCase{reply, seg(fACK, bEnd, aEnd+3000, 0, 0), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+3000, bEnd, 512, 1), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+2999, bEnd, 512, 0), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd, aEnd+3000, 512, 0), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+3000, bEnd, 512, 1400), Forward, "ESTABLISHED"},
		)},
		{"a scaled window grows", with(scaled(),
			// B opens its window to 4 MiB; A may fill it.
			tcpStepCase{reply, seg(fACK, bEnd, aEnd, 32768, 0), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+4<<20-1400, bEnd, 512, 1400), Forward, "ESTABLISHED"},
			tcpStepCase{orig, seg(fACK, aEnd+4<<20+4<<20+64, bEnd, 512, 1400), DropTCPOutOfWindow, "ESTABLISHED"},
		)},
		{"without scaling the window stays 64 KiB", with(handshake([]tcpSeg{ws(7)}, nil),
			tcpStepCase{reply, seg(fACK, bEnd+64000, aEnd, 512, 100), Forward, "ESTABLISHED"},
			tcpStepCase{reply, seg(fACK, bEnd+64100+65600, aEnd, 512, 100), DropTCPOutOfWindow, "ESTABLISHED"},
		)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runTCP(t, c.steps) })
	}
}

func (s tcpStepCase) withState(state string) tcpStepCase { s.state = state; return s }

// TestTCPTrackerDropsKeepState pins that every verdict-drop leaves state
// and words bit for bit; runTCP checks it on every step above, this
// checks the words of a whole connection are what the RFCs say.
func TestTCPTrackerWords(t *testing.T) {
	_, tr := runTCP(t, with(scaled(),
		tcpStepCase{orig, seg(fACK|fPSH, isnA+1, isnB+1, 600, 1000), Forward, "ESTABLISHED"},
	))
	a, b := tr[orig], tr[reply]
	if trEnd(a) != isnA+1+1000 || trEnd(b) != isnB+1 {
		t.Errorf("ends %d %d", trEnd(a), trEnd(b))
	}
	// A: SYN window 64240 unscaled, later 600<<7; B: 65160 unscaled, later 512<<7.
	if trWin(a) != 600<<7 || trWin(b) != 65536 {
		t.Errorf("windows %d %d", trWin(a), trWin(b))
	}
	if a&trWS == 0 || b&trWS == 0 || trScale(a) != 7 || trScale(b) != 7 || (a|b)&trLiberal != 0 {
		t.Errorf("flags %x %x", a, b)
	}
}

func TestTCPTimeoutClasses(t *testing.T) {
	for st, want := range map[uint8]int{
		tcpSynSent: toTCPSyn, tcpSynRecv: toTCPSyn, tcpEstablished: toTCPEstablished,
		tcpClosing | tcpFinOrig: toTCPTransitory, tcpClosing | tcpFins: toTCPTransitory,
		tcpClosed: toTCPClosed, tcpClosed | tcpAliveOrig: toTCPClosed,
		tcpEstablished | tcpRSTPending: toTCPClosed,
	} {
		if got := timeoutClass(st); got != want {
			t.Errorf("timeoutClass(%#x) = %d, want %d", st, got, want)
		}
	}
}

// TestTCPTrackerSYNData pins the SYN/ACK's acknowledgment of a SYN that
// carries data: a server without TCP Fast Open acknowledges ISN+1 only,
// one with it the data too (RFC 7413); both open the connection, as
// conntrack lets them. Anything before ISN+1 or past the SYN's end is
// not an answer to it.
func TestTCPTrackerSYNData(t *testing.T) {
	const n = 100
	syn := tcpStepCase{orig, seg(fSYN, isnA, 0, 64240, n), Forward, "SYN_SENT"}
	synAck := func(ack uint32, v Verdict, state string) tcpStepCase {
		return tcpStepCase{reply, seg(fSYN|fACK, isnB, ack, 65160, 0), v, state}
	}
	cases := []struct {
		name  string
		steps []tcpStepCase
	}{
		{"data not taken: ack ISN+1, data resent", []tcpStepCase{syn,
			synAck(isnA+1, Forward, "SYN_RECV"),
			{orig, seg(fACK|fPSH, isnA+1, isnB+1, 502, n), Forward, "ESTABLISHED"},
			{reply, seg(fACK, isnB+1, isnA+1+n, 509, 0), Forward, "ESTABLISHED"},
		}},
		{"data taken (Fast Open): ack past the data", []tcpStepCase{syn,
			synAck(isnA+1+n, Forward, "SYN_RECV"),
			{orig, seg(fACK, isnA+1+n, isnB+1, 502, 0), Forward, "ESTABLISHED"},
		}},
		{"part of the data acknowledged", []tcpStepCase{syn, synAck(isnA+1+n/2, Forward, "SYN_RECV")}},
		{"ack of ISN: dropped", []tcpStepCase{syn, synAck(isnA, DropTCPOutOfWindow, "SYN_SENT")}},
		{"ack past the data: dropped", []tcpStepCase{syn, synAck(isnA+2+n, DropTCPOutOfWindow, "SYN_SENT")}},
		{"retransmitted SYN with a new ISN moves the span", []tcpStepCase{syn,
			{orig, seg(fSYN, isnA+7000, 0, 64240, n), Forward, "SYN_SENT"},
			synAck(isnA+1, DropTCPOutOfWindow, "SYN_SENT"),
			synAck(isnA+7001, Forward, "SYN_RECV"),
		}},
		{"no data: exactly ISN+1", []tcpStepCase{
			{orig, seg(fSYN, isnA, 0, 64240, 0), Forward, "SYN_SENT"},
			synAck(isnA+2, DropTCPOutOfWindow, "SYN_SENT"),
			synAck(isnA, DropTCPOutOfWindow, "SYN_SENT"),
			synAck(isnA+1, Forward, "SYN_RECV"),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { runTCP(t, c.steps) })
	}
}
