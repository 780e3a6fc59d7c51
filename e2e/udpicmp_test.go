package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// udpEchoPort is the public UDP port published to the server's echo.
const udpEchoPort = 7007

func payloads(n int) [][]byte {
	p := make([][]byte, n)
	for i := range p {
		p[i] = fmt.Appendf(nil, "fastnat udp %d", i)
	}
	return p
}

// udpThroughNAT: UDP both ways through the NAT. Inbound through a static
// mapping, the server sees the client's own address; outbound, the client
// sees the public address.
func udpThroughNAT(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, true, []testnet.Forward{{
		Proto:  "udp",
		Public: netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort),
		Inside: netip.AddrPortFrom(testnet.ServerAddr, 7),
	}})
	cases := []struct {
		name     string
		echoNS   string
		echo     netip.AddrPort
		senderNS string
		dst      netip.AddrPort
		wantPeer netip.Addr
	}{
		{"nat server", topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 7),
			topo.Client, netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort), testnet.ClientAddr},
		{"nat outbound", topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 7),
			topo.Server, netip.AddrPortFrom(testnet.ClientAddr, 7), testnet.PublicAddr},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			echo := testnet.MustUDPEcho(t, c.echoNS, c.echo)
			check := checkRouterOutput(t, topo)
			const n = 20
			got, err := testnet.UDPExchange(ctx, c.senderNS, c.dst, payloads(n), 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got != n {
				t.Errorf("%d of %d echoes came back", got, n)
			}
			if got := check(); got < 2*n {
				t.Errorf("checked %d frames from the router, want at least %d", got, 2*n)
			}
			peers := echo.Peers()
			if len(peers) != 1 {
				t.Fatalf("echo saw %d source addresses, want one flow: %v", len(peers), peers)
			}
			for p := range peers {
				if p.Addr() != c.wantPeer {
					t.Errorf("echo saw source %v, want %v", p, c.wantPeer)
				}
			}
		})
	}
}

// icmpThroughNAT: an inside host pings outside through nat outbound (the
// outside sees the public address and the replies find their way back),
// and the public address answers pings.
func icmpThroughNAT(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, true, nil)

	t.Run("nat outbound", func(t *testing.T) {
		srcs := watchEchoRequests(t, topo.Client)
		check := checkRouterOutput(t, topo)
		res, err := testnet.Ping(ctx, topo.Server, testnet.ClientAddr, 5, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got := check(); got < 2*res.Sent {
			t.Errorf("checked %d frames from the router, want at least %d", got, 2*res.Sent)
		}
		if res.Received != res.Sent {
			t.Errorf("%d of %d replies", res.Received, res.Sent)
		}
		for i := range res.Sent {
			select {
			case s := <-srcs:
				if s != testnet.PublicAddr {
					t.Errorf("client saw an echo request from %v, want %v", s, testnet.PublicAddr)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("client saw %d echo requests, %d sent", i, res.Sent)
			}
		}
	})
	t.Run("public address answers", func(t *testing.T) {
		res, err := testnet.Ping(ctx, topo.Client, testnet.PublicAddr, 3, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != res.Sent {
			t.Errorf("%d of %d replies", res.Received, res.Sent)
		}
	})
}

// watchEchoRequests reports the source of every ICMP echo request that
// reaches namespace ns, read through a raw socket, until the test ends.
func watchEchoRequests(t *testing.T, ns string) <-chan netip.Addr {
	c, err := testnet.ListenPacket(ns, "ip4:icmp", "0.0.0.0")
	if err != nil {
		t.Fatal(err)
	}
	srcs := make(chan netip.Addr, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if n >= 8 && buf[0] == 8 { // echo request
				a, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
				select {
				case srcs <- a.Unmap():
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return srcs
}

// malformedBurst: a burst of malformed frames at the router's outside
// link, then FTP, UDP and ping still work.
func malformedBurst(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, true, nil)
	f := startFTP(t, topo, topo.Server, insideFTP)

	routerMAC, err := testnet.LinkMAC(topo.Router, testnet.RouterOutsideLink)
	if err != nil {
		t.Fatal(err)
	}
	clientMAC, err := testnet.LinkMAC(topo.Client, testnet.NodeLink)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	frames := testnet.MalformedFrames(routerMAC, clientMAC, n, 1)
	sent, err := testnet.SendFrames(topo.Client, testnet.NodeLink, frames)
	if err != nil {
		t.Fatal(err)
	}
	if sent != n {
		t.Fatalf("sent %d of %d frames", sent, n)
	}
	if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS: topo.Client, Tool: testnet.Curl, Mode: testnet.PASV,
		URL: f.server.URL(publicFTP, f.name), Dst: filepath.Join(t.TempDir(), f.name),
	}, f.sha256); err != nil {
		t.Fatal(err)
	}
	res, err := testnet.Ping(ctx, topo.Server, testnet.ClientAddr, 3, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != res.Sent {
		t.Errorf("after the burst: %d of %d ping replies", res.Received, res.Sent)
	}
}
