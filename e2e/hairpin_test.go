package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatHairpin: two inside hosts, A (the server namespace,
// 10.77.0.226) and B (the inside host, 10.77.0.5). Each learns its public
// mapping by talking to a server outside, as a STUN client does. What B
// sends to A's mapping passes A's filtering exactly as it would from
// outside from B's public mapping (address and port dependent): refused
// and counted (hairpin_filtered) until A has sent to B's public mapping,
// then delivered from B's own public mapping — never from B's private
// address (RFC 4787 REQ-9, RFC 5382 REQ-8) — in the order ICE's hole
// punching uses. UDP through endpoint-independent bindings, TCP by a
// simultaneous open through them, TCP to a nat server (no filtering), and
// address-and-port-dependent mappings, whose ports admit only the
// endpoint their session talks to.
func TestFastnatHairpin(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, false, nil)
	sock := fastnatSocket(t, topo)

	t.Run("udp", func(t *testing.T) {
		echo := testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 3478))
		a := listenUDP(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 4000))
		b := listenUDP(t, topo.Host, netip.AddrPortFrom(testnet.HostAddr, 5000))
		pubA := learnMapping(t, a, echo)
		pubB := learnMapping(t, b, echo)
		if pubA.Addr() != testnet.PublicAddr || pubB.Addr() != testnet.PublicAddr || pubA == pubB {
			t.Fatalf("mappings A %v, B %v", pubA, pubB)
		}
		// B first: A has not sent to B's mapping, so A's filtering
		// refuses it — but B's mapping now admits A's.
		refused(t, sock, b, a, pubA, 3)
		// A answers B's mapping, then B's reaches A: both ways open.
		hairpinUDP(t, a, b, pubB, pubA)
		hairpinUDP(t, b, a, pubA, pubB)
	})

	t.Run("tcp simultaneous open through outbound mappings", func(t *testing.T) {
		// A connects out from 10.77.0.226:4100; the server outside sees
		// its mapping and closes. A's binding outlives the connection (the
		// closing session holds it).
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
		pubA = netip.AddrPortFrom(testnet.PublicAddr, pubA.Port())
		peer.Close() // the outside closes first: no TIME_WAIT on A's port
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("A read after the peer closed: %v", err)
		}
		conn.Close()

		// B connects to A's mapping from 10.77.0.5:5100: A has not sent
		// to B, so its SYN is refused (B retransmits), until A connects to
		// B's mapping (its port preserved) from the same port — TCP hole
		// punching, a simultaneous open (RFC 9293 §3.5).
		before, _ := fastnatStats(t, sock)
		bLocal := netip.AddrPortFrom(testnet.HostAddr, 5100)
		pubB := netip.AddrPortFrom(testnet.PublicAddr, bLocal.Port())
		type dialed struct {
			c   net.Conn
			err error
		}
		bc := make(chan dialed, 1)
		go func() {
			c, err := dialFrom(ctx, topo.Host, bLocal, pubA)
			bc <- dialed{c, err}
		}()
		waitDrop(t, sock, "nat_hairpin_filtered", before["nat_hairpin_filtered"]+1)
		var ac net.Conn
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ac, err = dialFrom(ctx, topo.Server, local, pubB); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("A to B's mapping: %v", err)
		}
		defer ac.Close()
		d := <-bc
		if d.err != nil {
			t.Fatalf("B to A's mapping: %v", d.err)
		}
		defer d.c.Close()
		if got := addrPort(ac.RemoteAddr()); got != pubB {
			t.Errorf("A connected to %v, want %v", got, pubB)
		}
		if got := addrPort(d.c.RemoteAddr()); got != pubA {
			t.Errorf("B connected to %v, want %v", got, pubA)
		}
		roundTrip(t, d.c, ac, "hole punched")
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

// TestFastnatHairpinPerSession: with address-and-port-dependent mapping
// every session has a port of its own, which admits only the endpoint
// the session talks to — a STUN server's, say. A host that sends to
// another's mapping (or its own) goes out by a new port that mapping has
// never sent to: refused and counted, both ways, and nothing arrives; the
// mappings keep working with the server they talk to.
func TestFastnatHairpinPerSession(t *testing.T) {
	requireFastnat(t)
	topo := fastnatRouter.newTopology(t, true)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fastnat.sock")
	cfg := fastnatConfig(false, nil, sock)
	pool := fmt.Sprintf("pool = [%q]", testnet.PublicAddr.String())
	if !strings.Contains(cfg, pool) {
		t.Fatalf("no %s in the configuration:\n%s", pool, cfg)
	}
	cfg = strings.Replace(cfg, pool, pool+"\nmapping = \"address-and-port-dependent\"", 1)
	file := filepath.Join(dir, "fastnat.toml")
	writeFile(t, file, cfg)
	startFastnat(t, topo, file)

	echo := testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 3478))
	a := listenUDP(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 4000))
	b := listenUDP(t, topo.Host, netip.AddrPortFrom(testnet.HostAddr, 5000))
	pubA := learnMapping(t, a, echo)
	pubB := learnMapping(t, b, echo)
	refused(t, sock, b, a, pubA, 2)
	refused(t, sock, a, b, pubB, 2)
	refused(t, sock, a, a, pubA, 2) // its own mapping, from a new port
	// Each mapping still talks to the server it was made for.
	if got := learnMapping(t, a, echo); got != pubA {
		t.Errorf("A's mapping to the server moved from %v to %v", pubA, got)
	}
}

// hairpinUDP sends a datagram from one inside socket to dst, a public
// mapping leading to the other, which must receive it from wantSrc: the
// sender's public mapping.
func hairpinUDP(t *testing.T, from, to *net.UDPConn, dst, wantSrc netip.AddrPort) {
	t.Helper()
	if _, err := from.WriteToUDPAddrPort([]byte("hairpin"), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = to.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, src, err := to.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("to %v: %v", dst, err)
	}
	if src := netip.AddrPortFrom(src.Addr().Unmap(), src.Port()); src != wantSrc || string(buf[:n]) != "hairpin" {
		t.Fatalf("to %v: %q from %v, want from %v", dst, buf[:n], src, wantSrc)
	}
}

// refused sends n datagrams from one inside socket to dst, a public
// mapping of the other whose filtering must refuse them: fastnat counts
// each as hairpin_filtered and nothing arrives.
func refused(t *testing.T, sock string, from, to *net.UDPConn, dst netip.AddrPort, n int) {
	t.Helper()
	before, _ := fastnatStats(t, sock)
	for range n {
		if _, err := from.WriteToUDPAddrPort([]byte("unsolicited"), dst); err != nil {
			t.Fatal(err)
		}
	}
	waitDrop(t, sock, "nat_hairpin_filtered", before["nat_hairpin_filtered"]+uint64(n))
	_ = to.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if m, src, err := to.ReadFromUDPAddrPort(make([]byte, 64)); err == nil {
		t.Fatalf("a refused hairpin arrived: %d bytes from %v", m, src)
	}
}

// addrPort is a connection address as an unmapped netip.AddrPort.
func addrPort(a net.Addr) netip.AddrPort {
	p := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
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
