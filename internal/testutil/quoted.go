package testutil

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/ip4defrag"
	"github.com/google/gopacket/layers"
)

// Quoted is the packet an ICMP error quotes, read independently of
// fastnat's parser.
type Quoted struct {
	Src, Dst         string // "addr:port" for TCP/UDP, "addr" otherwise
	Proto            uint8
	HeaderChecksumOK bool
	UDPChecksumOK    bool // for a quoted UDP datagram quoted whole (or with checksum 0)
}

// DecodeQuoted reads the IPv4 header and transport ports of an ICMP error's
// quoted packet.
func DecodeQuoted(tb testing.TB, b []byte) Quoted {
	tb.Helper()
	if len(b) < 20 {
		tb.Fatalf("quoted packet of %d bytes", len(b))
	}
	ihl := int(b[0]&0x0f) * 4
	if len(b) < ihl+4 {
		tb.Fatalf("quoted packet of %d bytes, IHL %d", len(b), ihl)
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	q := Quoted{Proto: b[9], HeaderChecksumOK: ipChecksum(b[:ihl]) == binary.BigEndian.Uint16(b[10:])}
	switch q.Proto {
	case 6, 17:
		q.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[ihl:])).String()
		q.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[ihl+2:])).String()
	default:
		q.Src, q.Dst = src.String(), dst.String()
	}
	if q.Proto == 17 {
		total := int(binary.BigEndian.Uint16(b[2:]))
		if total <= len(b) {
			p := gopacket.NewPacket(b[:total], layers.LayerTypeIPv4, gopacket.Default)
			if u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
				if u.Checksum == 0 {
					q.UDPChecksumOK = true
				} else {
					ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
					c := *u
					_ = c.SetNetworkLayerForChecksum(ip)
					buf := gopacket.NewSerializeBuffer()
					if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, &c, gopacket.Payload(u.Payload)); err == nil {
						sum := binary.BigEndian.Uint16(buf.Bytes()[6:])
						if sum == 0 {
							sum = 0xffff // a zero sum is sent as all ones (RFC 768)
						}
						q.UDPChecksumOK = sum == u.Checksum
					}
				}
			}
		}
	}
	return q
}

// CheckReassembled reassembles IPv4 fragments (Ethernet frames) with
// gopacket's defragmenter and checks the whole datagram's checksums.
func CheckReassembled(tb testing.TB, frames [][]byte) {
	tb.Helper()
	d := ip4defrag.NewIPv4Defragmenter()
	var whole *layers.IPv4
	for _, f := range frames {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		ip, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			tb.Fatal("fragment without IPv4 layer")
		}
		out, err := d.DefragIPv4(ip)
		if err != nil {
			tb.Fatalf("defrag: %v", err)
		}
		if out != nil {
			whole = out
		}
	}
	if whole == nil {
		tb.Fatal("fragments did not reassemble")
	}
	whole.Flags, whole.FragOffset = 0, 0
	frame := serialize(tb, eth(), whole, gopacket.Payload(whole.Payload))
	CheckChecksums(tb, frame)
}
