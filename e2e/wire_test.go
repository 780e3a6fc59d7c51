package e2e

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
)

// startCaptures captures on NodeLink in each namespace of nss until the
// test ends.
func startCaptures(t *testing.T, nss ...string) []*testnet.Capture {
	t.Helper()
	var caps []*testnet.Capture
	for _, ns := range nss {
		c, err := testnet.StartCapture(ns, testnet.NodeLink)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		caps = append(caps, c)
	}
	return caps
}

// checkRouterOutput captures every frame the router sends to the client
// and to the server, and when the returned function is called verifies
// each IPv4 one with gopacket as the independent decoder: the IPv4 header
// checksum and the TCP, UDP or ICMP checksum over the (possibly
// translated, possibly ALG-rewritten) packet. It fails the test on the
// first wrong one and returns how many frames it checked.
func checkRouterOutput(t *testing.T, topo *testnet.Topology) func() int {
	t.Helper()
	caps := startCaptures(t, topo.Client, topo.Server)
	return func() int {
		t.Helper()
		n := 0
		for _, c := range caps {
			_ = c.Close()
			for _, f := range c.Frames() {
				if f.Outgoing {
					continue // sent by the client or server, not the router
				}
				ok, err := verifyFrame(f.Data)
				if err != nil {
					t.Fatalf("router sent a bad frame: %v\n% x", err, f.Data)
				}
				if ok {
					n++
				}
			}
		}
		return n
	}
}

// verifyFrame checks an Ethernet frame's IPv4 and L4 checksums; ok is
// false for frames that are not IPv4.
func verifyFrame(b []byte) (ok bool, err error) {
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.NoCopy)
	ip, isIP := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if !isIP {
		return false, nil
	}
	if e := p.ErrorLayer(); e != nil {
		return true, fmt.Errorf("decode: %v", e.Error())
	}
	if sum := onesSum(ip.Contents); sum != 0xffff {
		return true, fmt.Errorf("IPv4 header checksum %#04x wrong", ip.Checksum)
	}
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		return true, nil // L4 checksum spans fragments
	}
	var l4 gopacket.SerializableLayer
	var got uint16
	switch x := p.TransportLayer().(type) {
	case *layers.TCP:
		if err := x.SetNetworkLayerForChecksum(ip); err != nil {
			return true, err
		}
		l4, got = x, x.Checksum
	case *layers.UDP:
		if x.Checksum == 0 {
			return true, nil // "no checksum" (RFC 768)
		}
		if err := x.SetNetworkLayerForChecksum(ip); err != nil {
			return true, err
		}
		l4, got = x, x.Checksum
	default:
		if ic, isICMP := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); isICMP {
			msg := append(append([]byte(nil), ic.Contents...), ic.Payload...)
			if onesSum(msg) != 0xffff {
				return true, fmt.Errorf("ICMP checksum %#04x wrong", ic.Checksum)
			}
		}
		return true, nil
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true},
		l4, gopacket.Payload(p.TransportLayer().LayerPayload())); err != nil {
		return true, err
	}
	var want uint16
	switch x := l4.(type) {
	case *layers.TCP:
		want = x.Checksum
	case *layers.UDP:
		want = x.Checksum
		if want == 0 {
			// A sum that comes out as zero is sent as all ones (RFC 768);
			// gopacket leaves it zero.
			want = 0xffff
		}
	}
	if got != want {
		return true, fmt.Errorf("%v checksum %#04x, gopacket computes %#04x", p.TransportLayer().LayerType(), got, want)
	}
	return true, nil
}

// onesSum is the 16-bit one's complement sum of b; 0xffff over data that
// includes a correct Internet checksum.
func onesSum(b []byte) uint16 {
	var s uint32
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// verifyFrame must catch what it is there to catch.
func TestVerifyFrame(t *testing.T) {
	dst, src := []byte{2, 0, 0, 0, 0, 2}, []byte{2, 0, 0, 0, 0, 1}
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		m       testnet.Malformation
		wantErr bool
	}{
		{testnet.BadIPChecksum, true},
		{testnet.BadTCPChecksum, true},
		{testnet.TinyFragment, false}, // valid header, L4 not checkable
	}
	for _, c := range cases {
		t.Run(c.m.String(), func(t *testing.T) {
			ok, err := verifyFrame(testnet.MalformedFrame(c.m, dst, src, rng))
			if !ok || (err != nil) != c.wantErr {
				t.Fatalf("ok=%v err=%v, want error %v", ok, err, c.wantErr)
			}
		})
	}
	// A BadTCPChecksum frame with its checksum restored passes.
	f := testnet.MalformedFrame(testnet.BadTCPChecksum, dst, src, rng)
	for x := range 256 {
		f[14+20+16] ^= byte(x)
		if _, err := verifyFrame(f); err == nil {
			return
		}
		f[14+20+16] ^= byte(x)
	}
	t.Fatal("no checksum byte value passes: verifyFrame rejects valid frames")
}
