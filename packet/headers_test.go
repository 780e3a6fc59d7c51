package packet

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket/layers"
)

func tcpFlagsOf(t *layers.TCP) uint8 {
	var f uint8
	for _, b := range []struct {
		set  bool
		flag uint8
	}{
		{t.FIN, FlagFIN}, {t.SYN, FlagSYN}, {t.RST, FlagRST}, {t.PSH, FlagPSH},
		{t.ACK, FlagACK}, {t.URG, FlagURG}, {t.ECE, FlagECE}, {t.CWR, FlagCWR},
	} {
		if b.set {
			f |= b.flag
		}
	}
	return f
}

// TestGettersMatchGopacket builds random frames with gopacket and checks
// every getter against gopacket's decoding of the same bytes.
func TestGettersMatchGopacket(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for i := range 1000 {
		s := randomSpec(r)
		frame := s.frame(t)
		d := decode(t, frame)
		p := mustParse(t, frame)
		check := func(name string, got, want any) {
			t.Helper()
			if got != want {
				t.Fatalf("frame %d: %s = %v, gopacket %v\n% x", i, name, got, want, frame)
			}
		}
		checkBytes := func(name string, got, want []byte) {
			t.Helper()
			if !bytes.Equal(got, want) {
				t.Fatalf("frame %d: %s = % x, gopacket % x", i, name, got, want)
			}
		}

		eth := Ethernet(frame)
		check("Ethernet.Dst", eth.Dst(), [6]byte(d.Eth.DstMAC))
		check("Ethernet.Src", eth.Src(), [6]byte(d.Eth.SrcMAC))
		check("Ethernet.EtherType", eth.EtherType(), uint16(d.Eth.EthernetType))
		check("HasVLAN", p.HasVLAN, d.VLAN != nil)
		if d.VLAN != nil {
			tci := uint16(d.VLAN.Priority)<<13 | d.VLAN.VLANIdentifier
			if d.VLAN.DropEligible {
				tci |= 1 << 12
			}
			check("VLAN", p.VLAN, tci)
		}

		ip := p.IPv4(frame)
		check("IPv4.Version", ip.Version(), d.IP.Version)
		check("IPv4.IHL", ip.IHL(), d.IP.IHL)
		check("IPv4.HeaderLen", ip.HeaderLen(), len(d.IP.Contents))
		check("IPv4.TOS", ip.TOS(), d.IP.TOS)
		check("IPv4.TotalLength", ip.TotalLength(), d.IP.Length)
		check("IPv4.ID", ip.ID(), d.IP.Id)
		check("IPv4.Flags", ip.Flags(), uint8(d.IP.Flags))
		check("IPv4.FragOffset", ip.FragOffset(), d.IP.FragOffset*8)
		check("IPv4.TTL", ip.TTL(), d.IP.TTL)
		check("IPv4.Protocol", ip.Protocol(), uint8(d.IP.Protocol))
		check("IPv4.Checksum", ip.Checksum(), d.IP.Checksum)
		check("IPv4.SrcAddr", ip.SrcAddr(), addr(d.IP.SrcIP))
		check("IPv4.DstAddr", ip.DstAddr(), addr(d.IP.DstIP))
		checkBytes("IPv4.Options", ip.Options(), d.IP.Contents[IPv4MinLen:])
		checkBytes("IPv4.Payload", ip.Payload(), d.IP.Payload)
		check("Parsed.L3", p.L3, len(d.Eth.Contents)+map[bool]int{true: VLANLen}[d.VLAN != nil])
		check("Parsed.End", p.End, p.L3+int(d.IP.Length))
		check("Tuple.SrcAddr", p.Tuple.SrcAddr, addr(d.IP.SrcIP))
		check("Tuple.DstAddr", p.Tuple.DstAddr, addr(d.IP.DstIP))
		check("Tuple.Proto", p.Tuple.Proto, uint8(d.IP.Protocol))
		check("Frag", p.Frag, Frag{ID: d.IP.Id})

		switch {
		case d.TCP != nil:
			tcp := p.TCP(frame)
			check("TCP.SrcPort", tcp.SrcPort(), uint16(d.TCP.SrcPort))
			check("TCP.DstPort", tcp.DstPort(), uint16(d.TCP.DstPort))
			check("TCP.Seq", tcp.Seq(), d.TCP.Seq)
			check("TCP.Ack", tcp.Ack(), d.TCP.Ack)
			check("TCP.DataOffset", tcp.DataOffset(), d.TCP.DataOffset)
			check("TCP.HeaderLen", tcp.HeaderLen(), len(d.TCP.Contents))
			check("TCP.Flags", tcp.Flags(), tcpFlagsOf(d.TCP))
			check("TCP.Window", tcp.Window(), d.TCP.Window)
			check("TCP.Checksum", tcp.Checksum(), d.TCP.Checksum)
			check("TCP.Urgent", tcp.Urgent(), d.TCP.Urgent)
			checkBytes("TCP.Options", tcp.Options(), d.TCP.Contents[TCPMinLen:])
			checkBytes("TCP.Payload", tcp.Payload(), d.TCP.Payload)
			check("Parsed.TCPFlags", p.TCPFlags, tcpFlagsOf(d.TCP))
			check("Parsed.Payload", p.Payload, p.L4+len(d.TCP.Contents))
			check("Tuple.SrcPort", p.Tuple.SrcPort, uint16(d.TCP.SrcPort))
			check("Tuple.DstPort", p.Tuple.DstPort, uint16(d.TCP.DstPort))
			if err := d.TCP.SetNetworkLayerForChecksum(d.IP); err != nil {
				t.Fatal(err)
			}
			// gopacket's ComputeChecksum sums the segment as it is, checksum
			// included: 0 means the checksum verifies.
			verify, err := d.TCP.ComputeChecksum()
			if err != nil {
				t.Fatal(err)
			}
			check("gopacket TCP checksum verification", verify, uint16(0))
			check("TCPChecksum", TCPChecksum(ip, tcp), d.TCP.Checksum)
		case d.UDP != nil:
			udp := p.UDP(frame)
			check("UDP.SrcPort", udp.SrcPort(), uint16(d.UDP.SrcPort))
			check("UDP.DstPort", udp.DstPort(), uint16(d.UDP.DstPort))
			check("UDP.Length", udp.Length(), d.UDP.Length)
			check("UDP.Checksum", udp.Checksum(), d.UDP.Checksum)
			checkBytes("UDP.Payload", udp.Payload(), d.UDP.Payload)
			check("Parsed.Payload", p.Payload, p.L4+UDPLen)
			check("Tuple.SrcPort", p.Tuple.SrcPort, uint16(d.UDP.SrcPort))
			check("Tuple.DstPort", p.Tuple.DstPort, uint16(d.UDP.DstPort))
		case d.ICMP != nil:
			icmp := p.ICMP(frame)
			check("ICMP.Type", icmp.Type(), d.ICMP.TypeCode.Type())
			check("ICMP.Code", icmp.Code(), d.ICMP.TypeCode.Code())
			check("ICMP.Checksum", icmp.Checksum(), d.ICMP.Checksum)
			check("ICMP.ID", icmp.ID(), d.ICMP.Id)
			check("ICMP.Seq", icmp.Seq(), d.ICMP.Seq)
			checkBytes("ICMP.Payload", icmp.Payload(), d.ICMP.Payload)
			check("Parsed.ICMPType", p.ICMPType, d.ICMP.TypeCode.Type())
			check("Parsed.ICMPKind", p.ICMPKind, KindOf(d.ICMP.TypeCode.Type()))
			check("Tuple.SrcPort", p.Tuple.SrcPort, d.ICMP.Id)
			check("Tuple.DstPort", p.Tuple.DstPort, d.ICMP.Id)
		default:
			t.Fatalf("frame %d: gopacket found no transport layer", i)
		}
	}
}

// setterCase changes a spec (what the packet should become, built afresh by
// gopacket with checksums computed from scratch) and applies the same change
// to the parsed frame with this package's setters (checksums patched
// incrementally). The two frames must be equal byte for byte.
type setterCase struct {
	name  string
	gen   func(r *rand.Rand) spec
	apply func(r *rand.Rand, s *spec, frame []byte, p *Parsed) []byte
}

func genTCP(r *rand.Rand) spec {
	s := randomSpec(r)
	for s.TCP == nil {
		s = randomSpec(r)
	}
	return s
}

func genUDP(r *rand.Rand) spec {
	s := randomSpec(r)
	for s.UDP == nil {
		s = randomSpec(r)
	}
	s.NoUDPChecksum = r.IntN(4) == 0
	return s
}

func genICMP(r *rand.Rand) spec {
	s := randomSpec(r)
	for s.ICMP == nil {
		s = randomSpec(r)
	}
	return s
}

func genRawIP(r *rand.Rand) spec {
	s := randomSpec(r)
	s.TCP, s.UDP, s.ICMP = nil, nil, nil
	s.IP.Protocol = 253 // RFC 3692 experimentation
	s.Payload = randomBytes(r, 1+r.IntN(100))
	return s
}

// snat rewrites the source address and port the way nat's fast path does:
// raw stores plus a Delta precomputed for the session.
func snat(r *rand.Rand, s *spec, frame []byte, p *Parsed) []byte {
	ip := p.IPv4(frame)
	oldA, newA := ip.SrcAddr(), r.Uint32()
	s.IP.SrcIP = ip4(newA)
	ipDelta := Delta(0).Add32(oldA, newA)
	ip.SetSrcAddrRaw(newA)
	ip.SetChecksum(ApplyDelta(ip.Checksum(), ipDelta))
	newP := uint16(r.Uint32())
	switch {
	case s.TCP != nil:
		tcp := p.TCP(frame)
		l4Delta := ipDelta.Add16(tcp.SrcPort(), newP)
		s.TCP.SrcPort = layers.TCPPort(newP)
		tcp.SetSrcPortRaw(newP)
		tcp.SetChecksum(ApplyDelta(tcp.Checksum(), l4Delta))
	case s.UDP != nil:
		udp := p.UDP(frame)
		l4Delta := ipDelta.Add(Delta(0).Add16(udp.SrcPort(), newP))
		s.UDP.SrcPort = layers.UDPPort(newP)
		udp.SetSrcPortRaw(newP)
		udp.SetChecksum(ApplyDeltaUDP(udp.Checksum(), l4Delta))
	case s.ICMP != nil:
		// ICMP has no pseudo-header: only the identifier counts.
		icmp := p.ICMP(frame)
		s.ICMP.Id = newP
		icmp.SetChecksum(ApplyDelta(icmp.Checksum(), Delta(0).Add16(icmp.ID(), newP)))
		icmp.SetIDRaw(newP)
	}
	return frame
}

var setterCases = []setterCase{
	{"Ethernet.SetDst", randomSpec, func(r *rand.Rand, s *spec, f []byte, _ *Parsed) []byte {
		s.DstMAC = randomMAC(r)
		Ethernet(f).SetDst(s.DstMAC)
		return f
	}},
	{"Ethernet.SetSrc", randomSpec, func(r *rand.Rand, s *spec, f []byte, _ *Parsed) []byte {
		s.SrcMAC = randomMAC(r)
		Ethernet(f).SetSrc(s.SrcMAC)
		return f
	}},
	{"IPv4.SetSrcAddr", genRawIP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		a := r.Uint32()
		s.IP.SrcIP = ip4(a)
		p.IPv4(f).SetSrcAddr(a)
		return f
	}},
	{"IPv4.SetDstAddr", genRawIP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		a := r.Uint32()
		s.IP.DstIP = ip4(a)
		p.IPv4(f).SetDstAddr(a)
		return f
	}},
	{"IPv4.SetTTL", randomSpec, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.IP.TTL = uint8(r.Uint32())
		p.IPv4(f).SetTTL(s.IP.TTL)
		return f
	}},
	{"IPv4.DecTTL", randomSpec, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.IP.TTL--
		if got := p.IPv4(f).DecTTL(); got != s.IP.TTL {
			panic("DecTTL returned the wrong TTL")
		}
		return f
	}},
	{"IPv4.SetTotalLength", genRawIP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		cut := r.IntN(len(s.Payload))
		s.Payload = s.Payload[:len(s.Payload)-cut]
		ip := p.IPv4(f)
		ip.SetTotalLength(ip.TotalLength() - uint16(cut))
		return f[:p.End-cut]
	}},
	{"TCP.SetSrcPort", genTCP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.TCP.SrcPort = layers.TCPPort(r.Uint32())
		p.TCP(f).SetSrcPort(uint16(s.TCP.SrcPort))
		return f
	}},
	{"TCP.SetDstPort", genTCP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.TCP.DstPort = layers.TCPPort(r.Uint32())
		p.TCP(f).SetDstPort(uint16(s.TCP.DstPort))
		return f
	}},
	{"TCP.SetSeq", genTCP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.TCP.Seq = r.Uint32()
		p.TCP(f).SetSeq(s.TCP.Seq)
		return f
	}},
	{"TCP.SetAck", genTCP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.TCP.Ack = r.Uint32()
		p.TCP(f).SetAck(s.TCP.Ack)
		return f
	}},
	{"UDP.SetSrcPort", genUDP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.UDP.SrcPort = layers.UDPPort(r.Uint32())
		p.UDP(f).SetSrcPort(uint16(s.UDP.SrcPort))
		return f
	}},
	{"UDP.SetDstPort", genUDP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.UDP.DstPort = layers.UDPPort(r.Uint32())
		p.UDP(f).SetDstPort(uint16(s.UDP.DstPort))
		return f
	}},
	{"ICMP.SetID", genICMP, func(r *rand.Rand, s *spec, f []byte, p *Parsed) []byte {
		s.ICMP.Id = uint16(r.Uint32())
		p.ICMP(f).SetID(s.ICMP.Id)
		return f
	}},
	{"snat with precomputed delta", randomSpec, snat},
}

// TestSettersMatchGopacket checks, 1000 times per setter, that the
// incrementally patched frame equals the frame gopacket builds from scratch.
func TestSettersMatchGopacket(t *testing.T) {
	for ci, tc := range setterCases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(31, uint64(ci)))
			for i := range 1000 {
				s := tc.gen(r)
				frame := s.frame(t)
				p := mustParse(t, frame)
				got := tc.apply(r, &s, frame, &p)
				want := s.frame(t)
				var wp Parsed
				if res := Parse(want, &wp); res != OK {
					t.Fatalf("%d: gopacket's frame does not parse: %v", i, res)
				}
				// Compare up to the end of the IP packet: Ethernet padding
				// depends on the length.
				if !bytes.Equal(got[:p.L3+int(IPv4(got[p.L3:]).TotalLength())], want[:wp.End]) {
					t.Fatalf("%d: setter result differs from gopacket\n got % x\nwant % x", i, got, want)
				}
				if res := Parse(got, &p); res != OK {
					t.Fatalf("%d: setter result does not parse: %v", i, res)
				}
			}
		})
	}
}

func TestDecTTLZero(t *testing.T) {
	s := udpSpec(1, 2, nil)
	s.IP.TTL = 0
	f := s.frame(t)
	p := mustParse(t, f)
	if got := p.IPv4(f).DecTTL(); got != 0 || !bytes.Equal(f, s.frame(t)) {
		t.Fatalf("DecTTL on TTL 0 = %d or changed the frame; want 0 and no change", got)
	}
}

func TestSettersAllocs(t *testing.T) {
	tf := tcpSpec(1000, 80, []byte("x")).frame(t)
	tp := mustParse(t, tf)
	uf := udpSpec(1000, 53, []byte("x")).frame(t)
	up := mustParse(t, uf)
	ef := icmpSpec(ICMPEcho, 0, 7, 1, nil).frame(t)
	ep := mustParse(t, ef)
	d := Delta(0).Add32(1, 2)
	if n := testing.AllocsPerRun(100, func() {
		Ethernet(tf).SetDst([6]byte{1})
		ip := tp.IPv4(tf)
		ip.SetSrcAddr(0x0a000001)
		ip.SetDstAddr(0x0a000002)
		ip.SetTTL(64)
		ip.DecTTL()
		ip.SetTotalLength(ip.TotalLength())
		tcp := tp.TCP(tf)
		tcp.SetSrcPort(1)
		tcp.SetDstPort(2)
		tcp.SetSeq(3)
		tcp.SetAck(4)
		tcp.SetChecksum(ApplyDelta(tcp.Checksum(), d))
		udp := up.UDP(uf)
		udp.SetSrcPort(5)
		udp.SetDstPort(6)
		udp.SetChecksum(ApplyDeltaUDP(udp.Checksum(), d))
		ep.ICMP(ef).SetID(8)
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}
