package nat

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// TestTCPTrackerBehindUntracked: a segment behind the window passes and
// leaves state and both words exactly as they were.
func TestTCPTrackerBehindUntracked(t *testing.T) {
	st, tr := runTCP(t, scaled())
	for _, d := range []flowtable.Dir{orig, reply} {
		g := seg(fACK|fPSH, uint32(isnA+1)+3<<30, isnB+1, 65535, 1000)
		if d == reply {
			g = seg(fACK|fPSH, uint32(isnB+1)+3<<30, isnA+1, 65535, 1000)
		}
		if nst, _, ntr, v := tcpStep(st, tr, d, &g); v != Forward || nst != st || ntr != tr {
			t.Fatalf("from %v: %v, state %#x→%#x, words %x→%x", d, v, st, nst, tr, ntr)
		}
	}
}

// TestTCPTrackerLiberal: a direction picked up mid-connection (its
// tracking lost, or resynchronised from a SYN/ACK fastnat did not expect)
// is tracked liberally, as conntrack's be_liberal flag: its segments are
// never held to a window, however far they jump.
func TestTCPTrackerLiberal(t *testing.T) {
	st := tcpEstablished
	tr := [2]uint64{0, synWord(&tcpSeg{win: 65535}, isnB+1)}
	for i, g := range []tcpSeg{
		seg(fACK|fPSH, 777, isnB+1, 512, 1000),
		seg(fACK|fPSH, 777+1<<31, isnB+1, 512, 1000),
		seg(fACK, 3, isnB+1, 512, 0),
	} {
		nst, _, ntr, v := tcpStep(st, tr, orig, &g)
		if v != Forward || nst != st || ntr[orig]&trLiberal == 0 {
			t.Fatalf("segment %d of a liberal direction: %v, state %s, word %x", i, v, TCPStateName(nst), ntr[orig])
		}
		tr = ntr
	}
	// And its peer, whose receiver is liberal, is not held either.
	g := seg(fACK|fPSH, isnB+1+1<<30, 3, 512, 100)
	if _, _, _, v := tcpStep(st, tr, reply, &g); v != Forward {
		t.Fatalf("peer of a liberal direction: %v", v)
	}
}

// flagNames names a combination of the TCP flags.
func flagNames(f uint8) string {
	s := ""
	for i, n := range []string{"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"} {
		if f&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	if s == "" {
		return "NULL"
	}
	return s
}

// validFlags are the combinations conntrack's tcp_valid_flags accepts,
// PSH, ECE and CWR aside, written out independently of tcpValidFlags.
var validFlags = map[string]bool{
	"SYN": true, "SYN|URG": true, "SYN|ACK": true, "RST": true, "RST|ACK": true,
	"FIN|ACK": true, "FIN|ACK|URG": true, "ACK": true, "ACK|URG": true,
}

// TestTCPTrackerBadFlags: on a tracked connection every combination of
// flags that conntrack's tcp_valid_flags refuses — NULL, FIN without ACK,
// SYN with RST or FIN, XMAS — is dropped as tcp_bad_flags and changes
// nothing; every other combination passes the check.
func TestTCPTrackerBadFlags(t *testing.T) {
	st, tr := runTCP(t, scaled())
	for f := range 256 {
		flags := uint8(f)
		key := flagNames(flags &^ (packet.FlagPSH | packet.FlagECE | packet.FlagCWR))
		for _, d := range []flowtable.Dir{orig, reply} {
			g := seg(flags, isnA+1, isnB+1, 512, 10)
			if d == reply {
				g = seg(flags, isnB+1, isnA+1, 512, 10)
			}
			nst, _, ntr, v := tcpStep(st, tr, d, &g)
			switch {
			case !validFlags[key] && (v != DropTCPBadFlags || nst != st || ntr != tr):
				t.Errorf("%s from %v: %v, state %s (want tcp_bad_flags, nothing changed)", flagNames(flags), d, v, TCPStateName(nst))
			case validFlags[key] && v == DropTCPBadFlags:
				t.Errorf("%s from %v: dropped as tcp_bad_flags", flagNames(flags), d)
			}
		}
	}
}

// tcpFrame is testutil.TCP with any flags byte and window.
func tcpFrame(tb testing.TB, src, dst string, flags uint8, seq, ack uint32, win uint16, payload []byte) []byte {
	tb.Helper()
	f := testutil.TCP(tb, src, dst, testutil.ACK, seq, ack, payload)
	ip := f[packet.EthernetLen:]
	ip[packet.IPv4MinLen+13] = flags
	binary.BigEndian.PutUint16(ip[packet.IPv4MinLen+14:], win)
	recompute(ip)
	return f
}

// validConn is an outbound connection through a rig whose handshake and
// a first exchange of 100 bytes each way are done.
type validConn struct {
	g                  *rig
	client, server     string // as the client sees them
	back               string // the client's public endpoint
	cNext, sNext       uint32 // each side's next sequence number
	cWin, sWin         uint16
	established        Result
	inside, fromServer func(flags uint8, seq uint32, win uint16, n int) []byte
}

func newValidConn(t testing.TB) *validConn {
	c := &validConn{g: newRig(t, testRules(t)), client: hostA + ":40000", server: remote + ":80",
		cNext: 1000, sNext: 5000, cWin: 65535, sWin: 65535}
	g := c.g
	r, d := g.send(Inside, tcpFrame(t, c.client, c.server, packet.FlagSYN, c.cNext, 0, c.cWin, nil))
	if r.Verdict != Forward {
		t.Fatalf("SYN: %v", r.Verdict)
	}
	c.back = d.Src()
	c.cNext++
	c.inside = func(flags uint8, seq uint32, win uint16, n int) []byte {
		return tcpFrame(t, c.client, c.server, flags, seq, c.sNext, win, make([]byte, n))
	}
	c.fromServer = func(flags uint8, seq uint32, win uint16, n int) []byte {
		return tcpFrame(t, c.server, c.back, flags, seq, c.cNext, win, make([]byte, n))
	}
	g.mustForward(Outside, c.fromServer(packet.FlagSYN|packet.FlagACK, c.sNext, c.sWin, 0))
	c.sNext++
	c.established = g.mustForward(Inside, c.inside(packet.FlagACK, c.cNext, c.cWin, 0))
	g.mustForward(Inside, c.inside(packet.FlagACK|packet.FlagPSH, c.cNext, c.cWin, 100))
	c.cNext += 100
	g.mustForward(Outside, c.fromServer(packet.FlagACK|packet.FlagPSH, c.sNext, c.sWin, 100))
	c.sNext += 100
	return c
}

// expect sends frame and checks the verdict; a forwarded segment must
// arrive translated with its sequence number and payload as sent.
func (c *validConn) expect(t *testing.T, name string, from Side, frame []byte, want Verdict) {
	t.Helper()
	r, d := c.g.send(from, frame)
	if r.Verdict != want {
		t.Fatalf("%s: %v, want %v", name, r.Verdict, want)
	}
	if want != Forward {
		return
	}
	sent := testutil.Decode(t, frame)
	if wantDst := map[Side]string{Inside: c.server, Outside: c.client}[from]; d.Dst() != wantDst || d.TCP.Seq != sent.TCP.Seq ||
		len(d.TCP.Payload) != len(sent.TCP.Payload) {
		t.Fatalf("%s: forwarded to %s seq %d len %d, want %s seq %d len %d", name, d.Dst(), d.TCP.Seq, len(d.TCP.Payload),
			wantDst, sent.TCP.Seq, len(sent.TCP.Payload))
	}
}

// TestEngineDropsOutOfWindowData: through the engine, data from either
// side beyond the receiver's window (64 KiB, unscaled, here) is dropped
// and counted as tcp_out_of_window with the session unchanged, while data,
// retransmissions, keepalives and zero-window probes inside it are
// forwarded, and so are old duplicates behind it, without moving the
// tracking (the "just above again" would pass had they moved it) — as
// Linux conntrack with tcp_be_liberal=0.
func TestEngineDropsOutOfWindowData(t *testing.T) {
	c := newValidConn(t)
	data := packet.FlagACK | packet.FlagPSH
	for _, side := range []struct {
		from Side
		make func(flags uint8, seq uint32, win uint16, n int) []byte
		next *uint32
	}{{Outside, c.fromServer, &c.sNext}, {Inside, c.inside, &c.cNext}} {
		name := func(s string) string { return fmt.Sprintf("from %v: %s", side.from, s) }
		next := *side.next
		c.expect(t, name("far above"), side.from, side.make(data, next+1<<30, 65535, 100), DropTCPOutOfWindow)
		c.expect(t, name("just above"), side.from, side.make(data, next+65536+64, 65535, 100), DropTCPOutOfWindow)
		// Behind the window: forwarded untracked, as conntrack does.
		c.expect(t, name("far below"), side.from, side.make(data, next-1<<30, 65535, 100), Forward)
		c.expect(t, name("just below"), side.from, side.make(data, next-65536-200, 65535, 100), Forward)
		c.expect(t, name("just above again"), side.from, side.make(data, next+65536+64, 65535, 100), DropTCPOutOfWindow)
		c.expect(t, name("pure ACK far off"), side.from, side.make(packet.FlagACK, next+1<<31, 65535, 0), DropTCPOutOfWindow)
		c.expect(t, name("in window"), side.from, side.make(data, next, 65535, 100), Forward)
		c.expect(t, name("retransmission"), side.from, side.make(data, next, 65535, 100), Forward)
		c.expect(t, name("keepalive"), side.from, side.make(packet.FlagACK, next+99, 65535, 0), Forward)
		c.expect(t, name("keepalive with a byte"), side.from, side.make(packet.FlagACK, next+99, 65535, 1), Forward)
		c.expect(t, name("ahead within the window"), side.from, side.make(data, next+60000, 65535, 100), Forward)
		*side.next = next + 100
	}
	// The client's window closes; the server probes it.
	c.expect(t, "zero window", Inside, c.inside(packet.FlagACK, c.cNext, 0, 0), Forward)
	c.expect(t, "zero-window probe", Outside, c.fromServer(packet.FlagACK, c.sNext, 65535, 1), Forward)
	c.expect(t, "zero-window probe, Linux", Outside, c.fromServer(packet.FlagACK, c.sNext-1, 65535, 0), Forward)
	if st := c.g.state(c.established); st&tcpStateMask != tcpEstablished {
		t.Fatalf("state %s after all that", TCPStateName(st))
	}
}

// TestEngineDropsBadFlags: through the engine, a segment of an
// established connection with flags no stack sends is dropped as
// tcp_bad_flags from either side, in window or not, and the connection
// carries on ESTABLISHED.
func TestEngineDropsBadFlags(t *testing.T) {
	c := newValidConn(t)
	bad := []uint8{
		0,
		packet.FlagPSH,
		packet.FlagURG,
		packet.FlagFIN,
		packet.FlagFIN | packet.FlagPSH | packet.FlagURG, // XMAS
		packet.FlagFIN | packet.FlagSYN | packet.FlagRST | packet.FlagPSH | packet.FlagACK | packet.FlagURG,
		packet.FlagSYN | packet.FlagRST,
		packet.FlagSYN | packet.FlagFIN,
		packet.FlagSYN | packet.FlagFIN | packet.FlagACK,
		packet.FlagRST | packet.FlagFIN,
		packet.FlagRST | packet.FlagACK | packet.FlagFIN,
		packet.FlagSYN | packet.FlagACK | packet.FlagURG,
	}
	for _, f := range bad {
		c.expect(t, "from outside "+flagNames(f), Outside, c.fromServer(f, c.sNext, 65535, 10), DropTCPBadFlags)
		c.expect(t, "from inside "+flagNames(f), Inside, c.inside(f, c.cNext, 65535, 10), DropTCPBadFlags)
	}
	if st := c.g.state(c.established); st&tcpStateMask != tcpEstablished {
		t.Fatalf("state %s after bad flags", TCPStateName(st))
	}
	c.expect(t, "data after", Outside, c.fromServer(packet.FlagACK|packet.FlagPSH|packet.FlagURG, c.sNext, 65535, 10), Forward)
	c.expect(t, "data after", Inside, c.inside(packet.FlagACK|packet.FlagECE|packet.FlagCWR, c.cNext, 65535, 10), Forward)
}

// TestForwardCommonLeavesInvalidToGeneral: the established-flow fast path
// takes neither a segment without ACK nor one outside the window; it
// hands both on unchanged to the general path, which drops them.
func TestForwardCommonLeavesInvalidToGeneral(t *testing.T) {
	c := newValidConn(t)
	for _, tc := range []struct {
		name  string
		frame []byte
		take  bool
	}{
		{"in window", c.fromServer(packet.FlagACK|packet.FlagPSH, c.sNext, 65535, 10), true},
		{"no ACK", c.fromServer(packet.FlagPSH, c.sNext, 65535, 10), false},
		{"NULL", c.fromServer(0, c.sNext, 65535, 10), false},
		{"out of window", c.fromServer(packet.FlagACK|packet.FlagPSH, c.sNext+1<<30, 65535, 10), false},
	} {
		f := append([]byte(nil), tc.frame...)
		var p packet.Parsed
		if packet.Parse(f, &p) != packet.OK {
			t.Fatal("frame does not parse")
		}
		hits := make([]flowtable.Hit, 1)
		c.g.table.LookupBatch([]packet.Tuple{p.Tuple}, hits)
		if !hits[0].Found {
			t.Fatalf("%s: no session", tc.name)
		}
		before := c.g.table.Track(hits[0].ID, hits[0].Dir)
		_, _, ok := c.g.e.ForwardCommon(f, &hits[0], Outside, c.g.now)
		if ok != tc.take {
			t.Fatalf("%s: ForwardCommon took it: %v", tc.name, ok)
		}
		if !ok && (string(f) != string(tc.frame) || c.g.table.Track(hits[0].ID, hits[0].Dir) != before) {
			t.Fatalf("%s: refused, but changed the frame or the tracking", tc.name)
		}
	}
}
