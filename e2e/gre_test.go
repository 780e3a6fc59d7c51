package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatGRE: GRE (and ESP) between a host inside and a host
// outside, each end a raw IP socket of the protocol: fastnat translates
// the outer source address only (an address-only session), the outside
// host sees the public address, its answers return through the session,
// and every payload arrives as sent.
//
// A tunnel device (`ip tunnel add ... mode gre`) would be the natural
// end, but the kernel these tests run on may lack GRE (this machine's
// has CONFIG_NET_IPGRE unset): the raw socket sends and receives the
// same packets on any kernel.
func TestFastnatGRE(t *testing.T) {
	requireFastnat(t)
	greThroughNAT(t, fastnatRouter)
}

// TestKernelGRE is the same through the kernel's NAT (conntrack's GRE
// and generic trackers).
func TestKernelGRE(t *testing.T) {
	requireHarness(t)
	greThroughNAT(t, kernelRouter)
}

func greThroughNAT(t *testing.T, r router) {
	topo := r.newTopology(t, false)
	r.setup(t, topo, false, nil)
	for _, proto := range []int{47, 50} { // GRE, ESP
		t.Run(fmt.Sprint("proto ", proto), func(t *testing.T) {
			network := fmt.Sprint("ip4:", proto)
			in, err := testnet.ListenPacket(topo.Server, network, testnet.ServerAddr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := testnet.ListenPacket(topo.Client, network, testnet.ClientAddr.String())
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			// RFC 2784: flags and version 0, protocol type IPv4; for ESP the
			// same bytes stand as an SPI and sequence number.
			hdr := []byte{0, 0, 0x08, 0}
			for i := range 3 {
				msg := append(append([]byte(nil), hdr...), fmt.Sprintf("fastnat proto %d out %d", proto, i)...)
				sendRaw(t, in, testnet.ClientAddr, msg)
				if src := receiveRaw(t, out, msg); src != testnet.PublicAddr {
					t.Fatalf("outside host got packet %d from %v, want %v", i, src, testnet.PublicAddr)
				}
				msg = append(append([]byte(nil), hdr...), fmt.Sprintf("fastnat proto %d back %d", proto, i)...)
				sendRaw(t, out, testnet.PublicAddr, msg)
				if src := receiveRaw(t, in, msg); src != testnet.ClientAddr {
					t.Fatalf("inside host got answer %d from %v, want %v", i, src, testnet.ClientAddr)
				}
			}
			if r.name != "fastnat" {
				return
			}
			// The session as the operator sees it: the protocol by name
			// (filtered by it), ports 0, the outbound rule.
			name := map[int]string{47: "gre", 50: "esp"}[proto]
			shown := fastnatShow(t, fastnatSocket(t, topo), "sessions", "--proto", name)
			want := fmt.Sprintf(`(?m)^\d+ +%s +OPEN +10\.77\.0\.226:0->198\.18\.0\.1:0 +198\.18\.0\.1:0->198\.18\.0\.204:0 +other +nat\.outbound\[0\] +inside `, name)
			if !regexp.MustCompile(want).MatchString(shown) {
				t.Errorf("show sessions lacks %s:\n%s", want, shown)
			}
		})
	}
}

func sendRaw(t *testing.T, c net.PacketConn, to netip.Addr, msg []byte) {
	t.Helper()
	if _, err := c.WriteTo(msg, &net.IPAddr{IP: to.AsSlice()}); err != nil {
		t.Fatal(err)
	}
}

// receiveRaw waits for msg on c (a raw IP socket: what it reads is the
// payload after the IPv4 header) and returns its source.
func receiveRaw(t *testing.T, c net.PacketConn, msg []byte) netip.Addr {
	t.Helper()
	buf := make([]byte, 1500)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("waiting for %q: %v", msg, err)
		}
		if bytes.Equal(buf[:n], msg) {
			a, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP.To4())
			return a
		}
	}
}
