// Package testutil builds the frames fastnat's tests send and checks the
// frames fastnat writes, with gopacket as the independent encoder and
// decoder: fastnat's own packet code is never used to judge itself.
package testutil

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// MACs used by test frames.
var (
	MACA = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	MACB = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0b}
)

// TCP flag sets for TCP.
const (
	SYN = 1 << iota
	ACK
	FIN
	RST
	PSH
	URG
)

// AddrPort parses "a.b.c.d:port".
func AddrPort(tb testing.TB, s string) netip.AddrPort {
	tb.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		tb.Fatalf("bad endpoint %q: %v", s, err)
	}
	return ap
}

// Addr parses "a.b.c.d" to a host-order uint32.
func Addr(tb testing.TB, s string) uint32 {
	tb.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		tb.Fatalf("bad address %q: %v", s, err)
	}
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func ip4(src, dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment,
		Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
}

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func eth() *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: MACA, DstMAC: MACB, EthernetType: layers.EthernetTypeIPv4}
}

// UDP returns an Ethernet frame carrying a UDP datagram from src to dst.
func UDP(tb testing.TB, src, dst string, payload []byte) []byte {
	tb.Helper()
	s, d := AddrPort(tb, src), AddrPort(tb, dst)
	ip := ip4(s.Addr(), d.Addr(), layers.IPProtocolUDP)
	u := &layers.UDP{SrcPort: layers.UDPPort(s.Port()), DstPort: layers.UDPPort(d.Port())}
	if err := u.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, eth(), ip, u, gopacket.Payload(payload))
}

// TCP returns an Ethernet frame carrying a TCP segment from src to dst
// with the given flags (SYN|ACK|...), sequence numbers and payload. Extra
// options (such as SACK blocks) may be given.
func TCP(tb testing.TB, src, dst string, flags int, seq, ack uint32, payload []byte, opts ...layers.TCPOption) []byte {
	tb.Helper()
	s, d := AddrPort(tb, src), AddrPort(tb, dst)
	ip := ip4(s.Addr(), d.Addr(), layers.IPProtocolTCP)
	t := &layers.TCP{SrcPort: layers.TCPPort(s.Port()), DstPort: layers.TCPPort(d.Port()),
		Seq: seq, Ack: ack, Window: 65535,
		SYN: flags&SYN != 0, ACK: flags&ACK != 0, FIN: flags&FIN != 0, RST: flags&RST != 0, PSH: flags&PSH != 0, URG: flags&URG != 0,
		Options: opts}
	if err := t.SetNetworkLayerForChecksum(ip); err != nil {
		tb.Fatal(err)
	}
	return serialize(tb, eth(), ip, t, gopacket.Payload(payload))
}

// ICMPEcho returns an echo request (or reply) frame from src to dst.
func ICMPEcho(tb testing.TB, src, dst string, id, seq uint16, reply bool) []byte {
	tb.Helper()
	typ := uint8(layers.ICMPv4TypeEchoRequest)
	if reply {
		typ = layers.ICMPv4TypeEchoReply
	}
	return ICMPMessage(tb, src, dst, typ, id, seq)
}

// ICMPMessage returns an ICMP message frame of type typ from src to dst
// whose second word holds id and seq (a query's identifier and sequence
// number; other types' field there, such as a router solicitation's
// reserved word).
func ICMPMessage(tb testing.TB, src, dst string, typ uint8, id, seq uint16) []byte {
	tb.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, 0), Id: id, Seq: seq}
	return serialize(tb, eth(), ip4(s, d, layers.IPProtocolICMPv4), ic, gopacket.Payload([]byte("fastnat-ping")))
}

// ICMPError returns an ICMP error frame from src to dst quoting quoted (an
// Ethernet frame whose IPv4 packet is embedded: the header and up to n
// bytes after it, or all of it when n < 0).
func ICMPError(tb testing.TB, src, dst string, typ, code uint8, quoted []byte, n int) []byte {
	tb.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	inner := quoted[14:]
	ihl := int(inner[0]&0x0f) * 4
	if n >= 0 && ihl+n < len(inner) {
		inner = inner[:ihl+n]
	}
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)}
	return serialize(tb, eth(), ip4(s, d, layers.IPProtocolICMPv4), ic, gopacket.Payload(inner))
}

// Fragment splits the IPv4 packet of an Ethernet frame into fragments
// whose payloads are at most size bytes (a multiple of 8), returning
// frames with correct header checksums.
func Fragment(tb testing.TB, frame []byte, size int) [][]byte {
	tb.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		tb.Fatal("Fragment: no IPv4 layer")
	}
	data := ip.Payload
	var out [][]byte
	for off := 0; off < len(data); off += size {
		end := off + size
		more := true
		if end >= len(data) {
			end, more = len(data), false
		}
		f := *ip
		f.Options, f.Padding = nil, nil
		f.IHL = 5
		f.Flags = 0
		if more {
			f.Flags = layers.IPv4MoreFragments
		}
		f.FragOffset = uint16(off / 8)
		out = append(out, serialize(tb, eth(), &f, gopacket.Payload(data[off:end])))
	}
	return out
}

// Decoded is a frame as gopacket reads it.
type Decoded struct {
	Eth  *layers.Ethernet
	IP   *layers.IPv4
	TCP  *layers.TCP
	UDP  *layers.UDP
	ICMP *layers.ICMPv4
	Raw  []byte
}

// Src is the decoded source "addr:port" (or "addr" for ICMP).
func (d *Decoded) Src() string {
	switch {
	case d.TCP != nil:
		return netip.AddrPortFrom(addrOf(d.IP.SrcIP), uint16(d.TCP.SrcPort)).String()
	case d.UDP != nil:
		return netip.AddrPortFrom(addrOf(d.IP.SrcIP), uint16(d.UDP.SrcPort)).String()
	}
	return addrOf(d.IP.SrcIP).String()
}

// Dst is the decoded destination "addr:port" (or "addr" for ICMP).
func (d *Decoded) Dst() string {
	switch {
	case d.TCP != nil:
		return netip.AddrPortFrom(addrOf(d.IP.DstIP), uint16(d.TCP.DstPort)).String()
	case d.UDP != nil:
		return netip.AddrPortFrom(addrOf(d.IP.DstIP), uint16(d.UDP.DstPort)).String()
	}
	return addrOf(d.IP.DstIP).String()
}

func addrOf(b net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(b.To4())
	return a
}

// Decode decodes frame with gopacket and fails the test unless it is a
// well-formed IPv4 frame whose header checksum and (for a complete,
// unfragmented packet) transport checksum are right, as recomputed by
// gopacket from scratch.
func Decode(tb testing.TB, frame []byte) *Decoded {
	tb.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.DecodeOptions{NoCopy: false})
	// gopacket guesses a UDP or TCP payload's protocol by port (Geneve on
	// 6081, VXLAN, DNS, ...) and reports a payload that is not one as an
	// error layer: that judges the test's random payload, not the headers
	// fastnat writes, which decoded whole when a transport layer did.
	if el := p.ErrorLayer(); el != nil && p.TransportLayer() == nil {
		tb.Fatalf("decode: %v", el.Error())
	}
	d := &Decoded{Raw: frame}
	d.Eth, _ = p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	d.IP, _ = p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if d.IP == nil {
		tb.Fatalf("decode: no IPv4 layer")
	}
	d.TCP, _ = p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	d.UDP, _ = p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	d.ICMP, _ = p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	CheckChecksums(tb, frame)
	return d
}

// CheckChecksums recomputes the IPv4 header checksum and, for an
// unfragmented packet, the TCP/UDP/ICMP checksum with gopacket and fails
// the test if the frame's differ.
func CheckChecksums(tb testing.TB, frame []byte) {
	tb.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !ok {
		tb.Fatal("no IPv4 layer")
	}
	ihl := int(ip.IHL) * 4
	hdr := frame[14 : 14+ihl]
	if got, want := uint16(hdr[10])<<8|uint16(hdr[11]), ipChecksum(hdr); got != want {
		tb.Errorf("IPv4 header checksum %#04x, recomputed %#04x", got, want)
	}
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		return
	}
	switch ip.Protocol {
	case layers.IPProtocolTCP, layers.IPProtocolUDP, layers.IPProtocolICMPv4:
	default:
		return // no transport checksum (GRE, ESP, ...); a tunnelled packet's layers are not this header's
	}
	var re []gopacket.SerializableLayer
	var field int // offset of the transport checksum in the transport header
	ipc := *ip
	switch l := p.TransportLayer().(type) {
	case *layers.TCP:
		c := *l
		_ = c.SetNetworkLayerForChecksum(&ipc)
		re, field = []gopacket.SerializableLayer{&c, gopacket.Payload(c.Payload)}, 16
	case *layers.UDP:
		if l.Checksum == 0 {
			return // no checksum: allowed for UDP over IPv4
		}
		c := *l
		_ = c.SetNetworkLayerForChecksum(&ipc)
		re, field = []gopacket.SerializableLayer{&c, gopacket.Payload(c.Payload)}, 6
	default:
		if ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			c := *ic
			re, field = []gopacket.SerializableLayer{&c, gopacket.Payload(c.Payload)}, 2
		}
	}
	if re == nil {
		return
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, re...); err != nil {
		tb.Fatalf("reserialize: %v", err)
	}
	l4 := frame[14+ihl : 14+int(ip.Length)]
	want := buf.Bytes()
	if len(want) != len(l4) {
		tb.Fatalf("transport length %d, reserialized %d", len(l4), len(want))
	}
	exp := want[field : field+2]
	if _, udp := p.TransportLayer().(*layers.UDP); udp && exp[0] == 0 && exp[1] == 0 {
		exp = []byte{0xff, 0xff} // a zero sum is sent as all ones (RFC 768); gopacket leaves it zero
	}
	if got := l4[field : field+2]; !bytes.Equal(got, exp) {
		tb.Errorf("transport checksum %x, recomputed by gopacket %x", got, exp)
	}
}

// ipChecksum is the plain RFC 1071 sum over an IPv4 header with its
// checksum field taken as zero.
func ipChecksum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		if i == 10 {
			continue
		}
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// WithIPID returns a copy of frame whose IPv4 identification is id, with
// the header checksum fixed.
func WithIPID(tb testing.TB, frame []byte, id uint16) []byte {
	tb.Helper()
	f := append([]byte(nil), frame...)
	f[14+4], f[14+5] = byte(id>>8), byte(id)
	ihl := int(f[14]&0x0f) * 4
	c := ipChecksum(f[14 : 14+ihl])
	f[14+10], f[14+11] = byte(c>>8), byte(c)
	return f
}

// WithTTL returns a copy of frame whose IPv4 TTL is ttl, with the header
// checksum fixed.
func WithTTL(tb testing.TB, frame []byte, ttl uint8) []byte {
	tb.Helper()
	f := append([]byte(nil), frame...)
	f[14+8] = ttl
	ihl := int(f[14]&0x0f) * 4
	f[14+10], f[14+11] = 0, 0
	c := ipChecksum(f[14 : 14+ihl])
	f[14+10], f[14+11] = byte(c>>8), byte(c)
	return f
}

// WithIPOptions returns a copy of frame, an Ethernet frame whose IPv4
// header has no options, with opts after the header (padded with End,
// 0, to a multiple of 4 bytes), as they are: malformed ones too. The
// header's length fields and checksum are fixed; a TCP or UDP checksum
// stays right (options are not in the pseudo-header).
func WithIPOptions(tb testing.TB, frame, opts []byte) []byte {
	tb.Helper()
	if frame[14] != 0x45 {
		tb.Fatal("WithIPOptions: the header has options already")
	}
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	f := append(append(append([]byte(nil), frame[:34]...), opts...), frame[34:]...)
	ip := f[14:]
	ip[0] = 0x45 + byte(len(opts)/4)
	tl := int(ip[2])<<8 | int(ip[3]) + len(opts)
	ip[2], ip[3] = byte(tl>>8), byte(tl)
	ip[10], ip[11] = 0, 0
	c := ipChecksum(ip[:20+len(opts)])
	ip[10], ip[11] = byte(c>>8), byte(c)
	return f
}

// GRE returns a frame carrying a GRE packet (RFC 2784, no options) from
// src to dst whose payload is an ICMP echo request between tunnel
// addresses 10.99.0.1 and 10.99.0.2, as `ip tunnel ... mode gre` sends.
func GRE(tb testing.TB, src, dst string) []byte {
	tb.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	inner := ip4(netip.MustParseAddr("10.99.0.1"), netip.MustParseAddr("10.99.0.2"), layers.IPProtocolICMPv4)
	ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: 1}
	return serialize(tb, eth(), ip4(s, d, layers.IPProtocolGRE), &layers.GRE{Protocol: layers.EthernetTypeIPv4}, inner, ic,
		gopacket.Payload([]byte("fastnat-gre")))
}

// IPProto returns a frame carrying payload as an IPv4 packet of protocol
// proto from src to dst.
func IPProto(tb testing.TB, src, dst string, proto uint8, payload []byte) []byte {
	tb.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	return serialize(tb, eth(), ip4(s, d, layers.IPProtocol(proto)), gopacket.Payload(payload))
}
