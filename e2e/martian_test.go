package e2e

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
)

// martianMark is the payload of every frame TestFastnatMartians forges,
// so that the captures can tell them from anything else.
var martianMark = []byte("fastnat-martian")

// TestFastnatMartians: what the kernel's routing never forwards, fastnat
// neither translates nor forwards, and makes no session for. From outside,
// datagrams to a published UDP service with a source of loopback, 0/8,
// multicast, the limited broadcast or the NAT's own public address; from
// the inside host, datagrams to multicast (mDNS, SSDP) or the limited
// broadcast sent to the router's MAC — each dropped and counted as
// nat_martian. Link-layer broadcasts and multicasts from the inside host
// (a NetBIOS broadcast to 10.77.0.255, DHCP, mDNS to 01:00:5e:00:00:fb)
// and datagrams to loopback are left to the kernel by the XDP program and
// never reach fastnat. Nothing
// reaches the server or the outside, and the published service still
// answers an ordinary client.
func TestFastnatMartians(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	published := netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort)
	fastnatRouter.setup(t, topo, false, []testnet.Forward{{
		Proto: "udp", Public: published, Inside: netip.AddrPortFrom(testnet.ServerAddr, 7),
	}})
	sock := fastnatSocket(t, topo)
	testnet.MustUDPEcho(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 7))
	mac := func(ns, link string) net.HardwareAddr {
		t.Helper()
		m, err := testnet.LinkMAC(ns, link)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	routerOut, routerIn := mac(topo.Router, testnet.RouterOutsideLink), mac(topo.Router, testnet.RouterInsideLink)
	clientMAC, hostMAC := mac(topo.Client, testnet.NodeLink), mac(topo.Host, testnet.NodeLink)
	caps := startCaptures(t, topo.Client, topo.Server)

	var fromOutside, fromInside, linkGroup [][]byte
	for _, src := range []string{"127.0.0.1", "0.0.0.7", "224.0.0.1", "255.255.255.255", testnet.PublicAddr.String()} {
		fromOutside = append(fromOutside, forgedUDP(t, routerOut, clientMAC, src, 5000, testnet.PublicAddr.String(), udpEchoPort))
	}
	for _, dst := range []string{"224.0.0.251", "239.255.255.250", "255.255.255.255"} {
		fromInside = append(fromInside, forgedUDP(t, routerIn, hostMAC, testnet.HostAddr.String(), 5353, dst, 5353))
	}
	linkGroup = append(linkGroup,
		forgedUDP(t, layers.EthernetBroadcast, hostMAC, testnet.HostAddr.String(), 137, "10.77.0.255", 137),
		forgedUDP(t, layers.EthernetBroadcast, hostMAC, testnet.HostAddr.String(), 68, "255.255.255.255", 67),
		forgedUDP(t, net.HardwareAddr{1, 0, 0x5e, 0, 0, 0xfb}, hostMAC, testnet.HostAddr.String(), 5353, "224.0.0.251", 5353),
		// An address of the box's own, loopback's included.
		forgedUDP(t, routerIn, hostMAC, testnet.HostAddr.String(), 5353, "127.0.0.1", 53))
	send := func(ns string, frames [][]byte) {
		t.Helper()
		if n, err := testnet.SendFrames(ns, testnet.NodeLink, frames); err != nil || n != len(frames) {
			t.Fatalf("sent %d of %d frames: %v", n, len(frames), err)
		}
	}
	send(topo.Client, fromOutside)
	send(topo.Host, fromInside)
	send(topo.Host, linkGroup)
	want := uint64(len(fromOutside) + len(fromInside))
	waitDrop(t, sock, "nat_martian", want)

	// The published service answers an ordinary client, and then nothing
	// forged has arrived anywhere through the router.
	if got, err := testnet.UDPExchange(ctx, topo.Client, published, payloads(2), 2*time.Second); err != nil || got != 2 {
		t.Fatalf("published service: %d of 2 echoes, %v", got, err)
	}
	time.Sleep(200 * time.Millisecond)
	for i, c := range caps {
		_ = c.Close()
		for _, f := range c.Frames() {
			if !f.Outgoing && bytes.Contains(f.Data, martianMark) && !bytes.Equal(f.Data[6:12], hostMAC) {
				t.Errorf("a forged frame came through the router to %s: % x", []string{"the client", "the server"}[i], f.Data)
			}
		}
	}
	if drops, _ := fastnatStats(t, sock); drops["nat_martian"] != want {
		t.Errorf("nat_martian = %d, want %d (the link-layer broadcasts must not reach fastnat)", drops["nat_martian"], want)
	}
	out := fastnatShow(t, sock, "sessions")
	if !strings.Contains(out, "Total sessions found: 1\n") || strings.Contains(out, "224.") || strings.Contains(out, "10.77.0.255") {
		t.Errorf("want only the ordinary client's session:\n%s", out)
	}
}

// forgedUDP builds an Ethernet frame with a UDP datagram from src:sport to
// dst:dport carrying martianMark.
func forgedUDP(t *testing.T, dstMAC, srcMAC net.HardwareAddr, src string, sport uint16, dst string, dport uint16) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}, ip, udp,
		gopacket.Payload(martianMark)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
