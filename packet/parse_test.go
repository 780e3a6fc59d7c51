package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket/layers"
)

// fixIPChecksum recomputes, with the oracle, the checksum of the IPv4 header
// at frame[l3:] after a test damaged some other field on purpose.
func fixIPChecksum(frame []byte, l3 int) {
	hl := int(frame[l3]&0xf) * 4
	if hl < IPv4MinLen || l3+hl > len(frame) {
		hl = IPv4MinLen
	}
	h := frame[l3 : l3+hl]
	h[ipChecksum], h[ipChecksum+1] = 0, 0
	binary.BigEndian.PutUint16(h[ipChecksum:], naiveChecksum(h, 0))
}

// rawSpec is an IPv4 frame whose transport bytes are given verbatim.
func rawSpec(proto layers.IPProtocol, l4 []byte) spec {
	s := udpSpec(0, 0, l4)
	s.UDP = nil
	s.IP.Protocol = proto
	return s
}

// inner builds the IPv4 packet an ICMP error embeds: its header and the
// first 8 bytes of its transport header, as routers send it (RFC 792).
func inner(tb testing.TB, s spec) []byte {
	tb.Helper()
	pkt := s.packet(tb)
	return pkt[:int(pkt[0]&0xf)*4+8]
}

// frameOf builds s, applies damage to the frame (with the IPv4 header at
// l3) and, unless keepChecksum, makes the IPv4 checksum right again so that
// only the damage is wrong.
func frameOf(s spec, keepChecksum bool, damage func(f []byte, l3 int)) func(testing.TB) []byte {
	return func(tb testing.TB) []byte {
		f := s.frame(tb)
		l3 := EthernetLen
		if s.VLAN != nil {
			l3 += VLANLen
		}
		if damage != nil {
			damage(f, l3)
			if !keepChecksum && len(f) >= l3+IPv4MinLen {
				fixIPChecksum(f, l3)
			}
		}
		return f
	}
}

func built(s spec) func(testing.TB) []byte { return frameOf(s, false, nil) }

func fixed(f []byte) func(testing.TB) []byte {
	return func(testing.TB) []byte { return f }
}

func withVLAN(s spec, id uint16) spec {
	s.VLAN = &layers.Dot1Q{Priority: 5, VLANIdentifier: id}
	return s
}

func withOptions(s spec, words int) spec {
	for range words {
		s.IP.Options = append(s.IP.Options, layers.IPv4Option{OptionType: 1, OptionLength: 1}, layers.IPv4Option{OptionType: 1, OptionLength: 1},
			layers.IPv4Option{OptionType: 1, OptionLength: 1}, layers.IPv4Option{OptionType: 1, OptionLength: 1})
	}
	return s
}

// withOption appends option typ with data to the IP header's options
// (gopacket pads them to a multiple of 4 bytes with End).
func withOption(s spec, typ uint8, data ...byte) spec {
	o := layers.IPv4Option{OptionType: typ, OptionLength: 1}
	if typ > OptNOP {
		o.OptionLength, o.OptionData = uint8(2+len(data)), data
	}
	s.IP.Options = append(append([]layers.IPv4Option(nil), s.IP.Options...), o)
	return s
}

func withFrag(s spec, offset8 uint16, more bool) spec {
	s.IP.Flags = 0
	if more {
		s.IP.Flags = layers.IPv4MoreFragments
	}
	s.IP.FragOffset = offset8
	return s
}

func setU16(off int, v uint16) func(f []byte, l3 int) {
	return func(f []byte, l3 int) { binary.BigEndian.PutUint16(f[l3+off:], v) }
}

func setByte(off int, v byte) func(f []byte, l3 int) {
	return func(f []byte, l3 int) { f[l3+off] = v }
}

func icmpError(typ, code uint8, embedded []byte) spec {
	return icmpSpec(typ, code, 0, 0, embedded)
}

// Addresses the table uses.
const (
	aInside  = 0x0a4d0005 // 10.77.0.5
	aOutside = 0xc61200cc // 198.18.0.204
)

func embeddedTCP() spec {
	s := tcpSpec(40000, 9091, nil)
	s.IP.SrcIP, s.IP.DstIP = ip4(aInside), ip4(aOutside)
	return s
}

type parseCase struct {
	name  string
	frame func(testing.TB) []byte
	want  Result
	check func(t *testing.T, f []byte, p *Parsed)
}

func wantTuple(want Tuple) func(t *testing.T, f []byte, p *Parsed) {
	return func(t *testing.T, f []byte, p *Parsed) {
		t.Helper()
		if p.Tuple != want {
			t.Errorf("Tuple = %+v, want %+v", p.Tuple, want)
		}
	}
}

func parseCases(tb testing.TB) []parseCase {
	const src, dst = 0xc6120001, 0xc6130002
	udp := udpSpec(5353, 53, []byte("query"))
	tcp := tcpSpec(40000, 9091, []byte("USER anonymous\r\n"))
	big := udpSpec(4000, 4001, make([]byte, 100))
	echo := icmpSpec(ICMPEcho, 0, 0x4242, 7, []byte("ping"))

	errTCP := icmpError(ICMPDestUnreachable, ICMPCodePortUnreachable, inner(tb, embeddedTCP()))
	eu := udpSpec(5353, 53, []byte("query"))
	eu.IP.SrcIP, eu.IP.DstIP = ip4(aInside), ip4(aOutside)
	errUDP := icmpError(ICMPTimeExceeded, ICMPCodeTTLExceeded, inner(tb, eu))
	ee := icmpSpec(ICMPEcho, 0, 0x77, 1, []byte("ping"))
	ee.IP.SrcIP, ee.IP.DstIP = ip4(aInside), ip4(aOutside)
	errEcho := icmpError(ICMPDestUnreachable, ICMPCodeHostUnreachable, inner(tb, ee))
	errOpts := icmpError(ICMPDestUnreachable, ICMPCodeFragNeeded, inner(tb, withOptions(embeddedTCP(), 2)))
	ed := icmpSpec(ICMPDestUnreachable, 3, 0, 0, inner(tb, eu))
	errAboutErr := icmpError(ICMPDestUnreachable, ICMPCodeHostUnreachable, inner(tb, ed))
	eg := rawSpec(47, []byte{0, 0, 0x08, 0, 1, 2, 3, 4}) // GRE: no ports
	eg.IP.SrcIP, eg.IP.DstIP = ip4(aInside), ip4(aOutside)
	errGRE := icmpError(ICMPDestUnreachable, ICMPCodeHostUnreachable, inner(tb, eg))
	embedded := func(damage func(in []byte)) spec {
		in := inner(tb, embeddedTCP())
		damage(in)
		return icmpError(ICMPDestUnreachable, ICMPCodePortUnreachable, in)
	}
	innerCheck := func(wantL4Off int, want Tuple) func(t *testing.T, f []byte, p *Parsed) {
		return func(t *testing.T, f []byte, p *Parsed) {
			t.Helper()
			if p.ICMPKind != ICMPError || p.Tuple.SrcPort != 0 || p.Tuple.DstPort != 0 {
				t.Errorf("outer: kind %v tuple %+v, want error with ports 0", p.ICMPKind, p.Tuple)
			}
			if p.Inner.L3 != p.L4+ICMPLen || p.Inner.L4 != p.Inner.L3+wantL4Off {
				t.Errorf("Inner.L3, L4 = %d, %d; want %d, %d", p.Inner.L3, p.Inner.L4, p.L4+ICMPLen, p.L4+ICMPLen+wantL4Off)
			}
			if p.Inner.Tuple != want {
				t.Errorf("Inner.Tuple = %+v, want %+v", p.Inner.Tuple, want)
			}
			if in := p.InnerIPv4(f); in.SrcAddr() != want.SrcAddr || in.HeaderLen() != wantL4Off {
				t.Errorf("InnerIPv4 view: src %#x hl %d", in.SrcAddr(), in.HeaderLen())
			}
		}
	}

	return []parseCase{
		{"udp", built(udp), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 5353, DstPort: 53, Proto: ProtoUDP})(t, f, p)
			if p.L3 != 14 || p.L4 != 34 || p.Payload != 42 || p.End != 47 || p.HasVLAN || p.Frag.IsFragment() {
				t.Errorf("offsets %d %d %d %d vlan %v frag %+v", p.L3, p.L4, p.Payload, p.End, p.HasVLAN, p.Frag)
			}
			if len(f) != 60 {
				t.Errorf("frame is %d bytes; want 60 with Ethernet padding after End", len(f))
			}
		}},
		{"tcp", built(tcp), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 40000, DstPort: 9091, Proto: ProtoTCP})(t, f, p)
			if p.Payload != p.L4+32 || p.TCPFlags != FlagACK|FlagPSH || string(f[p.Payload:p.End]) != "USER anonymous\r\n" {
				t.Errorf("payload at %d flags %#x: %q", p.Payload, p.TCPFlags, f[p.Payload:p.End])
			}
		}},
		{"tcp with vlan", built(withVLAN(tcp, 77)), OK, func(t *testing.T, f []byte, p *Parsed) {
			if !p.HasVLAN || p.VLAN != 5<<13|77 || p.L3 != 18 || p.L4 != 38 {
				t.Errorf("vlan %v %#x L3 %d L4 %d", p.HasVLAN, p.VLAN, p.L3, p.L4)
			}
		}},
		{"vlan 0 priority tag", built(withVLAN(udp, 0)), OK, func(t *testing.T, f []byte, p *Parsed) {
			if !p.HasVLAN || p.VLAN != 5<<13 {
				t.Errorf("vlan %v %#x", p.HasVLAN, p.VLAN)
			}
		}},
		{"ip options", built(withOptions(udp, 10)), OK, func(t *testing.T, f []byte, p *Parsed) {
			if p.L4 != p.L3+60 || p.Tuple.DstPort != 53 {
				t.Errorf("L4 %d (L3 %d) dport %d", p.L4, p.L3, p.Tuple.DstPort)
			}
		}},
		{"udp length shorter than ip payload", frameOf(udp, false, setU16(20+udpLength, 9)), OK, nil},
		{"unknown protocol", built(rawSpec(47, []byte{1, 2, 3})), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, Proto: 47})(t, f, p)
			if p.L4 != p.Payload || p.Payload != p.End-3 {
				t.Errorf("L4 %d Payload %d End %d", p.L4, p.Payload, p.End)
			}
		}},
		{"udp-lite coverage 0", built(rawSpec(layers.IPProtocolUDPLite, []byte{0, 1, 0, 2, 0, 0, 0, 0, 9})), OK,
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 1, DstPort: 2, Proto: ProtoUDPLite})},
		{"udp-lite coverage 8", built(rawSpec(layers.IPProtocolUDPLite, []byte{0, 1, 0, 2, 0, 8, 0, 0, 9})), OK, nil},
		{"sctp", built(rawSpec(layers.IPProtocolSCTP, []byte{0x0b, 0x59, 0x00, 0x15, 1, 2, 3, 4, 5, 6, 7, 8})), OK,
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 2905, DstPort: 21, Proto: ProtoSCTP})},
		{"dccp", built(rawSpec(33, []byte{0, 1, 0, 2, 3, 0, 0, 0, 0, 0, 0, 0})), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 1, DstPort: 2, Proto: ProtoDCCP})(t, f, p)
			if p.Payload != p.L4+12 {
				t.Errorf("Payload %d, want L4+12", p.Payload)
			}
		}},

		{"fragment first", frameOf(withFrag(big, 0, true), false, setU16(20+udpLength, 3000)), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 4000, DstPort: 4001, Proto: ProtoUDP})(t, f, p)
			if p.Frag != (Frag{ID: 0x1234, More: true}) || !p.Frag.IsFragment() {
				t.Errorf("Frag %+v", p.Frag)
			}
		}},
		{"fragment middle", built(withFrag(big, 185, true)), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, Proto: ProtoUDP})(t, f, p)
			if p.Frag != (Frag{ID: 0x1234, Offset: 1480, More: true}) || p.L4 != p.L3+20 || p.Payload != p.L4 {
				t.Errorf("Frag %+v L4 %d Payload %d", p.Frag, p.L4, p.Payload)
			}
		}},
		{"fragment last", built(withFrag(big, 370, false)), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, Proto: ProtoUDP})(t, f, p)
			if p.Frag != (Frag{ID: 0x1234, Offset: 2960}) || !p.Frag.IsFragment() || p.Payload != p.L4 {
				t.Errorf("Frag %+v Payload %d", p.Frag, p.Payload)
			}
		}},
		{"fragment last of icmp", built(withFrag(echo, 1, false)), OK, func(t *testing.T, f []byte, p *Parsed) {
			if p.ICMPKind != ICMPNone || p.Tuple.SrcPort != 0 {
				t.Errorf("kind %v tuple %+v; a non-first fragment has no ICMP header", p.ICMPKind, p.Tuple)
			}
		}},

		{"icmp echo", built(echo), OK, func(t *testing.T, f []byte, p *Parsed) {
			wantTuple(Tuple{SrcAddr: src, DstAddr: dst, SrcPort: 0x4242, DstPort: 0x4242, Proto: ProtoICMP})(t, f, p)
			if p.ICMPKind != ICMPQuery || p.ICMPType != ICMPEcho || p.Payload != p.L4+8 {
				t.Errorf("kind %v type %d payload %d", p.ICMPKind, p.ICMPType, p.Payload)
			}
		}},
		{"icmp echo reply", built(icmpSpec(ICMPEchoReply, 0, 9, 1, nil)), OK, func(t *testing.T, f []byte, p *Parsed) {
			if p.ICMPKind != ICMPQueryReply || p.Tuple.SrcPort != 9 || p.Tuple.DstPort != 9 {
				t.Errorf("kind %v tuple %+v", p.ICMPKind, p.Tuple)
			}
		}},
		{"icmp timestamp", built(icmpSpec(ICMPTimestamp, 0, 3, 1, make([]byte, 12))), OK, func(t *testing.T, f []byte, p *Parsed) {
			if p.ICMPKind != ICMPQuery || p.Tuple.SrcPort != 3 {
				t.Errorf("kind %v tuple %+v", p.ICMPKind, p.Tuple)
			}
		}},
		{"icmp router advertisement", built(icmpSpec(ICMPRouterAdvertisement, 0, 0x0100, 0x0708, make([]byte, 8))), OK,
			func(t *testing.T, f []byte, p *Parsed) {
				if p.ICMPKind != ICMPNone || p.Tuple.SrcPort != 0 || p.ICMPType != ICMPRouterAdvertisement {
					t.Errorf("kind %v tuple %+v", p.ICMPKind, p.Tuple)
				}
			}},
		{"icmp error with embedded tcp", built(errTCP), OK, func(t *testing.T, f []byte, p *Parsed) {
			innerCheck(20, Tuple{SrcAddr: aInside, DstAddr: aOutside, SrcPort: 40000, DstPort: 9091, Proto: ProtoTCP})(t, f, p)
			if p.ICMPType != ICMPDestUnreachable || p.ICMPCode != ICMPCodePortUnreachable {
				t.Errorf("type %d code %d", p.ICMPType, p.ICMPCode)
			}
			if l4 := TCP(p.InnerL4(f)); l4.SrcPort() != 40000 || len(l4) != 8 {
				t.Errorf("InnerL4: sport %d len %d", l4.SrcPort(), len(l4))
			}
		}},
		{"icmp error with embedded udp", built(errUDP), OK,
			innerCheck(20, Tuple{SrcAddr: aInside, DstAddr: aOutside, SrcPort: 5353, DstPort: 53, Proto: ProtoUDP})},
		{"icmp error with embedded icmp echo", built(errEcho), OK, func(t *testing.T, f []byte, p *Parsed) {
			innerCheck(20, Tuple{SrcAddr: aInside, DstAddr: aOutside, SrcPort: 0x77, DstPort: 0x77, Proto: ProtoICMP})(t, f, p)
			if p.Inner.ICMPType != ICMPEcho {
				t.Errorf("Inner.ICMPType %d", p.Inner.ICMPType)
			}
		}},
		{"icmp error with embedded ip options", built(errOpts), OK,
			innerCheck(28, Tuple{SrcAddr: aInside, DstAddr: aOutside, SrcPort: 40000, DstPort: 9091, Proto: ProtoTCP})},
		{"icmp error with embedded gre", built(errGRE), OK,
			innerCheck(20, Tuple{SrcAddr: aInside, DstAddr: aOutside, Proto: 47})},
		{"icmp error with embedded tcp over vlan", built(withVLAN(errTCP, 9)), OK,
			innerCheck(20, Tuple{SrcAddr: aInside, DstAddr: aOutside, SrcPort: 40000, DstPort: 9091, Proto: ProtoTCP})},

		{"empty frame", fixed(nil), ErrTooShort, nil},
		{"truncated ethernet", fixed(make([]byte, 13)), ErrTooShort, nil},
		{"truncated vlan tag", fixed(append(make([]byte, 12), 0x81, 0x00, 0, 1, 0x08)), ErrTooShort, nil},
		{"truncated ipv4 header", func(tb testing.TB) []byte { return udp.frame(tb)[:14+19] }, ErrTooShort, nil},
		{"truncated ipv4 options", func(tb testing.TB) []byte { return withOptions(udp, 4).frame(tb)[:14+30] }, ErrTooShort, nil},
		{"truncated ipv4 header after vlan", func(tb testing.TB) []byte { return withVLAN(udp, 3).frame(tb)[:18+19] }, ErrTooShort, nil},

		{"arp", fixed(append(make([]byte, 12), 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)), ErrNotIPv4, nil},
		{"ipv6", fixed(append(make([]byte, 12), 0x86, 0xdd, 0x60, 0, 0, 0)), ErrNotIPv4, nil},
		{"qinq service tag", fixed(append(make([]byte, 12), 0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 8, 0)), ErrNotIPv4, nil},
		{"two 802.1q tags", fixed(append(make([]byte, 12), 0x81, 0x00, 0, 1, 0x81, 0, 0, 2, 8, 0)), ErrNotIPv4, nil},
		{"vlan carrying arp", fixed(append(make([]byte, 12), 0x81, 0x00, 0, 1, 0x08, 0x06, 0, 1)), ErrNotIPv4, nil},

		{"ip version 6", frameOf(udp, false, setByte(ipVerIHL, 0x65)), ErrBadIPVersion, nil},
		{"ip version 0", frameOf(udp, false, setByte(ipVerIHL, 0x05)), ErrBadIPVersion, nil},
		{"ihl 4", frameOf(udp, false, setByte(ipVerIHL, 0x44)), ErrBadIHL, nil},
		{"ihl 0", frameOf(udp, false, setByte(ipVerIHL, 0x40)), ErrBadIHL, nil},
		{"total length below ihl", frameOf(withOptions(udp, 1), false, setU16(ipTotalLen, 22)), ErrBadTotalLength, nil},
		{"total length zero", frameOf(udp, false, setU16(ipTotalLen, 0)), ErrBadTotalLength, nil},
		{"total length beyond frame", frameOf(udp, false, setU16(ipTotalLen, 60-14+1)), ErrBadTotalLength, nil},
		{"bad ip checksum", frameOf(udp, true, setByte(ipTTL, 63)), ErrBadIPChecksum, nil},
		{"bad ip checksum in options", frameOf(withOptions(udp, 3), true, setByte(IPv4MinLen+5, 7)), ErrBadIPChecksum, nil},
		{"record route", built(withOption(udp, OptRecordRoute, 4, 0, 0, 0, 0)), OK, nil},

		{"tcp truncated header", built(rawSpec(layers.IPProtocolTCP, make([]byte, 19))), ErrBadL4, nil},
		{"tcp data offset 4", frameOf(tcp, false, setByte(20+tcpDataOff, 4<<4)), ErrBadL4, nil},
		{"tcp data offset beyond packet", frameOf(tcpSpec(1, 2, nil), false, setByte(20+tcpDataOff, 9<<4)), ErrBadL4, nil},
		{"tcp first fragment too short", func(tb testing.TB) []byte {
			return built(withFrag(rawSpec(layers.IPProtocolTCP, make([]byte, 16)), 0, true))(tb)
		}, ErrBadL4, nil},
		{"udp truncated header", built(rawSpec(layers.IPProtocolUDP, make([]byte, 7))), ErrBadL4, nil},
		{"udp length 7", frameOf(udp, false, setU16(20+udpLength, 7)), ErrBadL4, nil},
		{"udp length beyond packet", frameOf(udp, false, setU16(20+udpLength, 14)), ErrBadL4, nil},
		{"udp-lite coverage 5", built(rawSpec(layers.IPProtocolUDPLite, []byte{0, 1, 0, 2, 0, 5, 0, 0, 9})), ErrBadL4, nil},
		{"udp-lite coverage beyond packet", built(rawSpec(layers.IPProtocolUDPLite, []byte{0, 1, 0, 2, 0, 10, 0, 0, 9})), ErrBadL4, nil},
		{"sctp truncated header", built(rawSpec(layers.IPProtocolSCTP, make([]byte, 11))), ErrBadL4, nil},
		{"dccp data offset 2", built(rawSpec(33, []byte{0, 1, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0})), ErrBadL4, nil},
		{"dccp data offset beyond packet", built(rawSpec(33, []byte{0, 1, 0, 2, 4, 0, 0, 0, 0, 0, 0, 0})), ErrBadL4, nil},
		{"icmp too short", built(rawSpec(layers.IPProtocolICMPv4, []byte{8, 0, 0, 0, 0, 1, 0})), ErrBadL4, nil},

		{"icmp error truncated embedded ip header", built(icmpError(3, 1, inner(tb, embeddedTCP())[:19])), ErrBadEmbedded, nil},
		{"icmp error with nothing embedded", built(icmpError(11, 0, nil)), ErrBadEmbedded, nil},
		{"icmp error embedded l4 shorter than 8 bytes", built(icmpError(3, 1, inner(tb, embeddedTCP())[:27])), ErrBadEmbedded, nil},
		{"icmp error embedded options truncated", built(icmpError(3, 1, inner(tb, withOptions(embeddedTCP(), 3))[:30])), ErrBadEmbedded, nil},
		{"icmp error embedded version 6", built(embedded(func(in []byte) { in[0] = 0x65 })), ErrBadEmbedded, nil},
		{"icmp error embedded ihl 3", built(embedded(func(in []byte) { in[0] = 0x43 })), ErrBadEmbedded, nil},
		{"icmp error embedded non-first fragment", built(embedded(func(in []byte) { in[ipFlagsFrag+1] = 1 })), ErrBadEmbedded, nil},
		{"icmp error about an icmp error", built(errAboutErr), ErrBadEmbedded, nil},
	}
}

// TestParse has a named case for every Result and for each layer a frame
// can be cut or damaged at.
func TestParse(t *testing.T) {
	seen := map[Result]bool{}
	for _, tc := range parseCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.frame(t)
			var p Parsed
			got := Parse(f, &p)
			seen[got] = true
			if got != tc.want {
				t.Fatalf("Parse = %v, want %v\n% x", got, tc.want, f)
			}
			if got == OK {
				checkOffsets(t, f, &p)
			}
			if tc.check != nil {
				tc.check(t, f, &p)
			}
		})
	}
	for r := range NumResults {
		if !seen[r] {
			t.Errorf("no case produces %v", r)
		}
	}
}

// checkOffsets asserts the invariants of an OK Parsed.
func checkOffsets(t testing.TB, f []byte, p *Parsed) {
	t.Helper()
	if !(0 < p.L3 && p.L3+IPv4MinLen <= p.L4 && p.L4 <= p.Payload && p.Payload <= p.End && p.End <= len(f)) {
		t.Fatalf("offsets out of order: L3 %d L4 %d Payload %d End %d len %d", p.L3, p.L4, p.Payload, p.End, len(f))
	}
	if p.ICMPKind == ICMPError && !(p.L4+ICMPLen == p.Inner.L3 && p.Inner.L3+IPv4MinLen <= p.Inner.L4 && p.Inner.L4 <= p.End) {
		t.Fatalf("inner offsets out of order: L4 %d Inner.L3 %d Inner.L4 %d End %d", p.L4, p.Inner.L3, p.Inner.L4, p.End)
	}
}

// TestParseResetsParsed checks that nothing of an earlier frame survives in
// a reused Parsed.
func TestParseResetsParsed(t *testing.T) {
	var p Parsed
	Parse(icmpError(3, 3, inner(t, embeddedTCP())).frame(t), &p)
	if Parse(make([]byte, 10), &p) != ErrTooShort || p != (Parsed{}) {
		t.Fatalf("Parsed after a failed parse: %+v", p)
	}
}

func TestResultString(t *testing.T) {
	seen := map[string]bool{}
	for r := range NumResults {
		s := r.String()
		if s == "" || seen[s] {
			t.Errorf("Result %d has name %q (empty or duplicate)", r, s)
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c == '_' || c >= '0' && c <= '9') {
				t.Errorf("Result %d name %q is not snake_case", r, s)
			}
		}
		seen[s] = true
	}
	if OK.String() != "ok" || ErrBadL4.String() != "bad_l4" || NumResults.String() != "result_9" {
		t.Errorf("names: %q %q %q", OK, ErrBadL4, NumResults)
	}
	if ICMPQueryReply.String() != "query_reply" || ICMPKind(9).String() != "icmp_kind_9" {
		t.Errorf("kind names: %q %q", ICMPQueryReply, ICMPKind(9))
	}
}

func TestParseAllocs(t *testing.T) {
	var frames [][]byte
	for _, tc := range parseCases(t) {
		frames = append(frames, tc.frame(t))
	}
	var p Parsed
	if n := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			Parse(f, &p)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per run, want 0", n)
	}
}

// TestParseFastPathMatchesGeneral holds Parse's fast path to the general
// decoder: over every test case, random frames and each of them with
// single bytes of its headers changed (checksums fixed or not), both give
// the same result and the same Parsed.
func TestParseFastPathMatchesGeneral(t *testing.T) {
	var frames [][]byte
	for _, tc := range parseCases(t) {
		frames = append(frames, tc.frame(t))
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		frames = append(frames, randomSpec(r).frame(t))
	}
	n := 0
	for _, f := range frames {
		checkSameParse(t, f)
		for range 40 {
			g := bytes.Clone(f)
			if len(g) == 0 {
				break
			}
			off := r.IntN(min(len(g), EthernetLen+IPv4MinLen+TCPMinLen+4))
			g[off] = byte(r.IntN(256))
			if r.IntN(2) == 0 && len(g) >= EthernetLen+IPv4MinLen {
				fixIPChecksum(g, EthernetLen)
			}
			checkSameParse(t, g)
			n++
		}
		checkSameParse(t, f[:r.IntN(len(f)+1)])
	}
	t.Logf("%d frames and %d mutations", len(frames), n)
}

func checkSameParse(t *testing.T, f []byte) {
	t.Helper()
	var a, b Parsed
	a.Inner.L3, b.TCPFlags = 99, 7 // leftovers both must clear
	ra, rb := Parse(f, &a), parse(f, &b)
	if ra != rb || a != b {
		t.Fatalf("frame % x:\nParse %v %+v\nparse %v %+v", f, ra, a, rb, b)
	}
}
