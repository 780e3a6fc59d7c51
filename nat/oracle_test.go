package nat

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// The slow, obvious checksums (RFC 1071), the oracle of the precomputed
// deltas: everything is summed again from the bytes.

// sum1071 adds b to the one's-complement sum s, 16 bits at a time (an odd
// last byte padded with zero).
func sum1071(s uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	return s
}

func fold(s uint32) uint16 {
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// recompute sets the IPv4 header checksum of ip (a whole IPv4 packet)
// and, unless it is a fragment, its TCP, UDP or ICMP checksum, summing
// everything from scratch. A UDP checksum of 0 (none) stays 0.
func recompute(ip []byte) {
	ihl := int(ip[0]&0xf) * 4
	binary.BigEndian.PutUint16(ip[10:], 0)
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum1071(0, ip[:ihl])))
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return // a fragment: its transport checksum covers other fragments too
	}
	l4 := ip[ihl:binary.BigEndian.Uint16(ip[2:])]
	pseudo := func() uint32 {
		s := sum1071(0, ip[12:20])
		return s + uint32(ip[9]) + uint32(len(l4))
	}
	switch ip[9] {
	case packet.ProtoTCP:
		if len(l4) < 20 {
			return
		}
		binary.BigEndian.PutUint16(l4[16:], 0)
		binary.BigEndian.PutUint16(l4[16:], ^fold(sum1071(pseudo(), l4)))
	case packet.ProtoUDP:
		if len(l4) < 8 || binary.BigEndian.Uint16(l4[6:]) == 0 {
			return
		}
		binary.BigEndian.PutUint16(l4[6:], 0)
		c := ^fold(sum1071(pseudo(), l4))
		if c == 0 {
			c = 0xffff // RFC 768: a computed zero is sent as all ones
		}
		binary.BigEndian.PutUint16(l4[6:], c)
	case packet.ProtoICMP:
		if len(l4) < 4 {
			return
		}
		binary.BigEndian.PutUint16(l4[2:], 0)
		binary.BigEndian.PutUint16(l4[2:], ^fold(sum1071(0, l4)))
	}
}

// translated is what the oracle expects of frame (an Ethernet frame with
// an untagged IPv4 packet) translated to tuple x: the addresses, ports or
// ICMP identifier set, the TTL decremented, every checksum summed anew.
func translated(frame []byte, x packet.Tuple) []byte {
	f := append([]byte(nil), frame...)
	ip := f[14:]
	ihl := int(ip[0]&0xf) * 4
	ip[8]--
	binary.BigEndian.PutUint32(ip[12:], x.SrcAddr)
	binary.BigEndian.PutUint32(ip[16:], x.DstAddr)
	l4 := ip[ihl:]
	switch x.Proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		binary.BigEndian.PutUint16(l4[0:], x.SrcPort)
		binary.BigEndian.PutUint16(l4[2:], x.DstPort)
	case packet.ProtoICMP:
		binary.BigEndian.PutUint16(l4[4:], x.SrcPort)
	}
	recompute(ip)
	return f
}

// randomFrame returns a frame from src to dst ("a:p", or addresses for
// ICMP) of the protocol, with random TTL, IP ID, flags, IP options and
// payload, and valid checksums. For TCP it is a SYN (seq) or, with ack
// non-zero, a SYN/ACK.
func randomFrame(tb testing.TB, rng *rand.Rand, proto uint8, src, dst string, id uint16, seq, ack uint32) []byte {
	tb.Helper()
	payload := make([]byte, rng.IntN(100))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	var f []byte
	switch proto {
	case packet.ProtoUDP:
		f = testutil.UDP(tb, src, dst, payload)
	case packet.ProtoTCP:
		var opts []layers.TCPOption
		if rng.IntN(2) == 0 {
			opts = append(opts, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 180}},
				layers.TCPOption{OptionType: layers.TCPOptionKindNop},
				layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{byte(rng.IntN(15))}})
		}
		flags := testutil.SYN
		if ack != 0 {
			flags |= testutil.ACK
		}
		f = testutil.TCP(tb, src, dst, flags, seq, ack, nil, opts...)
	case packet.ProtoICMP:
		f = testutil.ICMPEcho(tb, src, dst, id, uint16(rng.Uint32()), ack != 0)
	}
	// IP options (no-operations, then end of list) between the header and
	// the transport header.
	if n := 4 * rng.IntN(4); n > 0 {
		opts := make([]byte, n)
		for i := range opts {
			opts[i] = 1
		}
		opts[n-1] = 0
		f = append(f[:34:34], append(opts, f[34:]...)...)
		f[14] = 0x40 | byte(5+n/4)
		binary.BigEndian.PutUint16(f[16:], binary.BigEndian.Uint16(f[16:])+uint16(n))
	}
	ip := f[14:]
	ip[8] = byte(2 + rng.IntN(254))
	binary.BigEndian.PutUint16(ip[4:], uint16(rng.Uint32()))
	binary.BigEndian.PutUint16(ip[6:], uint16(rng.IntN(2))<<14) // DF or not
	if proto == packet.ProtoUDP && rng.IntN(4) == 0 {
		binary.BigEndian.PutUint16(ip[int(ip[0]&0xf)*4+6:], 0) // no checksum
	}
	recompute(ip)
	return f
}

// TestDeltasMatchRecomputation: over random rules and random packets,
// every frame the engine translates — a new flow's first packet, its
// reply, a nat server's — equals, byte for byte, the frame translated by
// the oracle: the same fields set and every checksum summed anew.
func TestDeltasMatchRecomputation(t *testing.T) {
	rng := rand.New(rand.NewPCG(0x0dd, 0xba11))
	n := 2000
	if testing.Short() {
		n = 200
	}
	protos := []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP}
	g := newRig(t, testRules(t))
	for i := range n {
		pool := netip.AddrFrom4([4]byte{198, 18, 1, byte(1 + rng.IntN(250))})
		lo := uint16(1024 + rng.IntN(60000))
		hi := lo + uint16(rng.IntN(int(65535-lo)+1))
		srvPub := netip.AddrPortFrom(pool, uint16(1+rng.IntN(65535)))
		srvIn := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(rng.IntN(256)), byte(1 + rng.IntN(250))}), uint16(1+rng.IntN(65535)))
		srvProto := []uint8{packet.ProtoTCP, packet.ProtoUDP}[rng.IntN(2)]
		// New rules for each case over one table; the previous case's
		// sessions are aged out first.
		g.expire(2 * 3600)
		err := g.n.Reload(Rules{
			Outbound: []Outbound{{Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/16")}, Pool: []netip.Addr{pool},
				PortLo: lo, PortHi: hi, EndpointIndependent: rng.IntN(2) == 0}},
			Servers:  []Server{{Proto: srvProto, Public: srvPub, Inside: srvIn}},
			Timeouts: Timeouts{TCPSyn: time.Minute, TCPEstablished: time.Hour, TCPTransitory: time.Minute, UDP: time.Minute, ICMP: time.Minute, Other: time.Minute},
		})
		if err != nil {
			t.Fatal(err)
		}
		proto := protos[rng.IntN(len(protos))]
		in := netip.AddrFrom4([4]byte{10, 77, byte(rng.IntN(256)), byte(1 + rng.IntN(250))})
		out := netip.AddrFrom4([4]byte{198, 18, 2, byte(1 + rng.IntN(250))})
		sp, dp, id := uint16(1+rng.IntN(65535)), uint16(1+rng.IntN(65535)), uint16(rng.Uint32())
		seq := rng.Uint32()
		ep := func(a netip.Addr, p uint16) string {
			if proto == packet.ProtoICMP {
				return a.String()
			}
			return netip.AddrPortFrom(a, p).String()
		}
		name := fmt.Sprintf("case %d (%d)", i, proto)

		first := randomFrame(t, rng, proto, ep(in, sp), ep(out, dp), id, seq, 0)
		r := g.check(name+" first", Inside, first)
		s := g.session(r)
		x := s.Key[1-r.Dir].Reverse()
		if x.SrcAddr != testutil.Addr(t, pool.String()) || (x.SrcPort < lo || x.SrcPort > hi) && x.SrcPort != sp && proto != packet.ProtoICMP {
			t.Fatalf("%s: translated to %v, outside pool %v %d-%d", name, x, pool, lo, hi)
		}
		reply := randomFrame(t, rng, proto, endpoint(proto, x.DstAddr, x.DstPort), endpoint(proto, x.SrcAddr, x.SrcPort), x.SrcPort, rng.Uint32(), seq+1)
		g.check(name+" reply", Outside, reply)

		// A nat server's flow from outside.
		p := srvProto
		fromSrv := randomFrameProto(t, rng, p, netip.AddrPortFrom(out, sp%65534+1).String(), srvPub.String(), seq)
		g.check(name+" server", Outside, fromSrv)
	}
}

func randomFrameProto(tb testing.TB, rng *rand.Rand, proto uint8, src, dst string, seq uint32) []byte {
	tb.Helper()
	return randomFrame(tb, rng, proto, src, dst, 0, seq, 0)
}

// check runs frame through the engine from side from twice — the first
// time possibly creating its session, the second a hit on it — and
// compares both frames that leave with the oracle's translation of it to
// its session's tuple.
func (g *rig) check(name string, from Side, frame []byte) Result {
	g.tb.Helper()
	want := func(r Result) []byte { s := g.session(r); return translated(frame, s.Key[1-r.Dir].Reverse()) }
	var first Result
	for pass := range 2 {
		r, d := g.send(from, frame)
		if r.Verdict != Forward {
			g.tb.Fatalf("%s, pass %d: verdict %v", name, pass, r.Verdict)
		}
		if pass == 0 {
			first = r
		} else if r.Session != first.Session || r.Gen != first.Gen {
			g.tb.Fatalf("%s: the second packet went to session %d/%d, the first to %d/%d", name, r.Session, r.Gen, first.Session, first.Gen)
		}
		if got, w := d.Raw, want(r); string(got) != string(w) {
			for i := range got {
				if got[i] != w[i] {
					g.tb.Fatalf("%s, pass %d: byte %d is %#02x, oracle %#02x\n got % x\nwant % x", name, pass, i, got[i], w[i], got, w)
				}
			}
		}
	}
	return first
}
