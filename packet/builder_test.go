package packet

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// spec describes a frame for gopacket to build. The tests build frames with
// gopacket (never with this package's setters) so that every byte fastnat
// reads or writes is checked against an independent encoder and decoder.
type spec struct {
	SrcMAC, DstMAC [6]byte
	VLAN           *layers.Dot1Q // nil: untagged
	EtherType      layers.EthernetType
	IP             layers.IPv4
	TCP            *layers.TCP
	UDP            *layers.UDP
	ICMP           *layers.ICMPv4
	Payload        []byte
	// NoUDPChecksum zeroes the UDP checksum ("none computed", RFC 768).
	NoUDPChecksum bool
}

// ip4 converts a host-order address to a net.IP for gopacket.
func ip4(a uint32) net.IP {
	return net.IPv4(byte(a>>24), byte(a>>16), byte(a>>8), byte(a)).To4()
}

// addr converts a net.IP from gopacket to a host-order address.
func addr(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }

// defaultIP returns an IPv4 template with addresses in 198.18.0.0/15.
func defaultIP(proto layers.IPProtocol) layers.IPv4 {
	return layers.IPv4{
		Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: proto,
		SrcIP: ip4(0xc6120001), DstIP: ip4(0xc6130002),
	}
}

func udpSpec(sport, dport uint16, payload []byte) spec {
	return spec{
		SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		IP:      defaultIP(layers.IPProtocolUDP),
		UDP:     &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)},
		Payload: payload,
	}
}

func tcpSpec(sport, dport uint16, payload []byte) spec {
	return spec{
		SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		IP: defaultIP(layers.IPProtocolTCP),
		TCP: &layers.TCP{
			SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport),
			Seq: 1000, Ack: 2000, ACK: true, PSH: true, Window: 65535,
			Options: []layers.TCPOption{
				{OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindNop},
				{OptionType: layers.TCPOptionKindTimestamps, OptionData: []byte{0, 0, 0, 1, 0, 0, 0, 2}},
			},
		},
		Payload: payload,
	}
}

func icmpSpec(typ, code uint8, id, seq uint16, payload []byte) spec {
	return spec{
		SrcMAC: [6]byte{2, 0, 0, 0, 0, 1}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
		IP:      defaultIP(layers.IPProtocolICMPv4),
		ICMP:    &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: id, Seq: seq},
		Payload: payload,
	}
}

// layers returns fresh copies of the spec's layers (gopacket's SerializeTo
// writes lengths and checksums into the layer it serializes).
func (s spec) layers(tb testing.TB, withEthernet bool) []gopacket.SerializableLayer {
	tb.Helper()
	var ls []gopacket.SerializableLayer
	if withEthernet {
		et := s.EtherType
		if et == 0 {
			et = layers.EthernetTypeIPv4
		}
		eth := &layers.Ethernet{SrcMAC: s.SrcMAC[:], DstMAC: s.DstMAC[:], EthernetType: et}
		if s.VLAN != nil {
			v := *s.VLAN
			v.Type = et
			eth.EthernetType = layers.EthernetTypeDot1Q
			ls = append(ls, eth, &v)
		} else {
			ls = append(ls, eth)
		}
	}
	ip := s.IP
	ls = append(ls, &ip)
	switch {
	case s.TCP != nil:
		t := *s.TCP
		if err := t.SetNetworkLayerForChecksum(&ip); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, &t)
	case s.UDP != nil:
		u := *s.UDP
		if err := u.SetNetworkLayerForChecksum(&ip); err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, &u)
	case s.ICMP != nil:
		i := *s.ICMP
		ls = append(ls, &i)
	}
	return append(ls, gopacket.Payload(s.Payload))
}

// frame serializes the spec with lengths and checksums computed by gopacket.
func (s spec) frame(tb testing.TB) []byte {
	tb.Helper()
	f := serialize(tb, s.layers(tb, true)...)
	if s.UDP != nil {
		l3 := EthernetLen
		if s.VLAN != nil {
			l3 += VLANLen
		}
		c := f[l3+int(f[l3]&0xf)*4+6:]
		switch {
		case s.NoUDPChecksum:
			c[0], c[1] = 0, 0
		case c[0] == 0 && c[1] == 0:
			// gopacket does not apply RFC 768's rule that a computed 0
			// is sent as all ones.
			c[0], c[1] = 0xff, 0xff
		}
	}
	return f
}

// packet serializes the spec without Ethernet: an IPv4 packet, for embedding
// in ICMP errors.
func (s spec) packet(tb testing.TB) []byte {
	tb.Helper()
	return serialize(tb, s.layers(tb, false)...)
}

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("gopacket serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// decoded is gopacket's reading of a frame.
type decoded struct {
	Eth  *layers.Ethernet
	VLAN *layers.Dot1Q
	IP   *layers.IPv4
	TCP  *layers.TCP
	UDP  *layers.UDP
	ICMP *layers.ICMPv4
}

// decode decodes frame with gopacket and fails the test on a decoding error.
func decode(tb testing.TB, frame []byte) decoded {
	tb.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		tb.Fatalf("gopacket decode: %v", el.Error())
	}
	var d decoded
	if l := pkt.Layer(layers.LayerTypeEthernet); l != nil {
		d.Eth = l.(*layers.Ethernet)
	}
	if l := pkt.Layer(layers.LayerTypeDot1Q); l != nil {
		d.VLAN = l.(*layers.Dot1Q)
	}
	if l := pkt.Layer(layers.LayerTypeIPv4); l != nil {
		d.IP = l.(*layers.IPv4)
	}
	if l := pkt.Layer(layers.LayerTypeTCP); l != nil {
		d.TCP = l.(*layers.TCP)
	}
	if l := pkt.Layer(layers.LayerTypeUDP); l != nil {
		d.UDP = l.(*layers.UDP)
	}
	if l := pkt.Layer(layers.LayerTypeICMPv4); l != nil {
		d.ICMP = l.(*layers.ICMPv4)
	}
	return d
}

// mustParse parses frame and fails the test unless Parse says OK.
func mustParse(tb testing.TB, frame []byte) Parsed {
	tb.Helper()
	var p Parsed
	if r := Parse(frame, &p); r != OK {
		tb.Fatalf("Parse = %v, want ok", r)
	}
	return p
}

// randomOptions returns IPv4 options totalling 4*n bytes: options of the
// given types (record route, 0x07, when none is given) with random data,
// padded with NOPs.
func randomIPOptions(r *rand.Rand, words int, types ...uint8) []layers.IPv4Option {
	if words == 0 {
		return nil
	}
	if len(types) == 0 {
		types = []uint8{0x07}
	}
	n := words * 4
	var opts []layers.IPv4Option
	for n > 0 {
		if n < 3 || r.IntN(3) == 0 {
			opts = append(opts, layers.IPv4Option{OptionType: 1, OptionLength: 1})
			n--
			continue
		}
		l := 3 + r.IntN(n-2)
		data := make([]byte, l-2)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		typ := types[0]
		if len(types) > 1 {
			typ = types[r.IntN(len(types))]
		}
		opts = append(opts, layers.IPv4Option{OptionType: typ, OptionLength: uint8(l), OptionData: data})
		n -= l
	}
	return opts
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randomIP returns an IPv4 template with every field random.
func randomIP(r *rand.Rand, proto layers.IPProtocol) layers.IPv4 {
	return layers.IPv4{
		Version: 4, TOS: uint8(r.Uint32()), Id: uint16(r.Uint32()),
		Flags:    layers.IPv4Flag(r.IntN(2) << 1), // DF or nothing; fragments are tested by Parse
		TTL:      uint8(1 + r.IntN(255)),
		Protocol: proto,
		SrcIP:    ip4(r.Uint32()), DstIP: ip4(r.Uint32()),
		Options: randomIPOptions(r, r.IntN(11)),
	}
}

func randomTCP(r *rand.Rand) *layers.TCP {
	t := &layers.TCP{
		SrcPort: layers.TCPPort(r.Uint32()), DstPort: layers.TCPPort(r.Uint32()),
		Seq: r.Uint32(), Ack: r.Uint32(), Window: uint16(r.Uint32()), Urgent: uint16(r.Uint32()),
		FIN: r.IntN(2) == 0, SYN: r.IntN(2) == 0, RST: r.IntN(2) == 0, PSH: r.IntN(2) == 0,
		ACK: r.IntN(2) == 0, URG: r.IntN(2) == 0, ECE: r.IntN(2) == 0, CWR: r.IntN(2) == 0,
	}
	for range r.IntN(4) {
		switch r.IntN(3) {
		case 0:
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindNop})
		case 1:
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: randomBytes(r, 2)})
		case 2:
			t.Options = append(t.Options, layers.TCPOption{OptionType: layers.TCPOptionKindSACK, OptionData: randomBytes(r, 8)})
		}
	}
	return t
}

func randomMAC(r *rand.Rand) [6]byte {
	var m [6]byte
	copy(m[:], randomBytes(r, 6))
	return m
}

// randomSpec returns a random TCP, UDP or ICMP echo frame, tagged or not.
func randomSpec(r *rand.Rand) spec {
	s := spec{SrcMAC: randomMAC(r), DstMAC: randomMAC(r), Payload: randomBytes(r, r.IntN(80))}
	if r.IntN(2) == 0 {
		s.VLAN = &layers.Dot1Q{Priority: uint8(r.IntN(8)), DropEligible: r.IntN(2) == 0, VLANIdentifier: uint16(r.IntN(4095))}
	}
	switch r.IntN(3) {
	case 0:
		s.IP = randomIP(r, layers.IPProtocolTCP)
		s.TCP = randomTCP(r)
	case 1:
		s.IP = randomIP(r, layers.IPProtocolUDP)
		s.UDP = &layers.UDP{SrcPort: layers.UDPPort(r.Uint32()), DstPort: layers.UDPPort(r.Uint32())}
	case 2:
		s.IP = randomIP(r, layers.IPProtocolICMPv4)
		typ := []uint8{ICMPEcho, ICMPEchoReply}[r.IntN(2)]
		s.ICMP = &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: uint16(r.Uint32()), Seq: uint16(r.Uint32())}
	}
	return s
}
