package packet_test

import (
	"encoding/binary"
	"fmt"

	"github.com/fastnat/fastnat/packet"
)

// udpFrame builds a minimal Ethernet/IPv4/UDP frame with correct checksums.
func udpFrame(src, dst uint32, sport, dport uint16, payload string) []byte {
	f := make([]byte, 14+20+8+len(payload))
	binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv4)
	ip := packet.IPv4(f[14:])
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8], ip[9] = 64, packet.ProtoUDP
	ip.SetSrcAddrRaw(src)
	ip.SetDstAddrRaw(dst)
	ip.SetChecksum(ip.CalculateChecksum())
	u := packet.UDP(f[34:])
	u.SetSrcPortRaw(sport)
	u.SetDstPortRaw(dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	u.SetChecksum(packet.UDPChecksum(ip, u))
	return f
}

// Source NAT the way fastnat's fast path does it: the session precomputes
// the checksum deltas once, and each packet gets raw stores plus two
// additions.
func Example_snat() {
	const inside, public = 0x0a4d0005, 0xc61200cc // 10.77.0.5, 198.18.0.204
	frame := udpFrame(inside, 0xc6130002, 40000, 53, "query")

	var p packet.Parsed
	if r := packet.Parse(frame, &p); r != packet.OK {
		fmt.Println("drop:", r)
		return
	}
	fmt.Printf("%08x:%d > %08x:%d proto %d\n", p.Tuple.SrcAddr, p.Tuple.SrcPort, p.Tuple.DstAddr, p.Tuple.DstPort, p.Tuple.Proto)

	// Once per session direction.
	ipDelta := packet.Delta(0).Add32(inside, public)
	l4Delta := ipDelta.Add16(40000, 1024) // the pseudo-header covers the address too

	// Per packet.
	ip, udp := p.IPv4(frame), p.UDP(frame)
	ip.SetSrcAddrRaw(public)
	ip.SetChecksum(packet.ApplyDelta(ip.Checksum(), ipDelta))
	udp.SetSrcPortRaw(1024)
	udp.SetChecksum(packet.ApplyDeltaUDP(udp.Checksum(), l4Delta))

	fmt.Println("ip checksum valid:", ip.IsChecksumValid())
	fmt.Println("udp checksum valid:", udp.Checksum() == packet.UDPChecksum(ip, udp))
	fmt.Println(packet.Parse(frame, &p), p.Tuple.SrcAddr == public, p.Tuple.SrcPort)
	// Output:
	// 0a4d0005:40000 > c6130002:53 proto 17
	// ip checksum valid: true
	// udp checksum valid: true
	// ok true 1024
}
