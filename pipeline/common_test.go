package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// TestCommonPathMatchesGeneral holds the established-flow fast path
// (ParseCommonBurst, ForwardCommonBurst, queueCommon) to the general path it
// shortcuts: two identical workers take the same random bursts, one with
// the fast path and one without (Worker.general), and every frame either
// transmits must be byte for byte the same, in the same order, every
// counter and every dropped frame's reason the same, and at the end every
// session the same (keys, flags, TCP state and tracking, packet and byte
// counters). The bursts mix packets the fast path takes — UDP and TCP of
// established flows, both ways — with every case it must hand on: the
// packets that create sessions, TCP handshakes, FIN, RST, reopening SYNs
// and out-of-window segments, invalid flag combinations, TTL 1, packets on the wrong side, sessions
// the ALG inspects, hairpinned ones, fragments, IP options, VLAN tags,
// bad header checksums, truncated frames, packets above the egress MTU
// with and without DF, destinations whose next hop is unresolved or has
// aged out of the cache, ICMP queries and errors. Every frame either
// worker sends is decoded by gopacket, checksums recomputed.
func TestCommonPathMatchesGeneral(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			n, forwarded := compareCommonPath(t, seed, 300)
			if forwarded < 1000 || n < 20 {
				t.Errorf("the traffic exercised too little: %d forwarded, %d sessions", forwarded, n)
			}
		})
	}
}

// FuzzCommonPathMatchesGeneral is TestCommonPathMatchesGeneral over
// traffic from other seeds, fewer rounds each.
func FuzzCommonPathMatchesGeneral(f *testing.F) {
	for seed := range uint64(4) {
		f.Add(seed + 100)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		compareCommonPath(t, seed, 60)
	})
}

// compareCommonPath runs rounds random bursts through two workers, with
// and without the fast path, and compares everything they did; it returns
// the sessions and the frames forwarded.
func compareCommonPath(t *testing.T, seed uint64, rounds int) (sessions int, forwarded uint64) {
	{
		{
			var reasons [2][]string
			rigs := [2]*rig{}
			for i := range rigs {
				// The FTP control sessions' frames go to an ALG link
				// nobody serves: they are counted as diverted and stay
				// in its ring (dropped as alg_ring_full when it is
				// full), the same for both workers.
				link, err := NewALGLink(64)
				if err != nil {
					t.Fatal(err)
				}
				// No ICMP rate limit: it counts in real time, which two
				// workers polled one after the other do not share (the
				// one difference between them the test must not see);
				// MSS clamping on, which only the general path does.
				router := NewPolicy(RouterConfig{MSSClamp: MSSClampMTU})
				rigs[i] = newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535), addrs: true, alg: link, router: router,
					dropTap: func(_ []byte, reason string) { reasons[i] = append(reasons[i], reason) }})
				rigs[i].out.SetMTU(1200)
			}
			rigs[1].w.general = true
			g := newTrafficGen(t, seed)
			nsent := 0
			for round := range rounds {
				if round%40 == 39 {
					// The next-hop cache ages out, the neighbour queues
					// time out.
					for _, r := range rigs {
						r.now++
					}
				}
				in, out := g.burst()
				var sent [2][2][][]byte
				for i, r := range rigs {
					for _, f := range in {
						if !r.in.Inject(f) {
							t.Fatal("pool exhausted")
						}
					}
					for _, f := range out {
						if !r.out.Inject(f) {
							t.Fatal("pool exhausted")
						}
					}
					r.w.Poll()
					sent[i][0], sent[i][1] = r.in.Sent(), r.out.Sent()
				}
				for port := range 2 {
					a, b := sent[0][port], sent[1][port]
					if len(a) != len(b) {
						t.Fatalf("round %d, port %d: %d frames with the fast path, %d without", round, port, len(a), len(b))
					}
					for j := range a {
						if !bytes.Equal(a[j], b[j]) {
							t.Fatalf("round %d, port %d, frame %d:\nfast    % x\ngeneral % x", round, port, j, a[j], b[j])
						}
						decodeUntagged(t, a[j])
						if port == 1 {
							g.observe(a[j])
						}
						nsent++
					}
				}
			}
			if len(reasons[0]) != len(reasons[1]) {
				t.Fatalf("drops: %d with the fast path, %d without", len(reasons[0]), len(reasons[1]))
			}
			for j := range reasons[0] {
				if reasons[0][j] != reasons[1][j] {
					t.Fatalf("drop %d: %s with the fast path, %s without", j, reasons[0][j], reasons[1][j])
				}
			}
			sameCounters(t, rigs[0].w.Counters(), rigs[1].w.Counters())
			n := sameSessions(t, rigs[0].table, rigs[1].table)
			c := rigs[0].w.Counters()
			t.Logf("%d frames sent, %d forwarded, %d dropped (%d reasons), %d sessions", nsent,
				c.Verdict[nat.Forward].Load(), c.Drops(), len(reasons[0]), n)
			return n, c.Verdict[nat.Forward].Load()
		}
	}
}

func sameCounters(t *testing.T, a, b *Counters) {
	t.Helper()
	type pair struct {
		name string
		a, b uint64
	}
	ps := []pair{{"rx_packets", a.RxPackets.Load(), b.RxPackets.Load()}, {"rx_bytes", a.RxBytes.Load(), b.RxBytes.Load()},
		{"tx_packets", a.TxPackets.Load(), b.TxPackets.Load()}, {"tx_bytes", a.TxBytes.Load(), b.TxBytes.Load()},
		{"alg_diverted", a.ALGDiverted.Load(), b.ALGDiverted.Load()}, {"held", a.Held.Load(), b.Held.Load()}}
	for i := range a.Parse {
		ps = append(ps, pair{"parse_" + packet.Result(i).String(), a.Parse[i].Load(), b.Parse[i].Load()})
	}
	for i := range a.Verdict {
		ps = append(ps, pair{"verdict_" + nat.Verdict(i).String(), a.Verdict[i].Load(), b.Verdict[i].Load()})
	}
	for i := range a.Drop {
		ps = append(ps, pair{DropReason(i).String(), a.Drop[i].Load(), b.Drop[i].Load()})
	}
	for i := range a.Event {
		ps = append(ps, pair{Event(i).String(), a.Event[i].Load(), b.Event[i].Load()})
	}
	for _, p := range ps {
		if p.a != p.b {
			t.Errorf("counter %s: %d with the fast path, %d without", p.name, p.a, p.b)
		}
	}
}

// sameSessions compares every session of a with b's of the same key and
// returns how many there are.
func sameSessions(t *testing.T, a, b *flowtable.Table) int {
	t.Helper()
	if na, nb := a.Stats().Sessions, b.Stats().Sessions; na != nb {
		t.Errorf("%d sessions with the fast path, %d without", na, nb)
	}
	n := 0
	a.Range(func(id, gen uint32, s flowtable.Session) bool {
		n++
		bid, _, bgen, ok := b.LookupGen(s.Key[flowtable.Orig])
		var bs flowtable.Session
		if !ok || !b.Read(bid, bgen, &bs) {
			t.Errorf("session %v only with the fast path", s.Key[flowtable.Orig])
			return true
		}
		if s != bs {
			t.Errorf("session %v:\nfast    %+v\ngeneral %+v", s.Key[flowtable.Orig], s, bs)
		}
		pa, ba := a.Counters(id)
		pb, bb := b.Counters(bid)
		sa, ta := a.State(id)
		sb, tb := b.State(bid)
		if pa != pb || ba != bb || sa != sb || ta != tb || a.LastSeen(id) != b.LastSeen(bid) {
			t.Errorf("session %v: packets %v bytes %v state %d/%d seen %d with the fast path, %v %v %d/%d %d without",
				s.Key[flowtable.Orig], pa, ba, sa, ta, a.LastSeen(id), pb, bb, sb, tb, b.LastSeen(bid))
		}
		return true
	})
	return n
}

// trafficGen makes the random bursts of TestCommonPathMatchesGeneral: a
// set of UDP and TCP flows between inside hosts and outside ones, each
// inside endpoint with a source port of its own (so that the NAT keeps
// it, and both workers translate alike), whose packets are sent with
// mistakes and oddities mixed in.
type trafficGen struct {
	t     *testing.T
	r     *rand.Rand
	flows []*genFlow
	sent  [][]byte // recent inside frames, to replay
	seen  [][]byte // recent frames sent out, to quote in ICMP errors
}

// observe remembers a frame the NAT sent to the outside.
func (g *trafficGen) observe(f []byte) {
	if len(g.seen) < 64 {
		g.seen = append(g.seen, f)
	} else {
		g.seen[g.r.IntN(64)] = f
	}
}

type genFlow struct {
	tcp        bool
	in, remote string // "addr:port"
	public     string // the inside endpoint's public one (its port kept)
	// a remote host sending to a public server port rather than replying
	inbound bool
	// a hairpinned flow's peer, an inside endpoint (remote is its
	// public one): replies come from it, on the inside port
	back string
	// TCP: 0 closed, 1 SYN sent, 2 SYN/ACK sent, 3 established
	state      int
	iseq, rseq uint32
}

func newTrafficGen(t *testing.T, seed uint64) *trafficGen {
	g := &trafficGen{t: t, r: rand.New(rand.NewPCG(seed, 12))}
	// 10.77.0.7 has no resolved next hop on the inside port, 198.18.0.3
	// none on the outside one.
	hosts := []string{inClient, "10.77.0.6", "10.77.0.7"}
	remotes := []string{remote1, remote2, "198.18.0.3"}
	port := 20000
	for _, h := range hosts {
		for j, rm := range remotes {
			for k := range 2 {
				port++
				f := &genFlow{tcp: k == 1, in: fmt.Sprintf("%s:%d", h, port), remote: fmt.Sprintf("%s:%d", rm, 80+j),
					public: fmt.Sprintf("%s:%d", public, port), iseq: g.r.Uint32(), rseq: g.r.Uint32()}
				g.flows = append(g.flows, f)
			}
		}
	}
	// Sessions opened from outside: the UDP server port (5353 →
	// inServer:5300) and the FTP control port, whose sessions go to the
	// ALG.
	for j, rm := range []string{remote1, remote2} {
		g.flows = append(g.flows,
			&genFlow{inbound: true, in: inServer + ":5300", remote: fmt.Sprintf("%s:%d", rm, 30000+j), public: public + ":5353"},
			&genFlow{inbound: true, tcp: true, in: inServer + ":2021", remote: fmt.Sprintf("%s:%d", rm, 31000+j), public: public + ":9091",
				iseq: g.r.Uint32(), rseq: g.r.Uint32()})
	}
	// Hairpinned flows: an inside host to the public UDP server port, and
	// to the public endpoint of another inside host's flow, whose packets
	// wait (hairpin filtering) until that host has sent to the first's.
	g.flows = append(g.flows,
		&genFlow{in: "10.77.0.6:25000", remote: public + ":5353", public: public + ":25000", back: inServer + ":5300"},
		&genFlow{in: "10.77.0.6:25001", remote: public + ":20001", public: public + ":25001", back: inClient + ":20001"})
	return g
}

// burst returns the frames to inject on the inside and the outside port
// for one poll.
func (g *trafficGen) burst() (in, out [][]byte) {
	n := 1 + g.r.IntN(40)
	for range n {
		f := g.flows[g.r.IntN(len(g.flows))]
		frame, fromOut := g.packet(f)
		if frame == nil {
			continue
		}
		if !fromOut {
			if len(g.sent) < 64 {
				g.sent = append(g.sent, frame)
			} else {
				g.sent[g.r.IntN(64)] = frame
			}
		}
		frame, fromOut = g.mangle(frame, fromOut)
		if fromOut {
			out = append(out, frame)
		} else {
			in = append(in, frame)
		}
	}
	return in, out
}

// packet is the next packet of flow f, and whether it arrives from the
// outside.
func (g *trafficGen) packet(f *genFlow) ([]byte, bool) {
	t := g.t
	fromOut := g.r.IntN(2) == 0
	if f.inbound && f.state == 0 {
		fromOut = true
	}
	if !f.tcp {
		payload := make([]byte, g.size())
		if f.inbound {
			if fromOut {
				return testutil.UDP(t, f.remote, f.public, payload), true
			}
			return testutil.UDP(t, f.in, f.remote, payload), false
		}
		if fromOut && f.back != "" {
			return testutil.UDP(t, f.back, f.public, payload), false
		}
		if fromOut {
			return testutil.UDP(t, f.remote, f.public, payload), true
		}
		return testutil.UDP(t, f.in, f.remote, payload), false
	}
	// TCP: the opener is the inside host, or the remote one for an
	// inbound flow.
	opener, peer := f.in, f.remote
	oTo, pTo := f.remote, f.public
	if f.inbound {
		opener, peer, oTo, pTo = f.remote, f.in, f.public, f.remote
	}
	send := func(fromOpener bool, flags int, payload []byte) ([]byte, bool) {
		if fromOpener {
			seq := f.iseq
			f.iseq += uint32(len(payload))
			if flags&(testutil.SYN|testutil.FIN) != 0 {
				f.iseq++
			}
			return testutil.TCP(t, opener, oTo, flags, seq, f.rseq, payload), f.inbound
		}
		seq := f.rseq
		f.rseq += uint32(len(payload))
		if flags&(testutil.SYN|testutil.FIN) != 0 {
			f.rseq++
		}
		return testutil.TCP(t, peer, pTo, flags, seq, f.iseq, payload), !f.inbound
	}
	switch f.state {
	case 0:
		f.state = 1
		return send(true, testutil.SYN, nil)
	case 1:
		f.state = 2
		return send(false, testutil.SYN|testutil.ACK, nil)
	case 2:
		f.state = 3
		return send(true, testutil.ACK, nil)
	}
	fromOpener := g.r.IntN(2) == 0
	switch x := g.r.IntN(100); {
	case x < 3: // FIN, then the connection starts over
		f.state = 0
		return send(fromOpener, testutil.FIN|testutil.ACK, nil)
	case x < 5: // RST
		f.state = 0
		return send(fromOpener, testutil.RST|testutil.ACK, nil)
	case x < 7: // out of the window: its sender's sequence far ahead
		frame, o := send(fromOpener, testutil.ACK|testutil.PSH, make([]byte, 10))
		binary.BigEndian.PutUint32(frame[packet.EthernetLen+packet.IPv4MinLen+4:], f.iseq+1<<30)
		fixL4(frame)
		return frame, o
	case x < 8: // a stray SYN in the connection
		return send(fromOpener, testutil.SYN, nil)
	case x < 9: // flags no stack sends: NULL, PSH alone, XMAS, SYN with RST
		frame, o := send(fromOpener, testutil.ACK|testutil.PSH, make([]byte, 10))
		bad := [...]uint8{0, packet.FlagPSH, packet.FlagFIN | packet.FlagPSH | packet.FlagURG, packet.FlagSYN | packet.FlagRST | packet.FlagACK}
		frame[packet.EthernetLen+packet.IPv4MinLen+13] = bad[g.r.IntN(len(bad))]
		fixL4(frame)
		return frame, o
	default:
		return send(fromOpener, testutil.ACK|testutil.PSH, make([]byte, g.size()))
	}
}

// size is a payload length: mostly small, sometimes above the outside
// port's MTU (1200), sometimes just below it (where bytes after the
// packet make the frame longer than the MTU allows the packet).
func (g *trafficGen) size() int {
	switch g.r.IntN(20) {
	case 0:
		return 1200 + g.r.IntN(200)
	case 1:
		return 1140 + g.r.IntN(40)
	}
	return g.r.IntN(100)
}

// mangle changes a few frames into ones the fast path must refuse.
func (g *trafficGen) mangle(frame []byte, fromOut bool) ([]byte, bool) {
	t := g.t
	const l3 = packet.EthernetLen
	switch x := g.r.IntN(200); {
	case x < 6:
		return testutil.WithTTL(t, frame, uint8(g.r.IntN(2))), fromOut
	case x < 10: // on the wrong side
		return frame, !fromOut
	case x < 14: // no Don't Fragment
		f := bytes.Clone(frame)
		f[l3+6] &^= 0x40
		fixIP(f)
		return f, fromOut
	case x < 18: // fragmented
		if len(frame) > 100 {
			fs := testutil.Fragment(t, frame, 48)
			return fs[g.r.IntN(len(fs))], fromOut
		}
	case x < 21: // an IP option (four NOPs)
		f := make([]byte, 0, len(frame)+4)
		f = append(f, frame[:l3+20]...)
		f = append(f, 1, 1, 1, 1)
		f = append(f, frame[l3+20:]...)
		f[l3] = 0x46
		binary.BigEndian.PutUint16(f[l3+2:], binary.BigEndian.Uint16(f[l3+2:])+4)
		fixIP(f)
		return f, fromOut
	case x < 24: // an 802.1Q tag
		f := make([]byte, 0, len(frame)+4)
		f = append(f, frame[:12]...)
		f = append(f, 0x81, 0x00, 0x00, 0x07)
		f = append(f, frame[12:]...)
		return f, fromOut
	case x < 27: // a bad header checksum
		f := bytes.Clone(frame)
		f[l3+10] ^= 0x5a
		return f, fromOut
	case x < 30: // truncated
		return frame[:g.r.IntN(len(frame))], fromOut
	case x < 33: // a UDP length or TCP data offset that does not fit
		f := bytes.Clone(frame)
		tl := int(binary.BigEndian.Uint16(f[l3+2:]))
		if f[l3+9] == packet.ProtoUDP {
			n := []int{g.r.IntN(8), tl - 20 + 1 + g.r.IntN(100)}[g.r.IntN(2)]
			binary.BigEndian.PutUint16(f[l3+20+4:], uint16(n))
		} else if f[l3+9] == packet.ProtoTCP {
			f[l3+20+12] = byte(g.r.IntN(5)) << 4
		}
		return f, fromOut
	case x < 36:
		// (an identifier the NAT keeps: one both workers translate alike)
		return testutil.ICMPEcho(t, inClient, remote1, uint16(40000+g.r.IntN(4)), 1, false), false
	case x < 39: // an ICMP error about something sent out
		if len(g.seen) > 0 {
			if q := g.seen[g.r.IntN(len(g.seen))]; q[12] == 0x08 {
				return testutil.ICMPError(t, remote1, public, 3, 3, q, 8), true
			}
		}
	case x < 41: // an old frame again
		if len(g.sent) > 0 {
			return g.sent[g.r.IntN(len(g.sent))], false
		}
	case x < 45: // bytes after the packet (Ethernet padding, a trailer)
		f := make([]byte, len(frame), len(frame)+40)
		copy(f, frame)
		return append(f, make([]byte, 1+g.r.IntN(40))...), fromOut
	}
	return frame, fromOut
}

// decodeUntagged is testutil.Decode for a frame that may carry an 802.1Q
// tag, which Decode's checksum check does not expect: it checks the
// frame without it.
func decodeUntagged(t *testing.T, f []byte) {
	t.Helper()
	if len(f) >= 18 && f[12] == 0x81 && f[13] == 0x00 {
		f = append(bytes.Clone(f[:12]), f[16:]...)
	}
	testutil.Decode(t, f)
}

// fixIP recomputes an IPv4 header checksum.
func fixIP(f []byte) {
	const l3 = packet.EthernetLen
	ip := packet.IPv4(f[l3:])
	ip.SetChecksum(0)
	ip.SetChecksum(packet.Checksum(f[l3:l3+ip.HeaderLen()], 0))
}

// fixL4 recomputes the TCP checksum of an unfragmented segment with a
// 20-byte IP header.
func fixL4(f []byte) {
	const l3 = packet.EthernetLen
	ip := packet.IPv4(f[l3 : l3+int(packet.IPv4(f[l3:]).TotalLength())])
	tcp := f[l3+20 : l3+len(ip)]
	packet.TCP(tcp).SetChecksum(packet.TCPChecksum(ip, tcp))
}
