package alg

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// The oracle: the slow, obvious rewrite of a whole control stream, with
// regular expressions over complete lines. It knows nothing of segments,
// sequence numbers or held bytes.

var (
	rePORT = regexp.MustCompile(`^(?i:PORT) +((\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})) *\r?\n$`)
	reEPRT = regexp.MustCompile(`^(?i:EPRT) +(\|1\|(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\|(\d{1,5})\|) *\r?\n$`)
	re227  = regexp.MustCompile(`^227 [^0-9\n]*((\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}))(?:[^0-9].*)?\r?\n$`)
	re229  = regexp.MustCompile(`^229 [^(\n]*\(\|\|\|(\d{1,5})\|\).*\n$`)
	reCode = regexp.MustCompile(`^(\d{3})([ -])`)
)

// ospan is a rewrite the oracle made: original bytes [orig, orig+oldLen)
// became newLen bytes.
type ospan struct{ orig, oldLen, newLen int }

type oracleResult struct {
	out   string
	spans []ospan
	calls int
	// reset is true when a line that may need a rewrite is longer than
	// maxLine: the ALG resets the connection there. out ends before it,
	// at original offset resetAt.
	reset   bool
	resetAt int
	// answers are the ALG's replies to the refused commands of the
	// stream, in order; they go into the other direction's stream.
	answers []string
}

// oracleRewrite rewrites stream (sent in direction dir of sc) as the ALG
// must, with the fake NAT's choices.
func oracleRewrite(stream string, sc scenario, dir flowtable.Dir) oracleResult {
	self, alias := sc.key[dir].SrcAddr, sc.key[1-dir].DstAddr
	translated := self != alias
	var res oracleResult
	var out strings.Builder
	multi := ""
	pos := 0
	for pos < len(stream) {
		nl := strings.IndexByte(stream[pos:], '\n')
		if nl < 0 {
			out.WriteString(stream[pos:])
			break
		}
		line := stream[pos : pos+nl+1]
		var m []int
		var isReply bool
		if dir == flowtable.Orig {
			if m = rePORT.FindStringSubmatchIndex(line); m == nil {
				m = reEPRT.FindStringSubmatchIndex(line)
			}
		} else if multi == "" {
			isReply = true
			if m = re227.FindStringSubmatchIndex(line); m == nil {
				m = re229.FindStringSubmatchIndex(line)
			}
		}
		candidate := dir == flowtable.Orig && (strings.HasPrefix(strings.ToUpper(line), "PORT ") || strings.HasPrefix(strings.ToUpper(line), "EPRT ")) ||
			isReply && (strings.HasPrefix(line, "227 ") || strings.HasPrefix(line, "229 "))
		if candidate && len(line) > maxLine {
			res.reset, res.resetAt = true, pos
			break
		}
		if c := reCode.FindStringSubmatch(line); dir == flowtable.Reply && c != nil {
			if multi == "" && c[2] == "-" {
				multi = c[1]
			} else if multi == c[1] && c[2] == " " {
				multi = ""
			}
		}
		if m == nil {
			out.WriteString(line)
			pos += len(line)
			continue
		}
		num := func(g int) int { n, _ := strconv.Atoi(line[m[2*g]:m[2*g+1]]); return n }
		var addr uint32
		var port int
		var text func(a uint32, p int) string
		switch {
		case isReply && strings.HasPrefix(line, "229"):
			port = num(1)
			text = func(_ uint32, p int) string { return strconv.Itoa(p) }
		case strings.HasPrefix(strings.ToUpper(line), "EPRT"):
			addr = uint32(num(2)<<24 | num(3)<<16 | num(4)<<8 | num(5))
			port = num(6)
			text = func(a uint32, p int) string { return fmt.Sprintf("|1|%s|%d|", ipStr(a), p) }
		default:
			addr = uint32(num(2)<<24 | num(3)<<16 | num(4)<<8 | num(5))
			port = num(6)<<8 | num(7)
			text = func(a uint32, p int) string { return hostPort(a, uint16(p)) }
		}
		if addr == alias || addr == 0 {
			addr = self
		}
		if addr != self || port < 1024 {
			// Refused: a command is deleted and answered from the other
			// side; a reply's text becomes the ALG's 425.
			if !isReply {
				msg := messages[msgPORTRefused]
				if strings.HasPrefix(strings.ToUpper(line), "EPRT") {
					msg = messages[msgEPRTRefused]
				}
				res.answers = append(res.answers, string(msg))
				res.spans = append(res.spans, ospan{orig: pos, oldLen: len(line), newLen: 0})
			} else {
				content := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
				out.WriteString(string(messages[msgPasvRefused]) + line[len(content):])
				res.spans = append(res.spans, ospan{orig: pos, oldLen: len(content), newLen: len(messages[msgPasvRefused])})
			}
			pos += len(line)
			continue
		}
		newAddr, newPort := addr, port
		if addr == self && translated {
			newAddr, newPort = alias, int(pubPort(uint16(port)))
		}
		res.calls++
		nt := text(newAddr, newPort)
		out.WriteString(line[:m[2]])
		out.WriteString(nt)
		out.WriteString(line[m[3]:])
		res.spans = append(res.spans, ospan{orig: pos + m[2], oldLen: m[3] - m[2], newLen: len(nt)})
		pos += len(line)
	}
	res.out = out.String()
	return res
}

// newPos maps original offset x to the rewritten stream; ok is false if x
// is inside a rewritten span (no exact counterpart).
func (o *oracleResult) newPos(x int) (int, bool) {
	d := 0
	for _, s := range o.spans {
		if x <= s.orig {
			break
		}
		if x < s.orig+s.oldLen {
			return 0, false
		}
		d += s.newLen - s.oldLen
	}
	return x + d, true
}

// genStream makes a random control stream for direction dir of sc: the
// lines of a real session, announcements by the sender's real or public
// address, malformed and long lines, bare LF terminators, multi-line
// replies with a 227 inside.
func genStream(r *rand.Rand, sc scenario, dir flowtable.Dir, lines int, long bool) string {
	const thirdParty = 0xc0000201 // 192.0.2.1
	self, alias := sc.key[dir].SrcAddr, sc.key[1-dir].DstAddr
	addr := func() uint32 {
		if r.IntN(4) == 0 {
			return alias
		}
		return self
	}
	port := func() uint16 { return uint16(1024 + r.IntN(65536-1024)) }
	dot := func(a uint32) string { return ipStr(a) }
	eol := func() string {
		if r.IntN(8) == 0 {
			return "\n"
		}
		return "\r\n"
	}
	var b strings.Builder
	for i := 0; i < lines; i++ {
		if dir == flowtable.Orig {
			switch r.IntN(12) {
			case 0, 1, 2:
				b.WriteString("PORT " + hostPort(addr(), port()) + eol())
			case 3, 4:
				fmt.Fprintf(&b, "EPRT |1|%s|%d|%s", dot(addr()), port(), eol())
			case 5:
				b.WriteString("port " + hostPort(addr(), port()) + eol())
			case 6:
				b.WriteString("PORT 1,2,3" + eol())
			case 7:
				b.WriteString("SITE " + strings.Repeat("x", 400+r.IntN(300)) + eol())
			case 9:
				// Refused: a third party, or a privileged port.
				if r.IntN(2) == 0 {
					b.WriteString("PORT " + hostPort(thirdParty, port()) + eol())
				} else {
					fmt.Fprintf(&b, "EPRT |1|%s|%d|%s", dot(self), r.IntN(1024), eol())
				}
			case 8:
				// Trailing spaces; with long, beyond the limit: the ALG
				// resets the connection there.
				n := r.IntN(20)
				if long {
					n = 500
				}
				b.WriteString("PORT " + hostPort(addr(), port()) + strings.Repeat(" ", n) + eol())
			default:
				b.WriteString([]string{"USER anonymous", "PASS guest", "TYPE I", "PASV", "EPSV", "LIST", "NOOP", "PORTS"}[r.IntN(8)] + eol())
			}
		} else {
			switch r.IntN(12) {
			case 0, 1, 2:
				fmt.Fprintf(&b, "227 Entering Passive Mode (%s).%s", hostPort(addr(), port()), eol())
			case 3:
				b.WriteString("227 =" + hostPort(addr(), port()) + eol())
			case 4, 5:
				fmt.Fprintf(&b, "229 Entering Extended Passive Mode (|||%d|)%s", port(), eol())
			case 6:
				fmt.Fprintf(&b, "211-Features:\r\n EPRT\r\n227 Entering Passive Mode (%s)\r\n211 End\r\n", hostPort(self, port()))
			case 7:
				b.WriteString("227 Entering Passive Mode" + eol())
			case 9:
				// Refused: a third party, or a privileged port.
				if r.IntN(2) == 0 {
					fmt.Fprintf(&b, "227 Entering Passive Mode (%s).%s", hostPort(thirdParty, port()), eol())
				} else {
					fmt.Fprintf(&b, "229 Entering Extended Passive Mode (|||%d|)%s", r.IntN(1024), eol())
				}
			case 8:
				b.WriteString("250-" + strings.Repeat("y", 600) + "\r\n250 ok" + eol())
			default:
				b.WriteString([]string{"220 (vsFTPd 3.0.3)", "230 Login successful.", "200 Switching to Binary mode.",
					"150 Here comes the directory listing.", "226 Directory send OK.", "200 PORT command successful."}[r.IntN(6)] + eol())
			}
		}
	}
	return b.String()
}

var simTrace = false

// simSide is one endpoint's stream: what it sends, what it has had
// acknowledged, and what its peer has received of it.
type simSide struct {
	dir      flowtable.Dir
	isn      uint32
	stream   string
	or       oracleResult
	una, nxt int
	sent     int // highest offset ever sent
	rcv      *rcvr
	// ins are the ALG's answers it injected into this stream, by their
	// place in the oracle's output; want is that output with them.
	ins  []insertion
	want string
}

// insertion is an answer of the ALG in a stream: text at position at of
// the oracle's output (before the byte there), sent at sequence number
// seq.
type insertion struct {
	at   int
	seq  uint32
	text string
}

// insert records an answer the ALG sent at receiver-view offset off, and
// checks that it goes between two lines of the stream.
func (s *simSide) insert(t *testing.T, off int, text string) {
	t.Helper()
	at := off
	for _, in := range s.ins {
		if uint32(off) == in.seq-s.isn-1 {
			if in.text != text {
				t.Fatalf("%v: two answers at %d: %q, %q", s.dir, off, in.text, text)
			}
			return // answered again, the same way
		}
		if in.seq-s.isn-1 < uint32(off) {
			at -= len(in.text)
		}
	}
	if at < 0 || at > len(s.or.out) || at > 0 && s.or.out[at-1] != '\n' {
		t.Fatalf("%v: answer %q at %d, not between two lines", s.dir, text, at)
	}
	s.ins = append(s.ins, insertion{at: at, seq: s.isn + 1 + uint32(off), text: text})
	slices.SortFunc(s.ins, func(a, b insertion) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq-s.isn, b.seq-s.isn))
	})
	var b strings.Builder
	prev := 0
	for _, in := range s.ins {
		b.WriteString(s.or.out[prev:in.at])
		b.WriteString(in.text)
		prev = in.at
	}
	b.WriteString(s.or.out[prev:])
	s.want = b.String()
}

// view maps a position of the oracle's output to the receiver's stream;
// with boundary, answers inserted exactly there are counted as not yet
// received.
func (s *simSide) view(np int, boundary bool) int {
	v := np
	for _, in := range s.ins {
		if in.at < np || in.at == np && !boundary {
			v += len(in.text)
		}
	}
	return v
}

// TestRandomConversations is the randomized differential test: both
// directions of a control connection carry random streams, cut into
// random segments that are lost before or after the ALG, retransmitted
// from anywhere in flight and acknowledged with SACK blocks. Every frame
// the ALG emits is decoded by gopacket (checksums recomputed); every byte
// delivered must equal the oracle's rewrite at that position, every
// acknowledgement and SACK block the sender gets — from the receiver or
// from the ALG — must be honest, every announcement must make exactly one
// expectation, and the conversation must complete; or, where a line that
// may need a rewrite is too long, end in resets both ways with nothing
// delivered past the line.
func TestRandomConversations(t *testing.T) {
	trials := 120
	if testing.Short() {
		trials = 20
	}
	if n, err := strconv.Atoi(os.Getenv("ALG_SIM_TRIALS")); err == nil {
		trials = n // a longer soak: ALG_SIM_TRIALS=5000 go test -run RandomConversations ./alg
	}
	scs := []func(testing.TB) scenario{serverInside, clientInside, clientInsideShrink, serverInsideShrink}
	for trial := 0; trial < trials; trial++ {
		r := rand.New(rand.NewPCG(uint64(trial), 42))
		sc := scs[trial%len(scs)](t)
		mtu := []int{576, 1500}[trial/len(scs)%2]
		long := trial%7 == 3
		t.Run(fmt.Sprintf("%d-%s-mtu%d", trial, sc.name, mtu), func(t *testing.T) {
			simulate(t, r, sc, mtu, long)
		})
	}
}

func simulate(t *testing.T, r *rand.Rand, sc scenario, mtu int, long bool) {
	h := newHarness(t, sc, Config{MTU: mtu})
	isn := [2]uint32{r.Uint32(), r.Uint32()}
	h.handshake(isn[0], isn[1])
	var sides [2]*simSide
	for d := range sides {
		dir := flowtable.Dir(d)
		s := &simSide{dir: dir, isn: isn[d], stream: genStream(r, sc, dir, 10+r.IntN(30), long)}
		s.or = oracleRewrite(s.stream, sc, dir)
		s.want = s.or.out
		s.rcv = newRcvr(t, isn[d])
		if simTrace {
			t.Logf("stream %v: %q", dir, s.stream[:min(len(s.stream), 400)])
		}
		sides[d] = s
	}
	maxSeg := 1 + r.IntN(600)
	reset := false
	for round := 0; !reset; round++ {
		if sides[0].una == len(sides[0].stream) && sides[1].una == len(sides[1].stream) {
			break
		}
		if round > 3000+40*(len(sides[0].stream)+len(sides[1].stream))/maxSeg {
			t.Fatalf("no progress: una %d/%d, %d/%d", sides[0].una, len(sides[0].stream), sides[1].una, len(sides[1].stream))
		}
		x, y := sides[round%2], sides[1-round%2]
		if r.IntN(20) == 0 {
			x.nxt = x.una // retransmission timeout: go back
		}
		for k := 1 + r.IntN(3); k > 0 && !reset; k-- {
			start := x.nxt
			switch {
			case x.nxt == len(x.stream) || r.IntN(10) < 2:
				start = x.una // retransmission from the first unacknowledged byte
			case r.IntN(10) < 2:
				start = x.una + r.IntN(x.nxt-x.una+1) // anything in flight, re-segmented
			}
			end := min(start+r.IntN(maxSeg+1), len(x.stream), x.una+4000)
			end = max(end, start)
			ack := y.isn + 1 + y.rcv.next()
			fr := h.frame(x.dir, testutil.ACK|testutil.PSH, x.isn+1+uint32(start), ack, []byte(x.stream[start:end]), sackOpt(islands(y.rcv)...)...)
			x.nxt, x.sent = max(x.nxt, end), max(x.sent, end)
			if r.IntN(10) == 0 {
				continue // lost before the NAT
			}
			it := h.run(x.dir, fr)
			// Answers the ALG committed to go into the other stream as soon
			// as it records them, sent or not yet (the frame may have been
			// dropped for another reason, and the answer comes with its
			// retransmission); later data of that stream comes after them.
			if ss := h.state(); ss != nil {
				for d, st := range ss.dirs {
					for i := 0; i < st.nrec; i++ {
						if r := &st.recs[i]; r.answer != msgNone && !r.waiting {
							other := sides[1-d]
							other.insert(t, int(int32(r.ans-other.isn-1)), string(messages[r.answer]))
						}
					}
				}
			}
			if simTrace {
				t.Logf("%v send [%d,%d) ack+%d -> %v len %d back %v", x.dir, start, end, ack-y.isn-1, it.Verdict, len(it.Buf), it.Back != nil)
			}
			lost := r.IntN(10) == 0 // after the NAT
			// answer handles a frame the ALG sent back to x: an
			// acknowledgement of held bytes, or the answer to a refused
			// command, from y's stream.
			answer := func(b seg) {
				a := int(int32(b.ack - x.isn - 1))
				if a > x.sent || a < 0 {
					t.Fatalf("%v: the ALG acknowledged %d of %d sent", x.dir, a, x.sent)
				}
				if b.payload != "" {
					y.insert(t, int(int32(b.seq-y.isn-1)), b.payload)
				}
				if lost {
					return
				}
				if b.payload != "" {
					deliver(t, y, b)
				}
				x.una = max(x.una, a)
				x.nxt = max(x.nxt, x.una)
			}
			switch it.Verdict {
			case DropOutOfOrder, DropBacklog:
				continue
			case Back:
				b := decodeSeg(t, it.Buf)
				if b.flags&testutil.RST != 0 {
					t.Fatalf("%v answered with a reset, not at a reset", x.dir)
				}
				answer(b)
				continue
			case Forward:
			default:
				t.Fatalf("verdict %v", it.Verdict)
			}
			s := decodeSeg(t, it.Buf)
			if s.flags&testutil.RST != 0 {
				if !x.or.reset || it.Back == nil || decodeSeg(t, it.Back).flags&testutil.RST == 0 {
					t.Fatalf("%v: reset (oracle %v, back %v)", x.dir, x.or.reset, it.Back != nil)
				}
				reset = true
				break
			}
			if it.Back != nil {
				b := decodeSeg(t, it.Back)
				if b.payload == "" {
					t.Fatalf("%v: a second frame for the sender, not an answer", x.dir)
				}
				answer(b)
			}
			if len(s.payload)+40 > mtu && end-start+40 <= mtu {
				t.Fatalf("packet of %d bytes over the MTU", len(s.payload)+40)
			}
			if lost {
				continue
			}
			deliver(t, x, s)
			if simTrace {
				for _, z := range []*simSide{x, y} {
					st := &h.state().dirs[z.dir]
					for i := 0; i < st.nrec; i++ {
						r := &st.recs[i]
						t.Logf("  rec %v seq+%d old %d new %d msg %d ans %d done %v waiting %v cum %d", z.dir, r.seq-z.isn-1, r.oldLen, r.newLen, r.msg, r.answer, r.done, r.waiting, r.cum)
					}
					t.Logf("  %v base %d acked+%d next+%d held %d npend %d line %+v", z.dir, st.base, st.acked-z.isn-1, st.next-z.isn-1, st.held, st.npend, st.line)
				}
			}
			acked(t, y, s)
		}
	}
	for i, s := range sides {
		got := s.rcv.stream()
		if reset && strings.HasPrefix(s.want, got) {
			continue
		}
		if got != s.want {
			t.Fatalf("%v stream\n got %q\nwant %q", s.dir, got, s.want)
		}
		var answers []string
		for _, in := range s.ins {
			answers = append(answers, in.text)
		}
		if want := sides[1-i].or.answers; !reset && !slices.Equal(answers, want) {
			t.Fatalf("%v: answers %q, want %q", s.dir, answers, want)
		}
	}
	if want := sides[0].or.calls + sides[1].or.calls; !reset && len(h.nat.calls) != want {
		t.Fatalf("%d expectations, oracle %d", len(h.nat.calls), want)
	}
}

// deliver hands a segment of x's stream to its receiver, checking every
// byte against the oracle.
func deliver(t *testing.T, x *simSide, s seg) {
	t.Helper()
	off := int(int32(s.seq - x.isn - 1))
	if off+len(s.payload) <= int(x.rcv.next()) {
		return // old: a receiver drops it unread
	}
	if off < 0 || off+len(s.payload) > len(x.want) {
		t.Fatalf("%v segment at %d+%d outside the rewritten stream of %d", x.dir, off, len(s.payload), len(x.want))
	}
	if want := x.want[off : off+len(s.payload)]; s.payload != want {
		t.Fatalf("%v segment at %d\n got %q\nwant %q", x.dir, off, s.payload, want)
	}
	x.rcv.add(s)
}

// acked applies the acknowledgement and SACK blocks a segment carries to
// y's stream, checking they claim nothing y's receiver does not have.
func acked(t *testing.T, y *simSide, s seg) {
	t.Helper()
	a := int(s.ack - y.isn - 1)
	np, ok := y.or.newPos(a)
	if !ok || a > y.sent || y.view(np, true) > int(y.rcv.next()) {
		t.Fatalf("%v ack %d (rewritten %d, exact %v) but receiver has %d", y.dir, a, np, ok, y.rcv.next())
	}
	y.una = max(y.una, a)
	y.nxt = max(y.nxt, y.una)
	for _, b := range s.sack {
		l, rr := int(b[0]-y.isn-1), int(b[1]-y.isn-1)
		if l >= rr {
			continue
		}
		nl, ok1 := y.or.newPos(l)
		nr, ok2 := y.or.newPos(rr)
		if !ok1 || !ok2 {
			t.Fatalf("%v SACK [%d,%d) inside rewritten text", y.dir, l, rr)
		}
		for i := nl; i < nr; i++ {
			if _, ok := y.rcv.data[uint32(y.view(i, false))]; !ok {
				t.Fatalf("%v SACK [%d,%d) claims byte %d the receiver lacks", y.dir, l, rr, i)
			}
		}
	}
}

// islands returns up to three SACK blocks (absolute sequence numbers) for
// what r holds beyond its in-order data.
func islands(r *rcvr) [][2]uint32 {
	next := r.next()
	var max uint32
	for o := range r.data {
		if o > max {
			max = o
		}
	}
	var out [][2]uint32
	for o := next; o <= max && len(out) < 3; o++ {
		if _, ok := r.data[o]; !ok {
			continue
		}
		e := o
		for {
			if _, ok := r.data[e]; !ok {
				break
			}
			e++
		}
		out = append(out, [2]uint32{r.isn + 1 + o, r.isn + 1 + e})
		o = e
	}
	return out
}

// TestOracleAgrees pins the oracle on the hand-written forms, so that the
// two independent descriptions of the rewrite are checked against each
// other too.
func TestOracleAgrees(t *testing.T) {
	for _, fm := range forms(t) {
		if fm.name == "malformed PORT passes" {
			continue
		}
		if got := oracleRewrite(fm.in, fm.sc(t), fm.dir); got.out != fm.want || got.calls != fm.calls {
			t.Errorf("%s: oracle %q (%d calls), want %q (%d)", fm.name, got.out, got.calls, fm.want, fm.calls)
		}
	}
}
