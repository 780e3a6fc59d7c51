package nat

import (
	"encoding/binary"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// fuzzRecord encodes one frame of FuzzEngine's input: a byte of side (bit
// 0) and clock advance (bits 1-2), the frame's length, the frame.
func fuzzRecord(from Side, advance int, frame []byte) []byte {
	b := []byte{byte(from) | byte(advance)<<1, 0, 0}
	binary.LittleEndian.PutUint16(b[1:], uint16(len(frame)))
	return append(b, frame...)
}

// FuzzEngine feeds a sequence of frames to one engine, arriving on either
// side as the clock advances and sessions age. Before a frame goes in,
// its IPv4 and transport checksums are made right (where its headers can
// be found), so that the engine is judged on what it writes: it must
// never panic, and every frame it forwards must decode with gopacket and
// carry IPv4, TCP, UDP and ICMP checksums that verify when summed anew.
func FuzzEngine(f *testing.F) {
	var seed []byte
	add := func(from Side, frame []byte) { seed = append(seed, fuzzRecord(from, 1, frame)...) }
	out := udp(f, hostA+":4000", remote+":7000")
	add(Inside, out)
	add(Outside, udp(f, remote+":7000", pubEIM+":4000"))
	add(Inside, syn(f, hostA+":40000", remote+":80"))
	add(Outside, synAck(f, remote+":80", pubEIM+":40000"))
	add(Outside, testutil.TCP(f, remote+":80", pubEIM+":40000", testutil.RST, 5001, 0, nil))
	add(Inside, echo(f, hostA, remote, 7777, false))
	add(Outside, echo(f, remote, pubEIM, 7777, true))
	add(Outside, echo(f, remote, pubEIM, 9, false))
	add(Outside, syn(f, remote+":41000", pubEIM+":9091"))
	add(Inside, udp(f, hostB+":5000", pubEIM+":4000"))
	add(Outside, testutil.ICMPError(f, remote, pubEIM, 3, 3, udp(f, pubEIM+":4000", remote+":7000"), -1))
	for _, fr := range testutil.Fragment(f, testutil.UDP(f, hostA+":4000", remote+":7000", make([]byte, 300)), 128) {
		add(Inside, fr)
	}
	f.Add(seed)
	f.Add(fuzzRecord(Inside, 0, out))
	f.Fuzz(func(t *testing.T, data []byte) {
		g := newRig(t, testRules(t))
		for len(data) >= 3 {
			from, advance := Side(data[0]&1), data[0]>>1&3
			n := min(int(binary.LittleEndian.Uint16(data[1:])), len(data)-3)
			frame := append([]byte(nil), data[3:3+n]...)
			data = data[3+n:]
			if ip := ipOf(frame); ip != nil {
				recompute(ip)
			}
			var p packet.Parsed
			if packet.Parse(frame, &p) != packet.OK {
				continue
			}
			var r Result
			g.e.Process(frame, &p, from, g.now, &r)
			if r.Verdict == Forward {
				verifyFrame(t, frame)
			}
			g.now += flowtable.Time(advance)
			g.e.Age(g.now, 64)
		}
	})
}

// ipOf returns the IPv4 packet of an Ethernet frame (one 802.1Q tag
// allowed), up to its total length, or nil if the headers do not fit.
func ipOf(frame []byte) []byte {
	l3 := 14
	if len(frame) >= 18 && binary.BigEndian.Uint16(frame[12:]) == 0x8100 {
		l3 = 18
	}
	if len(frame) < l3+20 || binary.BigEndian.Uint16(frame[l3-2:]) != 0x0800 {
		return nil
	}
	ip := frame[l3:]
	ihl, total := int(ip[0]&0xf)*4, int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < 20 || total < ihl || total > len(ip) {
		return nil
	}
	return ip[:total]
}

// verifyFrame fails the test unless gopacket decodes frame's link,
// network and transport layers and every checksum sums to all ones.
func verifyFrame(t *testing.T, frame []byte) {
	t.Helper()
	p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		switch el.LayerType() {
		case layers.LayerTypeEthernet, layers.LayerTypeDot1Q, layers.LayerTypeIPv4,
			layers.LayerTypeTCP, layers.LayerTypeUDP, layers.LayerTypeICMPv4:
			t.Fatalf("gopacket cannot decode the forwarded frame: %v\n% x", el.Error(), frame)
		}
	}
	if p.Layer(layers.LayerTypeIPv4) == nil {
		t.Fatalf("forwarded frame has no IPv4 layer\n% x", frame)
	}
	ip := ipOf(frame)
	ihl := int(ip[0]&0xf) * 4
	if fold(sum1071(0, ip[:ihl])) != 0xffff {
		t.Fatalf("IPv4 header checksum does not verify\n% x", frame)
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		return
	}
	l4 := ip[ihl:]
	pseudo := sum1071(0, ip[12:20]) + uint32(ip[9]) + uint32(len(l4))
	var ok bool
	switch ip[9] {
	case packet.ProtoTCP:
		ok = len(l4) < 20 || fold(sum1071(pseudo, l4)) == 0xffff
	case packet.ProtoUDP:
		ok = len(l4) < 8 || binary.BigEndian.Uint16(l4[6:]) == 0 || fold(sum1071(pseudo, l4)) == 0xffff
	case packet.ProtoICMP:
		ok = len(l4) < 4 || fold(sum1071(0, l4)) == 0xffff
	default:
		ok = true
	}
	if !ok {
		t.Fatalf("protocol %d checksum does not verify\n% x", ip[9], frame)
	}
}
