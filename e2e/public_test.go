package e2e

import (
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// The NAT's public address as the outside sees it, with the tools an
// operator points at it, through fastnat and through the kernel's NAT
// (whose public address belongs to its own stack): a ping too large for
// one frame is answered in full, traceroute in its default UDP mode ends
// at the public address (port unreachable from it), and a UDP client
// or TCP client reaching a port nothing holds, outside or inside, is
// refused at once (port unreachable, a reset); traceroute -T ends there too;
// ping -R shows the router's interfaces through the NAT and the public
// address in its own reply.

func TestFastnatPublicAddress(t *testing.T) {
	requireFastnat(t)
	requireRouterTools(t)
	publicAddress(t, fastnatRouter)
}

// TestKernelPublicAddress is the proof that publicAddress expects what a
// Linux NAT does.
func TestKernelPublicAddress(t *testing.T) {
	requireHarness(t)
	requireRouterTools(t)
	publicAddress(t, kernelRouter)
}

func publicAddress(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, false, nil)
	public := testnet.PublicAddr.String()

	for _, from := range []struct{ name, ns string }{{"outside", topo.Client}, {"inside", topo.Server}} {
		t.Run("ping in fragments from "+from.name, func(t *testing.T) {
			// 3000 bytes of data: three fragments each way.
			out := run(t, ctx, true, from.ns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-s", "3000", public)
			if !strings.Contains(out, "3 received") || !strings.Contains(out, "3008 bytes from "+public) {
				t.Fatal("the public address did not answer every fragmented ping in full")
			}
		})
	}
	t.Run("record route", func(t *testing.T) {
		// Through the NAT, the router records the interface each way
		// leaves by; the public address records itself in its reply.
		out := run(t, ctx, false, topo.Server, "ping", "-n", "-c", "1", "-W", "2", "-R", testnet.ClientAddr.String())
		for _, a := range []netip.Addr{testnet.RouterOutsideAddr, testnet.RouterInsideAddr} {
			if !strings.Contains(out, "\t"+a.String()+"\n") {
				t.Errorf("the route recorded through the NAT lacks %v", a)
			}
		}
		out = run(t, ctx, false, topo.Client, "ping", "-n", "-c", "1", "-W", "2", "-R", public)
		if !strings.Contains(out, "\t"+public+"\n") {
			t.Error("the public address did not record itself in its echo reply")
		}
	})
	for _, from := range []struct{ name, ns string }{{"outside", topo.Client}, {"inside", topo.Server}} {
		t.Run("traceroute udp from "+from.name, func(t *testing.T) {
			// From inside too the public address is one hop away: the
			// NAT's own, not forwarded, so no time exceeded first.
			out := run(t, ctx, false, from.ns, "traceroute", "-n", "-q", "1", "-w", "2", "-m", "3", public)
			if h := hops(out); len(h) != 1 || h[0] != public {
				t.Fatalf("hops %v, want [%s]: the public address answers port unreachable", h, public)
			}
		})
	}
	t.Run("traceroute tcp", func(t *testing.T) {
		out := run(t, ctx, false, topo.Client, "traceroute", "-n", "-q", "1", "-w", "2", "-m", "3", "-T", "-p", "4444", public)
		if h := hops(out); len(h) != 1 || h[0] != public {
			t.Fatalf("hops %v, want [%s]: the public address answers a reset", h, public)
		}
	})
	for _, from := range []struct{ name, ns string }{{"outside", topo.Client}, {"inside", topo.Server}} {
		t.Run("udp to a closed port from "+from.name, func(t *testing.T) {
			c, err := testnet.DialUDP(from.ns, netip.AddrPort{}, netip.AddrPortFrom(testnet.PublicAddr, 4444))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 64)
			refused := 0
			for range 3 {
				if _, err := c.Write([]byte("anyone?")); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
					t.Fatal(err)
				}
				_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := c.Read(buf); errors.Is(err, syscall.ECONNREFUSED) {
					refused++
				}
			}
			if refused == 0 {
				t.Fatal("no datagram to a closed port of the public address was refused (ICMP port unreachable)")
			}
		})
		t.Run("tcp to a closed port from "+from.name, func(t *testing.T) {
			c, err := dialFrom(ctx, from.ns, netip.AddrPort{}, netip.AddrPortFrom(testnet.PublicAddr, 4444))
			if err == nil {
				c.Close()
				t.Fatal("connected to a closed port")
			}
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("connect: %v, want connection refused (a reset)", err)
			}
		})
	}
}
