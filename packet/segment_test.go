package packet

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TestWriteSegment builds random segments and has gopacket decode them:
// every field where it was asked, both checksums right by gopacket's own
// computation, and Timestamps reading back what was written.
func TestWriteSegment(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		s := Segment{
			Tuple: Tuple{SrcAddr: rng.Uint32(), DstAddr: rng.Uint32(), SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32())},
			Seq:   rng.Uint32(), Ack: rng.Uint32(), Flags: uint8(rng.Uint32()) &^ (FlagECE | FlagCWR | FlagURG),
			Window: uint16(rng.Uint32()), HasTS: i%2 == 0, TSVal: rng.Uint32(), TSEcr: rng.Uint32(),
			Payload: bytes.Repeat([]byte{'x'}, rng.IntN(80)),
		}
		b := make([]byte, 200)
		n := WriteSegment(b, &s)
		if n != SegmentLen(&s) {
			t.Fatalf("wrote %d, SegmentLen %d", n, SegmentLen(&s))
		}
		pkt := gopacket.NewPacket(b[:n], layers.LayerTypeIPv4, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			t.Fatalf("gopacket: %v", pkt.ErrorLayer())
		}
		if addr(ip.SrcIP) != s.Tuple.SrcAddr || addr(ip.DstIP) != s.Tuple.DstAddr || ip.TTL != 64 || ip.Flags != layers.IPv4DontFragment || int(ip.Length) != n {
			t.Fatalf("IPv4 %+v", ip)
		}
		if uint16(tcp.SrcPort) != s.Tuple.SrcPort || uint16(tcp.DstPort) != s.Tuple.DstPort || tcp.Seq != s.Seq || tcp.Ack != s.Ack ||
			tcp.Window != s.Window || !bytes.Equal(tcp.Payload, s.Payload) {
			t.Fatalf("TCP %+v", tcp)
		}
		if got := IPv4(b[:n]); !got.IsChecksumValid() {
			t.Fatal("IPv4 checksum")
		}
		// The TCP checksum, by gopacket's serializer over the same fields.
		want := gopacket.NewSerializeBuffer()
		tcp2 := *tcp
		tcp2.SetNetworkLayerForChecksum(ip)
		if err := gopacket.SerializeLayers(want, gopacket.SerializeOptions{ComputeChecksums: true}, &tcp2, gopacket.Payload(tcp.Payload)); err != nil {
			t.Fatal(err)
		}
		if got := binary.BigEndian.Uint16(want.Bytes()[16:]); got != tcp.Checksum {
			t.Fatalf("TCP checksum %#04x, gopacket computes %#04x", tcp.Checksum, got)
		}
		val, ecr, ok := TCP(b[IPv4MinLen:n]).Timestamps()
		if ok != s.HasTS || (ok && (val != s.TSVal || ecr != s.TSEcr)) {
			t.Fatalf("timestamps %d %d %v, wrote %+v", val, ecr, ok, s)
		}
	}
}

func TestTimestampsMalformed(t *testing.T) {
	for _, opts := range [][]byte{
		{8, 10, 0, 0},             // cut short
		{8, 1, 0, 0},              // length below 2
		{1, 1, 8, 9, 0, 0, 0, 0},  // wrong length
		{0, 8, 10, 0, 0, 0, 0, 0}, // end of options first
		{2, 4, 5, 180},            // MSS only
	} {
		seg := make([]byte, TCPMinLen+(len(opts)+3)/4*4)
		seg[tcpDataOff] = uint8(len(seg)/4) << 4
		copy(seg[TCPMinLen:], opts)
		if _, _, ok := TCP(seg).Timestamps(); ok {
			t.Errorf("options % x: timestamps found", opts)
		}
	}
}
