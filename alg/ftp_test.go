package alg

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/portmap"
)

// Initial sequence numbers close to the wrap, so that every test crosses
// 2^32.
const (
	isnC uint32 = 0xffffffe0
	isnS uint32 = 0xfffffff8
)

func isnOf(dir flowtable.Dir) uint32 {
	if dir == flowtable.Orig {
		return isnC
	}
	return isnS
}

// rcvr reassembles what a receiver gets, by sequence number, and fails
// the test if two frames disagree about a byte.
type rcvr struct {
	tb   testing.TB
	isn  uint32
	data map[uint32]byte // by offset from isn+1
}

func newRcvr(tb testing.TB, isn uint32) *rcvr {
	return &rcvr{tb: tb, isn: isn, data: map[uint32]byte{}}
}

func (r *rcvr) add(s seg) {
	r.tb.Helper()
	off := s.seq - r.isn - 1
	for i := 0; i < len(s.payload); i++ {
		o := off + uint32(i)
		if b, ok := r.data[o]; ok && b != s.payload[i] {
			r.tb.Fatalf("byte %d delivered as %q and later as %q (segment seq +%d %q)", o, b, s.payload[i], off, s.payload)
		}
		r.data[o] = s.payload[i]
	}
}

// next returns the offset of the first byte not received in order.
func (r *rcvr) next() uint32 {
	var o uint32
	for {
		if _, ok := r.data[o]; !ok {
			return o
		}
		o++
	}
}

func (r *rcvr) stream() string {
	n := r.next()
	b := make([]byte, n)
	for i := range b {
		b[i] = r.data[uint32(i)]
	}
	return string(b)
}

// form is one announcing line and what the receiver must get.
type form struct {
	name  string
	sc    func(testing.TB) scenario
	dir   flowtable.Dir
	in    string
	want  string
	calls int // expectations
}

func forms(t testing.TB) []form {
	in := func(s string) uint32 { return testutil.Addr(t, s) }
	p := uint16(195<<8 | 80)
	pp := pubPort(p)
	e := uint16(50000)
	pe := pubPort(e)
	return []form{
		{"server inside 227 parentheses", serverInside, flowtable.Reply,
			"227 Entering Passive Mode (10,0,0,5,195,80).\r\n",
			"227 Entering Passive Mode (" + hostPort(in("198.18.0.204"), pp) + ").\r\n", 1},
		{"server inside 227 without parentheses", serverInside, flowtable.Reply,
			"227 Entering Passive Mode 10,0,0,5,195,80\r\n",
			"227 Entering Passive Mode " + hostPort(in("198.18.0.204"), pp) + "\r\n", 1},
		{"server inside 227 equals", serverInside, flowtable.Reply,
			"227 =10,0,0,5,195,80\n",
			"227 =" + hostPort(in("198.18.0.204"), pp) + "\n", 1},
		{"server inside 227 public address already", serverInside, flowtable.Reply,
			"227 Entering Passive Mode (198,18,0,204,195,80)\r\n",
			"227 Entering Passive Mode (" + hostPort(in("198.18.0.204"), pp) + ")\r\n", 1},
		{"server inside 229", serverInside, flowtable.Reply,
			"229 Entering Extended Passive Mode (|||50000|)\r\n",
			fmt.Sprintf("229 Entering Extended Passive Mode (|||%d|)\r\n", pe), 1},
		{"server inside PORT from outside client", serverInside, flowtable.Orig,
			"PORT 198,18,7,10,195,80\r\n", "PORT 198,18,7,10,195,80\r\n", 1},
		{"server inside EPRT from outside client", serverInside, flowtable.Orig,
			"EPRT |1|198.18.7.10|50000|\r\n", "EPRT |1|198.18.7.10|50000|\r\n", 1},
		{"client inside PORT", clientInside, flowtable.Orig,
			"PORT 10,0,0,5,195,80\r\n", "PORT " + hostPort(in("198.18.0.204"), pp) + "\r\n", 1},
		{"client inside PORT lower case", clientInside, flowtable.Orig,
			"port 10,0,0,5,195,80\r\n", "port " + hostPort(in("198.18.0.204"), pp) + "\r\n", 1},
		{"client inside EPRT", clientInside, flowtable.Orig,
			"EPRT |1|10.0.0.5|50000|\r\n", fmt.Sprintf("EPRT |1|198.18.0.204|%d|\r\n", pe), 1},
		{"client inside 227 from outside server", clientInside, flowtable.Reply,
			"227 Entering Passive Mode (198,18,1,1,195,80)\r\n", "227 Entering Passive Mode (198,18,1,1,195,80)\r\n", 1},
		{"client inside 229 from outside server", clientInside, flowtable.Reply,
			"229 Entering Extended Passive Mode (|||50000|)\r\n", "229 Entering Extended Passive Mode (|||50000|)\r\n", 1},
		{"shrink client inside PORT", clientInsideShrink, flowtable.Orig,
			"PORT 198,18,0,204,195,80\r\n", "PORT " + hostPort(in("10.0.0.5"), pp) + "\r\n", 1},
		{"shrink client inside EPRT", clientInsideShrink, flowtable.Orig,
			"EPRT |1|198.18.0.204|50000|\r\n", fmt.Sprintf("EPRT |1|10.0.0.5|%d|\r\n", pe), 1},
		{"shrink server inside 227", serverInsideShrink, flowtable.Reply,
			"227 Entering Passive Mode (198,18,0,204,195,80).\r\n",
			"227 Entering Passive Mode (" + hostPort(in("10.0.0.5"), pp) + ").\r\n", 1},
		{"several in one segment", clientInside, flowtable.Orig,
			"TYPE I\r\nPORT 10,0,0,5,195,80\r\nEPRT |1|10.0.0.5|50000|\r\nLIST\r\n",
			"TYPE I\r\nPORT " + hostPort(in("198.18.0.204"), pp) + "\r\n" + fmt.Sprintf("EPRT |1|198.18.0.204|%d|\r\n", pe) + "LIST\r\n", 2},
		{"reply after other lines", serverInside, flowtable.Reply,
			"200 Switching to Binary mode.\r\n227 Entering Passive Mode (10,0,0,5,195,80).\r\n",
			"200 Switching to Binary mode.\r\n227 Entering Passive Mode (" + hostPort(in("198.18.0.204"), pp) + ").\r\n", 1},
		{"227 inside a multi-line reply is text", serverInside, flowtable.Reply,
			"211-Status\r\n227 Entering Passive Mode (10,0,0,5,195,80).\r\n211 End\r\n",
			"211-Status\r\n227 Entering Passive Mode (10,0,0,5,195,80).\r\n211 End\r\n", 0},
		{"227 after a multi-line reply", serverInside, flowtable.Reply,
			"211-Status\r\n 1\r\n211 End\r\n227 =10,0,0,5,195,80\r\n",
			"211-Status\r\n 1\r\n211 End\r\n227 =" + hostPort(in("198.18.0.204"), pp) + "\r\n", 1},
		{"malformed PORT passes", clientInside, flowtable.Orig,
			"PORT 10,0,0,5,195\r\n", "PORT 10,0,0,5,195\r\n", 0},
	}
}

// TestForms sends each form in one segment and checks the rewrite, the
// expectation, and the sequence correction of what follows in both
// directions, all decoded by gopacket.
func TestForms(t *testing.T) {
	for _, fm := range forms(t) {
		t.Run(fm.name, func(t *testing.T) {
			h := newHarness(t, fm.sc(t), Config{})
			h.handshake(isnC, isnS)
			d := fm.dir
			isn, peerISN := isnOf(d), isnOf(1-d)
			s, v := h.process(d, h.frame(d, testutil.ACK|testutil.PSH, isn+1, peerISN+1, []byte(fm.in)))
			if v != Forward {
				t.Fatalf("verdict %v", v)
			}
			if s.payload != fm.want {
				t.Errorf("payload\n got %q\nwant %q", s.payload, fm.want)
			}
			if s.seq != isn+1 || s.ack != peerISN+1 {
				t.Errorf("seq/ack %d/%d, want %d/%d", s.seq, s.ack, isn+1, peerISN+1)
			}
			if len(h.nat.calls) != fm.calls {
				t.Errorf("%d expectations, want %d", len(h.nat.calls), fm.calls)
			}
			delta := uint32(len(fm.want) - len(fm.in))
			// The sender's next segment is shifted by the delta.
			s, _ = h.process(d, h.frame(d, testutil.ACK|testutil.PSH, isn+1+uint32(len(fm.in)), peerISN+1, []byte("NOOP\r\n")))
			if want := isn + 1 + uint32(len(fm.in)) + delta; s.seq != want {
				t.Errorf("next seq %d, want %d (delta %d)", s.seq, want, int32(delta))
			}
			// The receiver acknowledges in its space; the sender gets its
			// own back, SACK blocks too.
			rcvEnd := isn + 1 + uint32(len(fm.want)) + 6
			sndEnd := isn + 1 + uint32(len(fm.in)) + 6
			blk := [2]uint32{rcvEnd + 100, rcvEnd + 200}
			s, _ = h.process(1-d, h.frame(1-d, testutil.ACK, peerISN+1, rcvEnd, nil, sackOpt(blk)...))
			if s.ack != sndEnd {
				t.Errorf("ack %d, want %d", s.ack, sndEnd)
			}
			if len(s.sack) != 1 || s.sack[0] != [2]uint32{sndEnd + 100, sndEnd + 200} {
				t.Errorf("sack %v, want [%d %d]", s.sack, sndEnd+100, sndEnd+200)
			}
		})
	}
}

// TestSplitEverywhere splits each form into two segments at every byte
// position, and one form into three at every pair of positions, then
// retransmits every segment: the receiver's stream must be the rewritten
// one, every byte delivered the same way each time, one expectation per
// line, and the sequence numbers after it shifted.
func TestSplitEverywhere(t *testing.T) {
	for _, fm := range forms(t) {
		t.Run(fm.name, func(t *testing.T) {
			for k := 1; k < len(fm.in); k++ {
				splitRun(t, fm, []int{k})
			}
		})
	}
	t.Run("three segments", func(t *testing.T) {
		fm := forms(t)[0]
		for i := 1; i < len(fm.in); i++ {
			for j := i + 1; j < len(fm.in); j++ {
				splitRun(t, fm, []int{i, j})
			}
		}
	})
}

// splitCase is one form sent cut at cuts: the harness after the
// handshake, the form's direction and initial sequence numbers, the
// receiver and the segment bounds.
type splitCase struct {
	h         *harness
	fm        form
	cuts      []int
	d         flowtable.Dir
	isn, peer uint32
	r         *rcvr
	bounds    []int
}

func newSplitCase(t *testing.T, fm form, cuts []int) *splitCase {
	t.Helper()
	h := newHarness(t, fm.sc(t), Config{})
	h.handshake(isnC, isnS)
	d := fm.dir
	return &splitCase{h: h, fm: fm, cuts: cuts, d: d, isn: isnOf(d), peer: isnOf(1 - d),
		r: newRcvr(t, isnOf(d)), bounds: append(append([]int{0}, cuts...), len(fm.in))}
}

// check verifies the stream the receiver got and the expectations, and
// that the receiver's acknowledgement of the line reaches the sender as
// its own end.
func (c *splitCase) check(t *testing.T) {
	t.Helper()
	if got := c.r.stream(); got != c.fm.want {
		t.Fatalf("cuts %v: stream\n got %q\nwant %q", c.cuts, got, c.fm.want)
	}
	if len(c.h.nat.calls) != c.fm.calls {
		t.Fatalf("cuts %v: %d expectations, want %d", c.cuts, len(c.h.nat.calls), c.fm.calls)
	}
	s, _ := c.h.process(1-c.d, c.h.frame(1-c.d, testutil.ACK, c.peer+1, c.isn+1+uint32(len(c.fm.want)), nil))
	if want := c.isn + 1 + uint32(len(c.fm.in)); s.ack != want {
		t.Fatalf("cuts %v: ack %d, want %d", c.cuts, s.ack, want)
	}
}

func splitRun(t *testing.T, fm form, cuts []int) {
	t.Helper()
	c := newSplitCase(t, fm, cuts)
	h, d, isn := c.h, c.d, c.isn
	send := func() {
		for i := 0; i+1 < len(c.bounds); i++ {
			a, b := c.bounds[i], c.bounds[i+1]
			s, v := h.process(d, h.frame(d, testutil.ACK, isn+1+uint32(a), c.peer+1, []byte(fm.in[a:b])))
			if v != Forward {
				t.Fatalf("cuts %v: segment %d verdict %v", cuts, i, v)
			}
			c.r.add(s)
		}
	}
	send()
	send() // all retransmitted
	s, _ := h.process(d, h.frame(d, testutil.ACK, isn+1+uint32(len(fm.in)), c.peer+1, []byte("NOOP\r\n")))
	if want := isn + 1 + uint32(len(fm.want)); s.seq != want {
		t.Fatalf("cuts %v: next seq %d, want %d", cuts, s.seq, want)
	}
	c.check(t)
}

// TestRetransmissionIdentical: a retransmitted rewritten segment is
// rewritten byte for byte the same, with no second expectation.
func TestRetransmissionIdentical(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	in := []byte("227 Entering Passive Mode (10,0,0,5,195,80).\r\n")
	var outs [3][]byte
	for i := range outs {
		fr := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, in)
		n, v := h.processAt(fr, h.id, flowtable.Reply, 100)
		if v != Forward {
			t.Fatal(v)
		}
		testutil.Decode(t, fr[:n])
		outs[i] = fr[:n]
	}
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], outs[2]) {
		t.Errorf("retransmissions differ:\n%x\n%x\n%x", outs[0], outs[1], outs[2])
	}
	if len(h.nat.calls) != 1 {
		t.Errorf("%d expectations, want 1", len(h.nat.calls))
	}
	if st := h.ftp.Stats().Total; st.Rewritten != 1 || st.Replayed != 2 || st.ExpectCreated != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestCorrectionPoints keeps several rewrites in flight: the receiver's
// acknowledgements and SACK blocks for any of them map back exactly,
// retransmissions of the older ones are shifted right, and a point is
// dropped only after it is acknowledged.
func TestCorrectionPoints(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	lines := []string{
		"227 Entering Passive Mode (10,0,0,5,195,80).\r\n",
		"150 Here comes the directory listing.\r\n",
		"227 Entering Passive Mode (10,0,0,5,195,81).\r\n",
		"229 Entering Extended Passive Mode (|||2000|)\r\n",
		"226 Directory send OK.\r\n",
	}
	type sent struct{ seq, n, newSeq, newN uint32 }
	var segs []sent
	seq := isnS + 1
	for _, l := range lines {
		s, v := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, seq, isnC+1, []byte(l)))
		if v != Forward {
			t.Fatal(v)
		}
		segs = append(segs, sent{seq, uint32(len(l)), s.seq, uint32(len(s.payload))})
		seq += uint32(len(l))
	}
	if n := h.state().dirs[flowtable.Reply].nrec; n != 3 {
		t.Fatalf("%d correction points, want 3", n)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].newSeq != segs[i-1].newSeq+segs[i-1].newN {
			t.Fatalf("segment %d at %d, previous ends at %d", i, segs[i].newSeq, segs[i-1].newSeq+segs[i-1].newN)
		}
	}
	// SACK of segments 2 and 4 while 1 and 3 are missing.
	blk := [][2]uint32{{segs[2].newSeq, segs[2].newSeq + segs[2].newN}, {segs[4].newSeq, segs[4].newSeq + segs[4].newN}}
	s, _ := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, segs[1].newSeq, nil, sackOpt(blk...)...))
	if s.ack != segs[1].seq {
		t.Errorf("ack %d, want %d", s.ack, segs[1].seq)
	}
	want := [][2]uint32{{segs[2].seq, segs[2].seq + segs[2].n}, {segs[4].seq, segs[4].seq + segs[4].n}}
	if fmt.Sprint(s.sack) != fmt.Sprint(want) {
		t.Errorf("sack %v, want %v", s.sack, want)
	}
	if n := h.state().dirs[flowtable.Reply].nrec; n != 2 {
		t.Errorf("%d correction points after the first is acknowledged, want 2", n)
	}
	// Retransmit segments 1..4 as one: same bytes, same place.
	var all string
	for _, l := range lines[1:] {
		all += l
	}
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, segs[1].seq, isnC+1, []byte(all)))
	if s.seq != segs[1].newSeq || uint32(len(s.payload)) != segs[4].newSeq+segs[4].newN-segs[1].newSeq {
		t.Errorf("retransmission at %d len %d", s.seq, len(s.payload))
	}
	if len(h.nat.calls) != 3 {
		t.Errorf("%d expectations, want 3", len(h.nat.calls))
	}
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, segs[4].newSeq+segs[4].newN, nil))
	if s.ack != seq {
		t.Errorf("final ack %d, want %d", s.ack, seq)
	}
	if n := h.state().dirs[flowtable.Reply].nrec; n != 0 {
		t.Errorf("%d correction points after all acknowledged, want 0", n)
	}
	// Later segments keep the accumulated shift.
	s, _ = h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, seq, isnC+1, []byte("221 Goodbye.\r\n")))
	if want := segs[4].newSeq + segs[4].newN; s.seq != want {
		t.Errorf("after pruning seq %d, want %d", s.seq, want)
	}
}

// TestAckInsideRewrite: an acknowledgement that ends inside rewritten text
// (a receiver that took part of a segment) maps to the text's start; a
// SACK block starting inside it to its end.
func TestAckInsideRewrite(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	in := "227 =10,0,0,5,195,80\r\n"
	s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte(in)))
	textAt := strings.Index(s.payload, "198")
	mid := isnS + 1 + uint32(textAt) + 3
	s, _ = h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, mid, nil, sackOpt([2]uint32{mid, mid + 30})...))
	spanStart, spanEnd := isnS+1+5, isnS+1+uint32(len(in))-2
	if s.ack != spanStart {
		t.Errorf("ack %d, want span start %d", s.ack, spanStart)
	}
	if len(s.sack) != 1 || s.sack[0][0] != spanEnd {
		t.Errorf("sack %v, want left edge at span end %d", s.sack, spanEnd)
	}
}

// TestOutOfOrder: data beyond a gap is dropped and counted; once the gap
// is filled the rest passes, rewritten.
func TestOutOfOrder(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	a, b := "TYPE I\r\n", "PORT 10,0,0,5,195,80\r\n"
	_, v := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(len(a)), isnS+1, []byte(b)))
	if v != DropOutOfOrder || h.ftp.Stats().Total.OutOfOrder != 1 {
		t.Fatalf("verdict %v, stats %+v", v, h.ftp.Stats().Total)
	}
	// A bare ACK beyond the gap passes.
	if _, v := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(len(a+b)), isnS+1, nil)); v != Forward {
		t.Fatalf("bare ack: %v", v)
	}
	r := newRcvr(t, isnC)
	for _, c := range []struct {
		off int
		s   string
	}{{0, a}, {len(a), b}} {
		s, v := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(c.off), isnS+1, []byte(c.s)))
		if v != Forward {
			t.Fatal(v)
		}
		r.add(s)
	}
	if want := a + "PORT " + hostPort(testutil.Addr(t, "198.18.0.204"), pubPort(195<<8|80)) + "\r\n"; r.stream() != want {
		t.Errorf("stream %q, want %q", r.stream(), want)
	}
}

// TestMTUCut: a held line in front of a full segment would exceed the
// MTU: the segment is cut, and the rest, retransmitted, completes the
// stream.
func TestMTUCut(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{MTU: 576})
	h.handshake(isnC, isnS)
	r := newRcvr(t, isnC)
	first := "NOOP\r\nPORT 10,0,0,5,"
	rest := "195,80\r\n" + strings.Repeat("NOOP\r\n", 88)
	stream := first + rest
	want := "NOOP\r\nPORT " + hostPort(testutil.Addr(t, "198.18.0.204"), pubPort(195<<8|80)) + "\r\n" + strings.Repeat("NOOP\r\n", 88)
	una := uint32(0)
	segs := []struct{ off, n int }{{0, len(first)}, {len(first), len(rest)}}
	for round := 0; round < 10 && r.next() < uint32(len(want)); round++ {
		for _, sg := range segs {
			if sg.off+sg.n <= int(una) {
				continue
			}
			fr := h.frame(flowtable.Orig, testutil.ACK, isnC+1+uint32(sg.off), isnS+1, []byte(stream[sg.off:sg.off+sg.n]))
			s, v := h.process(flowtable.Orig, fr)
			if v != Forward {
				t.Fatal(v)
			}
			if l := len(s.payload) + 40; l > 576 {
				t.Fatalf("packet of %d bytes exceeds the MTU", l)
			}
			r.add(s)
		}
		s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1+r.next(), nil))
		una = s.ack - isnC - 1
		segs = []struct{ off, n int }{{int(una), len(stream) - int(una)}}
	}
	if r.stream() != want {
		t.Errorf("stream\n got %q\nwant %q", r.stream(), want)
	}
}

// TestForget: state goes with Forget; the slot's next session (a new
// generation) starts fresh.
func TestForget(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 =10,0,0,5,195,80\r\n")))
	h.ftp.Forget(h.id, h.table.gen(h.id))
	h.sc = clientInside(t)
	h.table.sessions[h.id] = &flowtable.Session{Key: h.sc.key, MapEntry: h.sc.entry}
	h.table.gens[h.id] = 3
	h.handshake(1000, 2000)
	s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, 2001, 1001, []byte("200 ok\r\n")))
	if s.seq != 2001 {
		t.Errorf("seq %d: old correction applied to the new session", s.seq)
	}
	if st := h.ftp.Stats(); st.Total.Sessions != 2 || len(st.Entries) != 2 {
		t.Errorf("stats %+v", st)
	}
	if len(h.ftp.sessions) != 1 {
		t.Errorf("%d sessions kept, want 1", len(h.ftp.sessions))
	}
}

// TestReusedSlot: a frame of the slot's next session (another generation)
// that arrives before the old one is forgotten never meets the old state,
// even with the same tuple; and a frame of a generation the table no
// longer holds is dropped, never passed on unread.
func TestReusedSlot(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 =10,0,0,5,195,80\r\n")))
	old := h.table.gen(h.id)
	h.table.gens[h.id] = old + 2 // the same tuple again, a new session
	h.handshake(1000, 2000)
	s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, 2001, 1001, []byte("200 ok\r\n")))
	if s.seq != 2001 {
		t.Errorf("seq %d: the old session's correction applied to the new one", s.seq)
	}
	if len(h.ftp.sessions) != 2 {
		t.Errorf("%d states, want the old and the new apart", len(h.ftp.sessions))
	}
	// A frame still carrying a generation the table does not hold.
	fr := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 =10,0,0,5,195,81\r\n"))
	it := Item{Buf: fr, Session: h.id, Gen: old + 4, Dir: flowtable.Reply}
	h.ftp.Process(&it, 1)
	if it.Verdict != DropStale {
		t.Errorf("frame of an ended session: verdict %v, want %v", it.Verdict, DropStale)
	}
	h.ftp.SessionEnded(h.id, old, flowtable.Session{App: uint8(portmap.AppFTP)})
	h.ftp.applyForget()
	if _, ok := h.ftp.sessions[keyOf(h.id, old+2)]; !ok || len(h.ftp.sessions) != 1 {
		t.Errorf("forgetting the old generation touched the new: %d states", len(h.ftp.sessions))
	}
}

func TestDisabledAndForeign(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.ftp.cfg.Enabled = false
	fr := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 =10,0,0,5,195,80\r\n"))
	orig := append([]byte(nil), fr...)
	if n, v := h.processAt(fr, h.id, flowtable.Reply, 1); v != Forward || !bytes.Equal(fr[:n], orig) {
		t.Error("disabled ALG changed the frame")
	}
	h.ftp.cfg.Enabled = true
	// A frame whose tuple is not the session's is left alone.
	if n, v := h.processAt(fr, h.id, flowtable.Orig, 1); v != Forward || !bytes.Equal(fr[:n], orig) {
		t.Error("frame of another flow changed")
	}
	// A frame of a session the table does not hold (ended before the ALG
	// saw it) is dropped: it was never read, so it must not leave.
	if _, v := h.processAt(fr, 99, flowtable.Reply, 1); v != DropStale {
		t.Errorf("frame of an unknown session: verdict %v, want %v", v, DropStale)
	}
	udp := testutil.UDP(t, "10.0.0.5:1", "10.0.0.6:2", []byte("227 =10,0,0,5,195,80\r\n"))
	if n, v := h.processAt(udp, h.id, flowtable.Reply, 1); v != Forward || n != len(udp) {
		t.Error("UDP frame changed")
	}
}

func TestVerdictString(t *testing.T) {
	seen := map[string]bool{}
	for v := Verdict(0); v < NumVerdicts; v++ {
		s := v.String()
		if s == "" || seen[s] || strings.ToLower(s) != s || strings.Contains(s, " ") {
			t.Errorf("verdict %d name %q", v, s)
		}
		seen[s] = true
	}
	if NumVerdicts.String() == "" {
		t.Error("out-of-range verdict without a name")
	}
}

func TestNewErrors(t *testing.T) {
	tb := &fakeTable{}
	x := &fakeNAT{}
	for _, c := range []struct {
		name string
		cfg  Config
		tb   Table
		x    Expecter
	}{
		{"no table", Config{}, nil, x},
		{"no expecter", Config{}, tb, nil},
		{"negative limit", Config{MaxExpectations: -1}, tb, x},
		{"tiny mtu", Config{MTU: 100}, tb, x},
	} {
		if _, err := New(c.cfg, c.tb, c.x); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	f, err := New(Config{}, tb, x)
	if err != nil || f.cfg.MaxExpectations != DefaultMaxExpectations || f.cfg.MTU != DefaultMTU {
		t.Errorf("defaults: %v %+v", err, f.cfg)
	}
}

// stepper replays prepared frames through the ALG: each run copies the
// next template into a reused frame buffer, so that only Process itself
// can allocate.
type stepper struct {
	h         *harness
	templates [][]byte
	dirs      []flowtable.Dir
	buf       []byte
	i         int
}

func (s *stepper) add(dir flowtable.Dir, fr []byte) {
	s.templates = append(s.templates, fr)
	s.dirs = append(s.dirs, dir)
}

func (s *stepper) step() Verdict {
	k := s.i % len(s.templates)
	s.i++
	b := s.buf[:len(s.templates[k])]
	copy(b, s.templates[k])
	it := Item{Buf: b, Session: s.h.id, Gen: 1, Dir: s.dirs[k]}
	s.h.ftp.Process(&it, 1)
	return it.Verdict
}

// steadyStreams builds frame sequences whose replay is a steady state:
// plain replies; a rewritten reply retransmitted; a command split in two
// and retransmitted; and an endless conversation of new rewrites, each
// acknowledged (sequence numbers keep growing, so nothing repeats).
func steadyStreams(tb testing.TB) map[string]func() *stepper {
	mk := func(sc scenario) (*harness, *stepper) {
		h := newHarness(tb, sc, Config{})
		h.handshake(isnC, isnS)
		return h, &stepper{h: h, buf: make([]byte, frameSize)}
	}
	return map[string]func() *stepper{
		"plain": func() *stepper {
			h, s := mk(serverInside(tb))
			for i := 0; i < 64; i++ {
				s.add(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1+uint32(i*8), isnC+1, []byte("200 ok\r\n")))
			}
			s.step() // first sight of the session
			s.i = 0
			return s
		},
		"rewrite-retransmitted": func() *stepper {
			h, s := mk(serverInside(tb))
			s.add(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte("227 Entering Passive Mode (10,0,0,5,195,80).\r\n")))
			s.step()
			return s
		},
		"split-retransmitted": func() *stepper {
			h, s := mk(clientInside(tb))
			s.add(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, []byte("PORT 10,0,0")))
			s.add(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+12, isnS+1, []byte(",5,195,80\r\n")))
			s.step()
			s.step()
			return s
		},
	}
}

// TestProcessAllocs: no allocation per frame once a session is known.
func TestProcessAllocs(t *testing.T) {
	for name, mk := range steadyStreams(t) {
		t.Run(name, func(t *testing.T) {
			s := mk()
			if a := testing.AllocsPerRun(500, func() {
				if v := s.step(); v != Forward {
					t.Fatal(v)
				}
			}); a != 0 {
				t.Errorf("%v allocations per frame", a)
			}
		})
	}
	t.Run("new rewrites acknowledged", func(t *testing.T) {
		h := newHarness(t, serverInside(t), Config{})
		h.handshake(isnC, isnS)
		in := []byte("227 Entering Passive Mode (10,0,0,5,195,80).\r\n")
		grow := uint32(len("198,18,0,204,") - len("10,0,0,5,")) // the fake NAT keeps the port's digit count here
		data := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, in)
		ack := h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, nil)
		buf := make([]byte, frameSize)
		i := uint32(0)
		run := func() {
			b := buf[:len(data)]
			copy(b, data)
			binary.BigEndian.PutUint32(b[14+20+4:], isnS+1+i*uint32(len(in)))
			resum(b)
			if _, v := h.processAt(b, h.id, flowtable.Reply, 1); v != Forward {
				t.Fatal(v)
			}
			i++
			b = buf[:len(ack)]
			copy(b, ack)
			binary.BigEndian.PutUint32(b[14+20+8:], isnS+1+i*(uint32(len(in))+grow))
			resum(b)
			if _, v := h.processAt(b, h.id, flowtable.Orig, 1); v != Forward {
				t.Fatal(v)
			}
		}
		run()
		if a := testing.AllocsPerRun(500, run); a != 0 {
			t.Errorf("%v allocations per rewrite", a)
		}
		if n := h.state().dirs[flowtable.Reply].nrec; n > 1 {
			t.Errorf("%d records kept although all were acknowledged", n)
		}
	})
}

// TestKeepalive: a keepalive probe (one byte below the acknowledged point)
// stays one byte below it after the shift, so the receiver still answers
// it; the byte it may carry, already acknowledged, is not sent on.
func TestKeepalive(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	in := "227 =10,0,0,5,195,80\r\n"
	s, _ := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, []byte(in)))
	newEnd := s.seq + uint32(len(s.payload))
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, newEnd, nil))
	una := isnS + 1 + uint32(len(in))
	for _, probe := range []string{"", "\n"} {
		s, v := h.process(flowtable.Reply, h.frame(flowtable.Reply, testutil.ACK, una-1, isnC+1, []byte(probe)))
		if v != Forward || s.seq != newEnd-1 || s.payload != "" {
			t.Errorf("probe %q: verdict %v seq %d payload %q, want seq %d", probe, v, s.seq, s.payload, newEnd-1)
		}
	}
}

// TestResetAtHeldBytes: a reset sent after bytes the ALG holds is moved to
// where the receiver is, the only place it is accepted.
func TestResetAtHeldBytes(t *testing.T) {
	h := newHarness(t, clientInside(t), Config{})
	h.handshake(isnC, isnS)
	h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, []byte("NOOP\r\nPORT 1")))
	s, v := h.process(flowtable.Orig, h.frame(flowtable.Orig, testutil.RST|testutil.ACK, isnC+1+12, isnS+1, nil))
	if v != Forward || s.seq != isnC+1+6 || s.flags&testutil.RST == 0 {
		t.Errorf("reset verdict %v seq +%d flags %#x, want seq +6", v, s.seq-isnC-1, s.flags)
	}
}

// TestSessionEnded: only control sessions are queued for forgetting.
func TestSessionEnded(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	h.ftp.SessionEnded(99, 1, flowtable.Session{App: uint8(portmap.AppFTPData)})
	if h.ftp.forgetPending.Load() {
		t.Error("a data session was queued")
	}
	h.ftp.SessionEnded(h.id, 1, flowtable.Session{App: uint8(portmap.AppFTP)})
	h.ftp.applyForget()
	if len(h.ftp.sessions) != 0 {
		t.Error("control session state kept")
	}
}

// TestSplitStalls cuts each form at every byte position, and into single
// bytes, and makes the sender stall after every segment (it retransmits
// the segment and nothing new, as after a timeout): a stalled segment of a
// held line is acknowledged by the ALG, the line is passed on only
// complete and rewritten, and when the frame completing it is lost, the
// retransmission of the last segment alone brings the whole line again.
func TestSplitStalls(t *testing.T) {
	for _, fm := range forms(t) {
		t.Run(fm.name, func(t *testing.T) {
			for k := 1; k < len(fm.in); k++ {
				stallRun(t, fm, []int{k})
			}
			var every []int
			for k := 1; k < len(fm.in); k++ {
				every = append(every, k)
			}
			stallRun(t, fm, every)
		})
	}
}

func stallRun(t *testing.T, fm form, cuts []int) {
	t.Helper()
	c := newSplitCase(t, fm, cuts)
	h, d, isn := c.h, c.d, c.isn
	// The sender retransmits from una, the first byte not acknowledged
	// (by the ALG: the receiver acknowledges nothing here).
	una := 0
	for i := 0; i+1 < len(c.bounds); i++ {
		for rep := 0; rep < 2; rep++ {
			a, b := c.bounds[i], c.bounds[i+1]
			if rep > 0 {
				a = una
			}
			it := h.run(d, h.frame(d, testutil.ACK, isn+1+uint32(a), c.peer+1, []byte(fm.in[a:b])))
			switch it.Verdict {
			case Back:
				s := h.checkBack(it.Buf, d, c.peer+1, isn+1+uint32(b), testutil.ACK, "")
				una = int(s.ack - isn - 1)
			case Forward:
				s := decodeSeg(t, it.Buf)
				if i == len(c.bounds)-2 && rep == 0 && len(cuts) > 0 {
					continue // the frame completing the stream is lost
				}
				c.r.add(s)
			default:
				t.Fatalf("cuts %v: segment %d: verdict %v", cuts, i, it.Verdict)
			}
		}
	}
	if mayStart([]byte(fm.in[:cuts[0]]), d == flowtable.Orig) && h.ftp.Stats().Total.HeldAcked == 0 {
		t.Fatalf("cuts %v: the stalled first segment was not acknowledged", cuts)
	}
	c.check(t)
}

// TestBadChecksumNotRead: a 227 reply whose TCP checksum is wrong (a byte
// of its line flipped on the way) is dropped and counted, unread — no
// expectation, the stream position unmoved, and above all no rewrite
// that would have given the corrupted bytes a valid checksum — and the
// same reply sent again intact is rewritten as usual.
func TestBadChecksumNotRead(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	line := []byte("227 Entering Passive Mode (10,0,0,5,195,80).\r\n")
	good := h.frame(flowtable.Reply, testutil.ACK, isnS+1, isnC+1, line)
	bad := append([]byte(nil), good...)
	bad[len(bad)-len(line)+len("227 Entering Passive Mode (1")] ^= 0x01 // "10" becomes "11"; the checksum stays the old one
	before := h.ftp.Stats().Total
	if _, v := h.processAt(bad, h.id, flowtable.Reply, 1); v != DropBadChecksum {
		t.Fatalf("corrupted 227: verdict %v, want %v", v, DropBadChecksum)
	}
	after := h.ftp.Stats().Total
	if after.BadChecksum-before.BadChecksum != 1 || after.Rewritten != before.Rewritten || after.ExpectCreated != before.ExpectCreated {
		t.Fatalf("corrupted 227: counters %+v, was %+v; want bad_checksum 1, no rewrite, no expectation", after, before)
	}
	s, v := h.process(flowtable.Reply, good)
	if v != Forward || !strings.Contains(s.payload, "198,18,0,204,") {
		t.Fatalf("the intact 227 after it: verdict %v, payload %q; want forwarded, rewritten", v, s.payload)
	}
	if n := h.ftp.Stats().Total.ExpectCreated - before.ExpectCreated; n != 1 {
		t.Fatalf("%d expectations after the intact 227, want 1", n)
	}
}
