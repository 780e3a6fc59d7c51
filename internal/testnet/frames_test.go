package testnet

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	testDstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xfe}
	testSrcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
)

// gopacket is the independent decoder: for each malformation it must
// either refuse the frame or decode it and show exactly the defect.
func TestMalformedFramesDecode(t *testing.T) {
	ipOf := func(p gopacket.Packet) (*layers.IPv4, error) {
		l, ok := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok {
			return nil, fmt.Errorf("gopacket found no IPv4 layer (%v)", p.ErrorLayer())
		}
		return l, nil
	}
	decodeErr := func(p gopacket.Packet, _ []byte) error {
		if p.ErrorLayer() == nil {
			return fmt.Errorf("gopacket decoded it without error: %v", p)
		}
		return nil
	}
	ipChecksumOK := func(ip *layers.IPv4) bool {
		return inetChecksum(ip.Contents) == 0
	}
	cases := []struct {
		m     Malformation
		check func(p gopacket.Packet, f []byte) error
	}{
		{Runt, func(p gopacket.Packet, f []byte) error {
			if len(f) < 14 || len(f) >= 60 {
				return fmt.Errorf("%d bytes is not a runt", len(f))
			}
			return decodeErr(p, f)
		}},
		{NoIPHeader, decodeErr},
		{ShortIHL, decodeErr},
		{LongIHL, decodeErr},
		{BadVersion, func(_ gopacket.Packet, f []byte) error {
			if v := f[14] >> 4; v != 6 {
				return fmt.Errorf("version %d", v)
			}
			return nil
		}},
		{TotalLenBeyondFrame, func(_ gopacket.Packet, f []byte) error {
			if tl := int(binary.BigEndian.Uint16(f[16:])); tl <= len(f)-14 {
				return fmt.Errorf("total length %d fits in %d bytes", tl, len(f)-14)
			}
			return nil
		}},
		{TotalLenBelowHeader, decodeErr},
		{BadIPChecksum, func(p gopacket.Packet, _ []byte) error {
			ip, err := ipOf(p)
			if err != nil {
				return err
			}
			if ipChecksumOK(ip) {
				return fmt.Errorf("header checksum is right")
			}
			if p.Layer(layers.LayerTypeTCP) == nil {
				return fmt.Errorf("no TCP layer behind the bad header checksum")
			}
			return nil
		}},
		{TruncatedTCP, decodeErr},
		{TCPOffsetShort, decodeErr},
		{TCPOffsetLong, decodeErr},
		{BadTCPChecksum, func(p gopacket.Packet, _ []byte) error {
			ip, err := ipOf(p)
			if err != nil {
				return err
			}
			tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
			if !ok {
				return fmt.Errorf("no TCP layer")
			}
			if !ipChecksumOK(ip) {
				return fmt.Errorf("IP checksum wrong too")
			}
			if !tcp.SYN || tcp.DstPort != FTPPublicPort {
				return fmt.Errorf("not a SYN to %d: %v", FTPPublicPort, tcp)
			}
			want := tcp.Checksum
			if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
				return err
			}
			buf := gopacket.NewSerializeBuffer()
			if err := tcp.SerializeTo(buf, gopacket.SerializeOptions{ComputeChecksums: true}); err != nil {
				return err
			}
			if tcp.Checksum == want {
				return fmt.Errorf("TCP checksum %#04x is right", want)
			}
			return nil
		}},
		{UDPLengthLong, func(p gopacket.Packet, _ []byte) error {
			u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if !ok {
				return decodeErr(p, nil)
			}
			if int(u.Length) <= len(u.Contents)+len(u.Payload) {
				return fmt.Errorf("udp length %d fits", u.Length)
			}
			return nil
		}},
		{UDPLengthShort, func(p gopacket.Packet, _ []byte) error {
			u, ok := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			if !ok {
				return decodeErr(p, nil)
			}
			if u.Length >= 8 {
				return fmt.Errorf("udp length %d", u.Length)
			}
			return nil
		}},
		{ICMPErrorTruncated, func(p gopacket.Packet, _ []byte) error {
			ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
			if !ok {
				return fmt.Errorf("no ICMP layer")
			}
			if ic.TypeCode.Type() != layers.ICMPv4TypeDestinationUnreachable {
				return fmt.Errorf("type %v", ic.TypeCode)
			}
			if len(ic.Payload) >= 20 {
				return fmt.Errorf("quotes %d bytes: a whole IP header", len(ic.Payload))
			}
			return nil
		}},
		{FragmentOverflow, func(p gopacket.Packet, _ []byte) error {
			ip, err := ipOf(p)
			if err != nil {
				return err
			}
			if end := int(ip.FragOffset)*8 + int(ip.Length) - 20; end <= 65535 {
				return fmt.Errorf("fragment ends at %d", end)
			}
			return nil
		}},
		{TinyFragment, func(p gopacket.Packet, _ []byte) error {
			ip, err := ipOf(p)
			if err != nil {
				return err
			}
			if ip.Flags&layers.IPv4MoreFragments == 0 || ip.FragOffset != 0 || len(ip.Payload) >= 20 {
				return fmt.Errorf("flags %v offset %d payload %d", ip.Flags, ip.FragOffset, len(ip.Payload))
			}
			return nil
		}},
		{VLANEmpty, decodeErr},
		{Garbage, func(_ gopacket.Packet, f []byte) error {
			if binary.BigEndian.Uint16(f[12:]) != etherTypeIPv4 {
				return fmt.Errorf("ethertype")
			}
			return nil
		}},
	}
	if len(cases) != len(Malformations) {
		t.Fatalf("%d cases for %d malformations", len(cases), len(Malformations))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range cases {
		t.Run(c.m.String(), func(t *testing.T) {
			for range 50 {
				f := MalformedFrame(c.m, testDstMAC, testSrcMAC, rng)
				if len(f) > 1514 {
					t.Fatalf("%d-byte frame", len(f))
				}
				if len(f) >= 6 && net.HardwareAddr(f[:6]).String() != testDstMAC.String() {
					t.Fatalf("destination %v", net.HardwareAddr(f[:6]))
				}
				p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				if err := c.check(p, f); err != nil {
					t.Fatalf("%v\n% x", err, f)
				}
			}
		})
	}
}

// The base frame the malformations start from is valid: gopacket decodes
// it and both checksums verify.
func TestValidBaseFrame(t *testing.T) {
	ip := ipv4(protoTCP, tcp(40000, FTPPublicPort, 1, 0x02, []byte("x")))
	f := ethernet(testDstMAC, testSrcMAC, etherTypeIPv4, ip)
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	if p.ErrorLayer() != nil {
		t.Fatal(p.ErrorLayer().Error())
	}
	ipl := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcpl := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if ipl.SrcIP.String() != ClientAddr.String() || ipl.DstIP.String() != PublicAddr.String() {
		t.Errorf("addresses %v -> %v", ipl.SrcIP, ipl.DstIP)
	}
	got := tcpl.Checksum
	if err := tcpl.SetNetworkLayerForChecksum(ipl); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcpl, gopacket.Payload(tcpl.Payload)); err != nil {
		t.Fatal(err)
	}
	if tcpl.Checksum != got {
		t.Errorf("tcp checksum %#04x, gopacket computes %#04x", got, tcpl.Checksum)
	}
	if inetChecksum(ipl.Contents) != 0 {
		t.Error("ip header checksum wrong")
	}
}

func TestMalformedFramesDeterministic(t *testing.T) {
	a := MalformedFrames(testDstMAC, testSrcMAC, 100, 7)
	b := MalformedFrames(testDstMAC, testSrcMAC, 100, 7)
	for i := range a {
		if string(a[i]) != string(b[i]) {
			t.Fatalf("frame %d differs between runs with one seed", i)
		}
	}
}
