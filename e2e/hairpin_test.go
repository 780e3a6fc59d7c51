package e2e

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatHairpin: two inside hosts, A (the server namespace,
// 10.77.0.226) and B (the inside host, 10.77.0.5). A learns its public
// mapping by talking to a server outside; B sends to that mapping and A
// receives from B's own public mapping — never from B's private address
// (RFC 4787 REQ-9, RFC 5382 REQ-8). UDP through A's endpoint-independent
// binding, TCP through a binding A made by connecting out, and TCP to a
// nat server.
func TestFastnatHairpin(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, false, nil)

	t.Run("udp", func(t *testing.T) {
		echo := testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 3478))
		a := listenUDP(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 4000))
		b := listenUDP(t, topo.Host, netip.AddrPortFrom(testnet.HostAddr, 5000))
		pubA := learnMapping(t, a, echo)
		pubB := learnMapping(t, b, echo)
		if pubA.Addr() != testnet.PublicAddr || pubB.Addr() != testnet.PublicAddr || pubA == pubB {
			t.Fatalf("mappings A %v, B %v", pubA, pubB)
		}
		for i, c := range []struct {
			from, to     *net.UDPConn
			dst, wantSrc netip.AddrPort
		}{{b, a, pubA, pubB}, {a, b, pubB, pubA}} {
			msg := []byte("hairpin")
			if _, err := c.from.WriteToUDPAddrPort(msg, c.dst); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			_ = c.to.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, src, err := c.to.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("leg %d: %v", i, err)
			}
			if src := netip.AddrPortFrom(src.Addr().Unmap(), src.Port()); src != c.wantSrc || string(buf[:n]) != "hairpin" {
				t.Fatalf("leg %d: %q from %v, want from %v", i, buf[:n], src, c.wantSrc)
			}
		}
	})

	t.Run("tcp through an outbound mapping", func(t *testing.T) {
		// A connects out from 10.77.0.226:4100; the server outside sees
		// its mapping and closes. A's binding outlives the connection (the
		// closing session holds it), and A now listens on the same port.
		out, err := testnet.ListenTCP(topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 7200))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		local := netip.AddrPortFrom(testnet.ServerAddr, 4100)
		conn, err := dialFrom(ctx, topo.Server, local, netip.AddrPortFrom(testnet.ClientAddr, 7200))
		if err != nil {
			t.Fatal(err)
		}
		_ = out.SetDeadline(time.Now().Add(10 * time.Second))
		peer, err := out.Accept()
		if err != nil {
			t.Fatal(err)
		}
		pubA := peer.RemoteAddr().(*net.TCPAddr).AddrPort()
		if pubA.Addr().Unmap() != testnet.PublicAddr {
			t.Fatalf("outside saw A as %v", pubA)
		}
		peer.Close() // the outside closes first: no TIME_WAIT on A's port
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("A read after the peer closed: %v", err)
		}
		conn.Close()
		// The port is free once the peer has acknowledged A's FIN.
		var ln *net.TCPListener
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ln, err = testnet.ListenTCP(topo.Server, local); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		hairpinTCP(ctx, t, topo, ln, netip.AddrPortFrom(testnet.PublicAddr, pubA.Port()))
	})

	t.Run("tcp to a nat server", func(t *testing.T) {
		ln, err := testnet.ListenTCP(topo.Server, insideFTP)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		hairpinTCP(ctx, t, topo, ln, publicFTP)
	})
}

// hairpinTCP connects B to dst, a public endpoint leading to listener
// ln of A, and checks that A sees B's public address and B's port
// (preserved by its endpoint-independent mapping) and that data flows
// both ways.
func hairpinTCP(ctx context.Context, t *testing.T, topo *testnet.Topology, ln *net.TCPListener, dst netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := testnet.DialTCP(ctx, topo.Host, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_ = ln.SetDeadline(time.Now().Add(10 * time.Second))
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	got := a.RemoteAddr().(*net.TCPAddr).AddrPort()
	bLocal := b.LocalAddr().(*net.TCPAddr).AddrPort()
	if got.Addr().Unmap() != testnet.PublicAddr || got.Port() != bLocal.Port() {
		t.Fatalf("A saw B (%v) as %v, want %v:%d", bLocal, got, testnet.PublicAddr, bLocal.Port())
	}
	if b.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap() != dst.Addr() {
		t.Fatalf("B connected to %v", b.RemoteAddr())
	}
	roundTrip(t, b, a, "hairpin")
}

// listenUDP opens a UDP socket on addr in ns, closed with the test.
func listenUDP(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := testnet.ListenUDP(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// learnMapping sends a datagram from c to the echo server outside and
// returns the source the server saw it from: c's public mapping, as a
// STUN client learns it.
func learnMapping(t *testing.T, c *net.UDPConn, echo *testnet.UDPEcho) netip.AddrPort {
	t.Helper()
	before := echo.Peers()
	if _, err := c.WriteToUDPAddrPort([]byte("which am I"), echo.Addr()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadFromUDPAddrPort(make([]byte, 64)); err != nil {
		t.Fatalf("no echo: %v", err)
	}
	for p, n := range echo.Peers() {
		if before[p] != n {
			return p
		}
	}
	t.Fatal("the echo server saw no new datagram")
	return netip.AddrPort{}
}

// dialFrom connects from local in namespace ns to raddr.
func dialFrom(ctx context.Context, ns string, local, raddr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := testnet.Do(ns, func() error {
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(local)}
		var err error
		c, err = d.DialContext(ctx, "tcp4", raddr.String())
		return err
	})
	return c, err
}
