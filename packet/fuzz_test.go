package packet

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// FuzzParse feeds arbitrary bytes to Parse. It must not panic; when it says
// OK the offsets must lie in order inside the frame, every view accessor
// must be usable without a bounds panic, gopacket must read the same
// addresses and ports, and the checksum-updating setters must leave a frame
// that still parses.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases(f) {
		f.Add(tc.frame(f))
	}
	r := rand.New(rand.NewPCG(41, 42))
	for range 20 {
		f.Add(randomSpec(r).frame(f))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var g Parsed
		var tu Tuple
		res := parse(frame, &g) // the general decoder alone
		if ok, want := ParseCommon(frame, &tu), commonShape(res, &g); ok != want || ok && tu != g.Tuple {
			t.Fatalf("ParseCommon %v %+v, Parse %v %+v", ok, tu, res, g)
		}
		var p Parsed
		if Parse(frame, &p) != OK {
			return
		}
		checkOffsets(t, frame, &p)
		useViews(frame, &p)
		compareGopacket(t, frame, &p)

		c := bytes.Clone(frame)
		ip := p.IPv4(c)
		ip.SetSrcAddr(^ip.SrcAddr())
		ip.SetDstAddr(ip.DstAddr() + 1)
		ip.DecTTL()
		var q Parsed
		if res := Parse(c, &q); res != OK {
			t.Fatalf("after IPv4 setters Parse = %v", res)
		}

		// The options, whatever they hold: checked and filled in
		// within the header, never beyond it.
		o := bytes.Clone(frame)
		oip := p.IPv4(o)
		if at, _ := oip.CheckOptions(); at != 0 && (at < IPv4MinLen || at >= oip.HeaderLen()) {
			t.Fatalf("CheckOptions %d outside the options (header %d)", at, oip.HeaderLen())
		}
		oip.ForwardOptions(1, 2, 3, []uint32{0})
		oip.EchoOptions(5, 6, []uint32{5})
		if !bytes.Equal(o[:p.L3+IPv4MinLen], frame[:p.L3+IPv4MinLen]) || !bytes.Equal(o[p.L3+oip.HeaderLen():], frame[p.L3+oip.HeaderLen():]) {
			t.Fatal("options processing wrote outside the options")
		}
	})
}

// sink keeps useViews' reads from being optimised away.
var sink uint64

// useViews calls every accessor a fast-path user may call after OK.
func useViews(f []byte, p *Parsed) {
	e := Ethernet(f)
	d, s := e.Dst(), e.Src()
	sink += uint64(d[0]) + uint64(s[0]) + uint64(e.EtherType())
	ip := p.IPv4(f)
	sink += uint64(ip.Version()+ip.IHL()+ip.TOS()+ip.Flags()+ip.TTL()+ip.Protocol()) +
		uint64(ip.TotalLength()+ip.ID()+ip.FragOffset()+ip.Checksum()+ip.CalculateChecksum()) +
		uint64(ip.SrcAddr()+ip.DstAddr()) + uint64(len(ip.Options())+len(ip.Payload()))
	if p.Frag.Offset != 0 {
		return
	}
	switch p.Tuple.Proto {
	case ProtoTCP:
		t := p.TCP(f)
		sink += uint64(t.SrcPort()+t.DstPort()+t.Window()+t.Checksum()+t.Urgent()) +
			uint64(t.Seq()+t.Ack()) + uint64(t.DataOffset()+t.Flags()) +
			uint64(len(t.Options())+len(t.Payload())+t.HeaderLen()) + uint64(TCPChecksum(ip, t))
	case ProtoUDP, ProtoUDPLite:
		u := p.UDP(f)
		sink += uint64(u.SrcPort()+u.DstPort()+u.Length()+u.Checksum()) + uint64(len(u.Payload()))
	case ProtoICMP:
		i := p.ICMP(f)
		sink += uint64(i.Type()+i.Code()) + uint64(i.Checksum()+i.ID()+i.Seq()) +
			uint64(len(i.Payload())) + uint64(ICMPChecksum(i))
		if p.ICMPKind == ICMPError {
			in := p.InnerIPv4(f)
			sink += uint64(in.Version()+in.IHL()+in.TTL()+in.Protocol()) +
				uint64(in.SrcAddr()+in.DstAddr()) + uint64(in.ID()+in.Checksum()) +
				uint64(len(in.Options())+len(p.InnerL4(f)))
		}
	}
}

// compareGopacket checks that gopacket reads what Parse read.
func compareGopacket(t *testing.T, f []byte, p *Parsed) {
	t.Helper()
	pkt := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	l := pkt.Layer(layers.LayerTypeIPv4)
	if l == nil {
		t.Fatalf("Parse OK but gopacket finds no IPv4 layer: %v", pkt.ErrorLayer())
	}
	ip := l.(*layers.IPv4)
	if addr(ip.SrcIP) != p.Tuple.SrcAddr || addr(ip.DstIP) != p.Tuple.DstAddr || uint8(ip.Protocol) != p.Tuple.Proto {
		t.Fatalf("gopacket reads %v > %v proto %d; Parse %+v", ip.SrcIP, ip.DstIP, ip.Protocol, p.Tuple)
	}
	if p.Frag.IsFragment() {
		return
	}
	// Compare ports only for the protocol Parse saw: gopacket also follows
	// chains Parse does not (IPv6 extension headers after protocol 0).
	if l := pkt.Layer(layers.LayerTypeTCP); l != nil && p.Tuple.Proto == ProtoTCP {
		tcp := l.(*layers.TCP)
		if uint16(tcp.SrcPort) != p.Tuple.SrcPort || uint16(tcp.DstPort) != p.Tuple.DstPort {
			t.Fatalf("gopacket reads TCP ports %d > %d; Parse %+v", tcp.SrcPort, tcp.DstPort, p.Tuple)
		}
	}
	if l := pkt.Layer(layers.LayerTypeUDP); l != nil && p.Tuple.Proto == ProtoUDP {
		udp := l.(*layers.UDP)
		if uint16(udp.SrcPort) != p.Tuple.SrcPort || uint16(udp.DstPort) != p.Tuple.DstPort {
			t.Fatalf("gopacket reads UDP ports %d > %d; Parse %+v", udp.SrcPort, udp.DstPort, p.Tuple)
		}
	}
}

// FuzzSum checks Sum, chained at an even split, against the RFC 1071 oracle.
func FuzzSum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint32(0), 3)
	f.Add(bytes.Repeat([]byte{0xff}, 77), uint32(0xffffffff), 40)
	f.Fuzz(func(t *testing.T, b []byte, initial uint32, split int) {
		if got, want := Fold(Sum(b, initial)), naiveSum(b, initial); got != want {
			t.Fatalf("Fold(Sum) = %#04x, naive %#04x", got, want)
		}
		if split < 0 || split > len(b) {
			return
		}
		split &^= 1
		if got, want := Fold(Sum(b[split:], Sum(b[:split], initial))), naiveSum(b, initial); got != want {
			t.Fatalf("chained at %d: %#04x, naive %#04x", split, got, want)
		}
	})
}
