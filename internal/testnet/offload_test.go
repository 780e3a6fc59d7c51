package testnet

import (
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// The reason New turns tx checksum offload off, shown on the wire: with
// it on, the TCP segments the router's veth receives from the client
// carry only a partial checksum (what an XDP program would be handed) and
// TSO hands over segments larger than the MTU; with it off, every
// segment's checksum is complete and every frame fits the MTU. gopacket recomputes
// the checksums independently.
func TestTxChecksumOffload(t *testing.T) {
	needRoot(t)
	cases := []struct {
		name        string
		keep        bool
		wantInvalid bool
	}{
		{"off (harness default)", false, false},
		{"kept on", true, true},
	}
	const maxFrame = 1514 // Ethernet header + 1500-byte MTU
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topo := MustNew(t, Options{Forwarding: true, KeepOffload: c.keep})
			valid, invalid, longest := tcpChecksumsSeenByRouter(t, topo)
			t.Logf("%d valid, %d invalid TCP checksums from the client; longest frame %d bytes", valid, invalid, longest)
			if valid+invalid == 0 {
				t.Fatal("captured no TCP segments")
			}
			if got := invalid > 0; got != c.wantInvalid {
				t.Errorf("invalid checksums seen: %v, want %v", got, c.wantInvalid)
			}
			if got := longest > maxFrame; got != c.keep {
				t.Errorf("frames over %d bytes: %v, want %v", maxFrame, got, c.keep)
			}
		})
	}
}

// tcpChecksumsSeenByRouter sends data over TCP from the client to the
// server and counts the segments arriving on the router's outside veth
// by whether their TCP checksum verifies, and returns the longest frame.
func tcpChecksumsSeenByRouter(t *testing.T, topo *Topology) (valid, invalid, longest int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	capt, err := StartCapture(topo.Router, RouterOutsideLink)
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(ServerAddr, 5001)
	l, err := ListenTCP(topo.Server, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan int64, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- -1
			return
		}
		n, _ := io.Copy(io.Discard, c)
		c.Close()
		got <- n
	}()
	c, err := DialTCP(ctx, topo.Client, addr)
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 10
	if _, err := c.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := <-got; n != size {
		t.Fatalf("server got %d bytes, want %d", n, size)
	}
	capt.Close()
	for _, f := range capt.Frames() {
		if f.Outgoing {
			continue
		}
		p := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
		ip, ok1 := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, ok2 := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok1 || !ok2 || ip.SrcIP.String() != ClientAddr.String() {
			continue
		}
		longest = max(longest, len(f.Data))
		want := tcp.Checksum
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, tcp, gopacket.Payload(tcp.Payload)); err != nil {
			t.Fatal(err)
		}
		if tcp.Checksum == want {
			valid++
		} else {
			invalid++
		}
	}
	return valid, invalid, longest
}
