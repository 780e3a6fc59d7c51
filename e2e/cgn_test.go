package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// cgnConfig runs fastnat as a carrier-grade NAT: the inside host's four
// addresses (10.77.0.4/30) map deterministically to 256 ports each of
// 198.18.0.205, and the rest of the inside network gets blocks of 64
// ports of 198.18.0.204, two per host at most.
func cgnConfig(socket string) string {
	return fmt.Sprintf(`%s
[flows]
max = 65536

[[nat.outbound]]
inside = ["10.77.0.4/30"]
pool = ["198.18.0.205"]
ports = "1024-2047"
mapping = "deterministic"
ports_per_host = 256

[[nat.outbound]]
inside = [%q]
pool = [%q]
block_size = 64
blocks_per_host = 2

[control]
socket = %q
`, fastnatInterfaces(), testnet.InsideNet.String(), testnet.PublicAddr.String(), socket)
}

// TestFastnatCGN: fastnat with a deterministic and a port-block rule.
// Three addresses of the inside host send through the deterministic rule:
// every public port the outside sees lies in the range `fastnat lookup`
// gives the address, and looking the public port up names the address.
// The server sends from 130 sockets through the port-block rule: it gets
// two blocks of 64 ports, the events say which, every port the outside
// sees lies in them, the 129th and 130th sockets are refused
// (quota-exceeded, counted), and clearing its sessions releases both
// blocks.
func TestFastnatCGN(t *testing.T) {
	requireFastnat(t)
	topo := fastnatRouter.newTopology(t, true)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fastnat.sock")
	cfg := filepath.Join(dir, "fastnat.toml")
	writeFile(t, cfg, cgnConfig(sock))
	startFastnat(t, topo, cfg)
	stream := streamEvents(t, sock)
	echo := testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 7))
	hosts := []netip.Addr{testnet.HostAddr, netip.MustParseAddr("10.77.0.6"), netip.MustParseAddr("10.77.0.7")}
	for _, a := range hosts[1:] {
		testnet.MustRun(t, topo.Host, "ip", "addr", "add", a.String()+"/24", "dev", testnet.NodeLink)
	}

	// send sends one datagram from a fresh socket on src and returns the
	// public endpoint the echo saw, or false when nothing came back. The
	// socket stays open to the test's end, so that every one has a port
	// of its own: a new inside endpoint, a new binding.
	send := func(ns string, src netip.Addr) (netip.AddrPort, bool) {
		t.Helper()
		c := listenUDP(t, ns, netip.AddrPortFrom(src, 0))
		before := echo.Peers()
		if _, err := c.WriteToUDPAddrPort([]byte("cgn"), echo.Addr()); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := c.ReadFromUDPAddrPort(make([]byte, 16)); err != nil {
			return netip.AddrPort{}, false
		}
		for p, n := range echo.Peers() {
			if before[p] != n {
				return p, true
			}
		}
		t.Fatal("an echo came back, but the server saw nothing new")
		return netip.AddrPort{}, false
	}
	lookup := func(q string) lookupAnswer {
		t.Helper()
		code, out, errOut := fastnatCLI(t, "lookup", "--json", "-c", cfg, q)
		var a lookupAnswer
		if code != 0 || json.Unmarshal([]byte(out), &a) != nil {
			t.Fatalf("fastnat lookup %s: exit %d: %s%s", q, code, out, errOut)
		}
		return a
	}

	t.Run("deterministic", func(t *testing.T) {
		for _, h := range hosts {
			r := lookup(h.String())
			if r.Public != "198.18.0.205" || r.Last-r.First != 255 {
				t.Fatalf("lookup %v: %+v", h, r)
			}
			for range 5 {
				pub, ok := send(topo.Host, h)
				if !ok {
					t.Fatalf("no echo from %v", h)
				}
				if pub.Addr().String() != r.Public || pub.Port() < r.First || pub.Port() > r.Last {
					t.Errorf("%v went out as %v, outside its range %s:%d-%d", h, pub, r.Public, r.First, r.Last)
				}
				if back := lookup(pub.String()); back.Inside != h.String() {
					t.Errorf("lookup %v names %q, want %v", pub, back.Inside, h)
				}
			}
		}
	})

	t.Run("port blocks", func(t *testing.T) {
		seen := map[netip.AddrPort]bool{}
		refused := 0
		for range 130 {
			pub, ok := send(topo.Server, testnet.ServerAddr)
			if !ok {
				refused++
				continue
			}
			seen[pub] = true
		}
		if len(seen) != 128 || refused != 2 {
			t.Fatalf("%d distinct public ports, %d sockets refused; want 128 and 2", len(seen), refused)
		}
		drops, _ := fastnatStats(t, sock)
		if drops["nat_quota_exceeded"] != 2 {
			t.Errorf("nat_quota_exceeded %d, want 2", drops["nat_quota_exceeded"])
		}
		var st metrics.Snapshot
		if err := json.Unmarshal([]byte(fastnatShow(t, sock, "stats", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Blocks) != 1 || st.Blocks[0].Rule != 1 || st.Blocks[0].Held != 2 || st.Blocks[0].QuotaExceeded != 2 {
			t.Errorf("port blocks %+v", st.Blocks)
		}
		code, out, errOut := fastnatCLI(t, "clear", "sessions", "--addr", testnet.ServerAddr.String(), "--socket", sock)
		if code != 0 || out != "cleared 128 sessions\n" {
			t.Fatalf("clear sessions: exit %d: %s%s", code, out, errOut)
		}
		blocks := map[[2]uint16]int{} // block → 1 allocated, 2 released
		var quota int
		// The deterministic hosts' 15 sessions and bindings; the server's
		// 128 sessions and bindings made and cleared, its two blocks
		// taken and released, and at least one quota-exceeded.
		for _, e := range stream.stop(t, 2*15+4*128+4+1) {
			switch {
			case e.Type == "block-alloc" && e.Host == testnet.ServerAddr && e.Public == testnet.PublicAddr:
				blocks[[2]uint16{e.Ports.First, e.Ports.Last}]++
			case e.Type == "block-release" && e.Host == testnet.ServerAddr:
				blocks[[2]uint16{e.Ports.First, e.Ports.Last}]++
			case e.Type == "quota-exceeded" && e.Host == testnet.ServerAddr && e.Limit == 128 && e.Rule == "nat.outbound[1]":
				quota++
			}
		}
		if len(blocks) != 2 || quota < 1 || quota > 2 {
			t.Fatalf("block events %v, %d quota events; want two blocks and a quota-exceeded a second (throttled)", blocks, quota)
		}
		for p := range seen {
			in := false
			for b, n := range blocks {
				if n != 2 {
					t.Errorf("block %v: %d events, want its allocation and its release", b, n)
				}
				in = in || b[0] <= p.Port() && p.Port() <= b[1]
			}
			if p.Addr() != testnet.PublicAddr || !in {
				t.Errorf("the server went out as %v, outside its blocks %v", p, blocks)
			}
		}
		var l control.SessionList
		if err := json.Unmarshal([]byte(fastnatShow(t, sock, "sessions", "--json", "--rule", "nat.outbound[1]")), &l); err != nil || l.Matched != 0 {
			t.Errorf("sessions of the port-block rule after the clear: %v %+v", err, l)
		}
	})
}

// lookupAnswer is one line of `fastnat lookup --json`.
type lookupAnswer struct {
	Query  string `json:"query"`
	Rule   string `json:"rule"`
	Inside string `json:"inside"`
	Public string `json:"public"`
	First  uint16 `json:"first_port"`
	Last   uint16 `json:"last_port"`
	Error  string `json:"error"`
}
