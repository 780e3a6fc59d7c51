package alg

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// frameSize is the capacity of test frames, as a UMEM chunk.
const frameSize = 2048

// scenario is a control session as the NAT set it up: its two keys. A
// frame of direction d leaves the NAT with tuple Key[1-d].Reverse().
type scenario struct {
	name  string
	key   [2]packet.Tuple
	entry int16
}

func tuple(tb testing.TB, src, dst string) packet.Tuple {
	tb.Helper()
	s, d := testutil.AddrPort(tb, src), testutil.AddrPort(tb, dst)
	return packet.Tuple{SrcAddr: testutil.Addr(tb, s.Addr().String()), DstAddr: testutil.Addr(tb, d.Addr().String()),
		SrcPort: s.Port(), DstPort: d.Port(), Proto: packet.ProtoTCP}
}

// serverInside is the case: a client outside reaches public
// 198.18.0.204:9091, translated (nat server) to the inside server
// 10.0.0.5:2021. Inside addresses are shorter than public ones: rewrites
// of the server's endpoints grow.
func serverInside(tb testing.TB) scenario {
	return scenario{name: "server-inside", entry: 3, key: [2]packet.Tuple{
		tuple(tb, "198.18.7.10:40000", "198.18.0.204:9091"),
		tuple(tb, "10.0.0.5:2021", "198.18.7.10:40000"),
	}}
}

// clientInside: the client 10.0.0.5 behind nat outbound (public
// 198.18.0.204:50000) talks to a server outside. Rewrites of the client's
// endpoints grow.
func clientInside(tb testing.TB) scenario {
	return scenario{name: "client-inside", entry: -1, key: [2]packet.Tuple{
		tuple(tb, "10.0.0.5:40000", "198.18.1.1:21"),
		tuple(tb, "198.18.1.1:21", "198.18.0.204:50000"),
	}}
}

// clientInsideShrink: the inside address is the long one (198.18.0.204)
// and the public one short (10.0.0.5): rewrites shrink.
func clientInsideShrink(tb testing.TB) scenario {
	return scenario{name: "client-inside-shrink", entry: 0, key: [2]packet.Tuple{
		tuple(tb, "198.18.0.204:40000", "10.1.1.1:21"),
		tuple(tb, "10.1.1.1:21", "10.0.0.5:50000"),
	}}
}

// serverInsideShrink: nat server with a long inside and short public
// address.
func serverInsideShrink(tb testing.TB) scenario {
	return scenario{name: "server-inside-shrink", entry: 1, key: [2]packet.Tuple{
		tuple(tb, "10.9.9.9:40000", "10.0.0.5:9091"),
		tuple(tb, "198.18.0.204:2021", "10.9.9.9:40000"),
	}}
}

// ends returns the "addr:port" source and destination of a frame of
// direction dir as it leaves the NAT.
func (sc scenario) ends(dir flowtable.Dir) (string, string) {
	t := sc.key[1-dir].Reverse()
	return ep(t.SrcAddr, t.SrcPort), ep(t.DstAddr, t.DstPort)
}

func ep(a uint32, p uint16) string {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), p).String()
}

// fakeTable is the flow table as the ALG sees it. A session's generation
// is gens[id] (1 when unset).
type fakeTable struct {
	sessions map[uint32]*flowtable.Session
	gens     map[uint32]uint32
	open     map[uint32]int
}

func (t *fakeTable) gen(id uint32) uint32 {
	if g, ok := t.gens[id]; ok {
		return g
	}
	return 1
}

func (t *fakeTable) Read(id, gen uint32, s *flowtable.Session) bool {
	ss, ok := t.sessions[id]
	if !ok || gen != t.gen(id) {
		return false
	}
	*s = *ss
	return true
}

func (t *fakeTable) ExpectationCount(parent, gen uint32) int { return t.open[parent] }

// call is one ExpectData call.
type call struct {
	parent     uint32
	dir        flowtable.Dir
	addr       uint32
	port       uint16
	newAddr    uint32
	newPort    uint16
	translated bool
}

// fakeNAT implements Expecter the way nat does: an endpoint of a
// translated announcer gets its public address and a public port (pub),
// any other endpoint is told unchanged.
type fakeNAT struct {
	table   *fakeTable
	pub     func(port uint16) uint16
	fail    bool
	calls   []call
	dropped int // DropOldestExpectation calls that dropped one
	resets  int
}

func (x *fakeNAT) ExpectData(parent, gen uint32, dir flowtable.Dir, addr uint32, port uint16, now flowtable.Time) (uint32, uint16, bool) {
	if x.fail {
		return 0, 0, false
	}
	k := x.table.sessions[parent].Key
	aReal, aSeen := k[dir].SrcAddr, k[1-dir].DstAddr
	c := call{parent: parent, dir: dir, addr: addr, port: port, newAddr: addr, newPort: port}
	if addr == aReal && aReal != aSeen {
		c.newAddr, c.newPort, c.translated = aSeen, x.pub(port), true
	}
	x.table.open[parent]++
	if len(x.calls) < cap(x.calls) {
		x.calls = append(x.calls, c)
	}
	return c.newAddr, c.newPort, true
}

func (x *fakeNAT) DropOldestExpectation(parent, gen uint32) bool {
	if x.table.open[parent] == 0 {
		return false
	}
	x.table.open[parent]--
	x.dropped++
	return true
}

func (x *fakeNAT) ResetSession(id, gen uint32) { x.resets++ }

// pubPort is the fake NAT's public port choice: different digits, so the
// port text changes length too.
func pubPort(p uint16) uint16 { return p ^ 0x5a5a | 0x400 }

// harness is one ALG with one control session.
type harness struct {
	tb    testing.TB
	ftp   *FTP
	table *fakeTable
	nat   *fakeNAT
	sc    scenario
	id    uint32
	logs  *countWriter
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n++; return len(p), nil }

func newHarness(tb testing.TB, sc scenario, cfg Config) *harness {
	tb.Helper()
	h := &harness{tb: tb, sc: sc, id: 7, logs: &countWriter{}}
	h.table = &fakeTable{sessions: map[uint32]*flowtable.Session{}, gens: map[uint32]uint32{}, open: map[uint32]int{}}
	h.table.sessions[h.id] = &flowtable.Session{Key: sc.key, MapEntry: sc.entry}
	h.nat = &fakeNAT{table: h.table, pub: pubPort, calls: make([]call, 0, 4096)}
	cfg.Enabled = true
	if cfg.MaxExpectations == 0 {
		cfg.MaxExpectations = 1 << 20
	}
	cfg.Log = slog.New(slog.NewTextHandler(io.MultiWriter(h.logs), nil))
	f, err := New(cfg, h.table, h.nat)
	if err != nil {
		tb.Fatal(err)
	}
	h.ftp = f
	return h
}

// frame builds a frame of direction dir as the NAT hands it to the ALG,
// with capacity frameSize.
func (h *harness) frame(dir flowtable.Dir, flags int, seq, ack uint32, payload []byte, opts ...layers.TCPOption) []byte {
	h.tb.Helper()
	src, dst := h.sc.ends(dir)
	b := testutil.TCP(h.tb, src, dst, flags, seq, ack, payload, opts...)
	f := make([]byte, len(b), frameSize)
	copy(f, b)
	return f
}

// seg is a TCP segment as gopacket decodes it.
type seg struct {
	seq, ack uint32
	flags    int
	payload  string
	sack     [][2]uint32
	src, dst string
}

// run runs the ALG on a frame of direction dir of the harness's session
// and returns the item as the ALG left it.
func (h *harness) run(dir flowtable.Dir, fr []byte) Item {
	h.tb.Helper()
	it := Item{Buf: fr, Session: h.id, Gen: h.table.gen(h.id), Dir: dir}
	h.ftp.Process(&it, 100)
	if len(it.Buf) > cap(fr) {
		h.tb.Fatalf("frame grew to %d beyond its capacity %d", len(it.Buf), cap(fr))
	}
	return it
}

// process runs the ALG on a frame and decodes the result with gopacket,
// which also verifies the IPv4 and TCP checksums from scratch. A frame
// sent back to its sender (Back) is decoded too.
func (h *harness) process(dir flowtable.Dir, fr []byte) (seg, Verdict) {
	h.tb.Helper()
	it := h.run(dir, fr)
	if it.Verdict != Forward && it.Verdict != Back {
		return seg{}, it.Verdict
	}
	return decodeSeg(h.tb, it.Buf), it.Verdict
}

func decodeSeg(tb testing.TB, fr []byte) seg {
	tb.Helper()
	d := testutil.Decode(tb, fr)
	if d.TCP == nil {
		tb.Fatal("no TCP layer")
	}
	// Ethernet pads short frames to 60 bytes; anything else past the IPv4
	// packet is an error.
	if l := int(d.IP.Length) + 14; l != len(fr) && (l > len(fr) || len(fr) != 60) {
		tb.Fatalf("IPv4 total length %d, frame carries %d", d.IP.Length, len(fr)-14)
	}
	s := seg{seq: d.TCP.Seq, ack: d.TCP.Ack, payload: string(d.TCP.Payload), src: d.Src(), dst: d.Dst()}
	for _, c := range []struct {
		on bool
		f  int
	}{{d.TCP.SYN, testutil.SYN}, {d.TCP.ACK, testutil.ACK}, {d.TCP.FIN, testutil.FIN}, {d.TCP.RST, testutil.RST}, {d.TCP.PSH, testutil.PSH}} {
		if c.on {
			s.flags |= c.f
		}
	}
	for _, o := range d.TCP.Options {
		if o.OptionType == layers.TCPOptionKindSACK {
			for b := 0; b+8 <= len(o.OptionData); b += 8 {
				s.sack = append(s.sack, [2]uint32{binary.BigEndian.Uint32(o.OptionData[b:]), binary.BigEndian.Uint32(o.OptionData[b+4:])})
			}
		}
	}
	return s
}

// sackOpt builds a SACK option (with the two NOPs Linux puts before it).
func sackOpt(blocks ...[2]uint32) []layers.TCPOption {
	data := make([]byte, 0, 8*len(blocks))
	for _, b := range blocks {
		data = binary.BigEndian.AppendUint32(data, b[0])
		data = binary.BigEndian.AppendUint32(data, b[1])
	}
	return []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindSACK, OptionLength: uint8(2 + len(data)), OptionData: data},
	}
}

// handshake runs SYN, SYN-ACK and ACK through the ALG with the given
// initial sequence numbers.
func (h *harness) handshake(isnC, isnS uint32) {
	h.tb.Helper()
	for _, c := range []struct {
		dir      flowtable.Dir
		flags    int
		seq, ack uint32
	}{
		{flowtable.Orig, testutil.SYN, isnC, 0},
		{flowtable.Reply, testutil.SYN | testutil.ACK, isnS, isnC + 1},
		{flowtable.Orig, testutil.ACK, isnC + 1, isnS + 1},
	} {
		s, v := h.process(c.dir, h.frame(c.dir, c.flags, c.seq, c.ack, nil))
		if v != Forward || s.seq != c.seq || s.ack != c.ack {
			h.tb.Fatalf("handshake %v: verdict %v seq %d ack %d", c.dir, v, s.seq, s.ack)
		}
	}
}

func ipStr(a uint32) string { return addrString(a) }

// hostPort renders addr:port in PORT/227 form.
func hostPort(a uint32, p uint16) string {
	return fmt.Sprintf("%d,%d,%d,%d,%d,%d", a>>24, a>>16&0xff, a>>8&0xff, a&0xff, p>>8, p&0xff)
}

// processAt runs the ALG on fr as a frame of session id (with its current
// generation) at time now, and returns the frame's new length and the
// verdict.
func (h *harness) processAt(fr []byte, id uint32, dir flowtable.Dir, now flowtable.Time) (int, Verdict) {
	it := Item{Buf: fr, Session: id, Gen: h.table.gen(id), Dir: dir}
	h.ftp.Process(&it, now)
	return len(it.Buf), it.Verdict
}

// state returns the ALG's state of the harness's session.
func (h *harness) state() *session {
	return h.ftp.sessions[keyOf(h.id, h.table.gen(h.id))]
}

// resum recomputes the TCP checksum of frame b (Ethernet, IPv4, TCP) after
// a test changed its header in place.
func resum(b []byte) {
	ip := packet.IPv4(b[14:])
	tcp := packet.TCP(b[14+ip.HeaderLen() : 14+int(ip.TotalLength())])
	tcp.SetChecksum(packet.TCPChecksum(ip, tcp))
}
