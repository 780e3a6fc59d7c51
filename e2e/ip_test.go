package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// fastnat as an IPv4 router, with the tools operators use: traceroute in
// its three modes and tracepath from an inside host see the NAT as hop 1,
// ping -t 1 gets time exceeded, path MTU discovery works through an
// outside link of MTU 1492 (the client's own link stays at 1500, so any
// frame fastnat sent above 1492 would reach it and be caught), a DF
// packet too big gets fragmentation needed, an unresolvable destination
// gets host unreachable and one without a route net unreachable, and 200
// back-to-back datagrams to a host not yet resolved all arrive.

// outsideMTU is the router's outside link MTU in these tests (PPPoE's).
const outsideMTU = 1492

// udpSinkPort is a nat server port forwarded to a UDP echo inside.
const udpSinkPort = 7009

// clientAddr2, clientAddr3 and clientAddr4 are more addresses of the
// client: destinations whose path MTU the inside hosts have not learned
// yet.
var (
	clientAddr2 = netip.MustParseAddr("198.18.0.2")
	clientAddr3 = netip.MustParseAddr("198.18.0.3")
	clientAddr4 = netip.MustParseAddr("198.18.0.4")
)

// changedMTU is what the MTU test sets the outside link to while the
// router runs.
const changedMTU = 1400

func requireRouterTools(t *testing.T) {
	t.Helper()
	if err := testnet.CheckTools("traceroute", "tracepath", "ping"); err != nil {
		t.Skipf("e2e: %v; install the Debian packages traceroute iputils-tracepath iputils-ping (.ci/run does)", err)
	}
}

// routerTopology builds a topology for r with the outside link's router
// end at outsideMTU and a UDP nat server on udpSinkPort; fastnat gets the
// extra configuration text appended to the case's file. It returns
// fastnat's control socket ("" for the kernel).
func routerTopology(t *testing.T, r router, o testnet.Options, extra string) (*testnet.Topology, string) {
	t.Helper()
	o.Forwarding = r.opts.Forwarding
	topo := testnet.MustNew(t, o)
	testnet.MustRun(t, topo.Router, "ip", "link", "set", testnet.RouterOutsideLink, "mtu", fmt.Sprint(outsideMTU))
	// The client may send at most outsideMTU towards the router (as a
	// real link's other end would) but still advertises the MSS of its
	// own 1500-byte link, and it receives up to 1500: a frame fastnat
	// sent above the MTU would not be dropped on the way.
	testnet.MustRun(t, topo.Client, "ip", "route", "replace", testnet.OutsideNet.String(), "dev", testnet.NodeLink,
		"mtu", "lock", fmt.Sprint(outsideMTU), "advmss", "1460")
	for _, a := range []netip.Addr{clientAddr2, clientAddr3, clientAddr4} {
		testnet.MustRun(t, topo.Client, "ip", "addr", "add", netip.PrefixFrom(a, 24).String(), "dev", testnet.NodeLink)
	}
	sink := []testnet.Forward{{
		Proto: "udp", Public: netip.AddrPortFrom(testnet.PublicAddr, udpSinkPort), Inside: netip.AddrPortFrom(testnet.ServerAddr, udpSinkPort),
	}}
	if r.name != fastnatRouter.name {
		r.setup(t, topo, true, sink)
		return topo, ""
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "fastnat.toml")
	sock := filepath.Join(dir, "fastnat.sock")
	writeFile(t, file, fastnatConfig(true, sink, sock)+extra)
	startFastnat(t, topo, file)
	return topo, sock
}

// fastnatStats reads the running fastnat's counters over its control
// socket, summed over the workers: drops by reason and events.
func fastnatStats(t *testing.T, sock string) (drops, events map[string]uint64) {
	t.Helper()
	code, out, errOut := fastnatCLI(t, "show", "stats", "--json", "--socket", sock)
	if code != 0 {
		t.Fatalf("fastnat show stats: exit %d: %s", code, errOut)
	}
	var s metrics.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("show stats --json: %v\n%s", err, out)
	}
	drops, events = map[string]uint64{}, map[string]uint64{}
	for _, w := range s.Workers {
		for k, v := range w.Drops {
			drops[k] += v
		}
		for k, v := range w.Events {
			events[k] += v
		}
	}
	return drops, events
}

// run runs a tool in a namespace and returns its output, failing the test
// if it does not exit 0 (unless mayFail).
func run(t *testing.T, ctx context.Context, mayFail bool, ns, name string, args ...string) string {
	t.Helper()
	out, err := testnet.Run(ctx, ns, name, args...)
	if err != nil && !mayFail {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	return string(out)
}

// hops parses traceroute -n output into the first address of each hop
// ("*" when a hop did not answer).
func hops(out string) []string {
	var h []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != fmt.Sprint(len(h)+1) {
			continue
		}
		h = append(h, f[1])
	}
	return h
}

func TestFastnatRouterIP(t *testing.T) {
	requireFastnat(t)
	requireRouterTools(t)
	routerIP(t, fastnatRouter)
}

// TestKernelRouterIP runs the same tools through the kernel's NAT: the
// proof that what routerIP expects is what a Linux router does.
func TestKernelRouterIP(t *testing.T) {
	requireHarness(t)
	requireRouterTools(t)
	routerIP(t, kernelRouter)
}

func routerIP(t *testing.T, r router) {
	ctx := testContext(t)
	topo, sock := routerTopology(t, r, testnet.Options{InsideHost: true}, "")
	client := testnet.ClientAddr.String()
	// Everything the router sends to the client, checked at the end: no
	// frame above the outside MTU (the client would accept up to 1500).
	rx, err := testnet.StartCapture(topo.Client, testnet.NodeLink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rx.Close() })

	// First, while the router has not resolved the server yet: 200
	// back-to-back datagrams through a nat server all arrive.
	t.Run("200 datagrams to a fresh host", func(t *testing.T) {
		echo := testnet.MustUDPEcho(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, udpSinkPort))
		c, err := testnet.DialUDP(topo.Client, netip.AddrPort{}, netip.AddrPortFrom(testnet.PublicAddr, udpSinkPort))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 200 {
			if _, err := c.Write([]byte(fmt.Sprintf("datagram %d", i))); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for echo.Count() < 200 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := echo.Count(); n != 200 {
			t.Fatalf("%d of 200 datagrams arrived (the kernel delivers 200)", n)
		}
	})
	// From the inside host: every ICMP error fastnat sends counts against
	// its destination's rate limit (Linux's burst of 6, then one a
	// second), and the server gets its own below. UDP with traceroute's
	// default three probes a hop (all three must be answered), then ICMP
	// and TCP with one.
	for _, mode := range []struct {
		name, flag string
		probes     int
	}{{"udp", "", 3}, {"icmp", "-I", 1}, {"tcp", "-T", 1}} {
		t.Run("traceroute "+mode.name, func(t *testing.T) {
			args := []string{"-n", "-q", fmt.Sprint(mode.probes), "-w", "2", "-m", "4"}
			if mode.flag != "" {
				args = append(args, mode.flag)
			}
			out := run(t, ctx, false, topo.Host, "traceroute", append(args, client)...)
			h := hops(out)
			if len(h) != 2 || h[0] != testnet.RouterInsideAddr.String() || h[1] != client {
				t.Fatalf("hops %v, want [%v %v]", h, testnet.RouterInsideAddr, client)
			}
			if strings.Contains(out, "*") {
				t.Fatal("a probe got no answer")
			}
		})
	}
	t.Run("ping -t 1", func(t *testing.T) {
		out := run(t, ctx, true, topo.Server, "ping", "-n", "-c", "1", "-W", "3", "-t", "1", client)
		if !strings.Contains(out, "From "+testnet.RouterInsideAddr.String()) || !strings.Contains(out, "Time to live exceeded") {
			t.Fatal("no time exceeded from the NAT")
		}
	})
	t.Run("tracepath", func(t *testing.T) {
		// To the client's second address, whose path MTU the server
		// has not learned: tracepath learns it from fastnat.
		out := run(t, ctx, false, topo.Server, "tracepath", "-n", "-m", "4", clientAddr2.String())
		if !regexp.MustCompile(`(?m)^ 1:\s+` + regexp.QuoteMeta(testnet.RouterInsideAddr.String()) + `\s`).MatchString(out) {
			t.Error("hop 1 is not the NAT")
		}
		if !strings.Contains(out, fmt.Sprintf("pmtu %d", outsideMTU)) || !strings.Contains(out, "reached") {
			t.Error("tracepath did not find the path MTU and reach the client")
		}
	})
	t.Run("fragments without DF", func(t *testing.T) {
		// Before anything taught the server the path MTU to the
		// client, or it would fragment itself.
		echo := testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 7))
		c, err := testnet.DialUDP(topo.Server, netip.AddrPort{}, netip.AddrPortFrom(testnet.ClientAddr, 7))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// Full-size datagrams with DF clear: fastnat must fragment them.
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DONT)
		}); err != nil || serr != nil {
			t.Fatal(err, serr)
		}
		payload := []byte(strings.Repeat("fragment me ", 1472/12+1)[:1472]) // a 1500-byte packet
		got := 0
		buf := make([]byte, 2000)
		for range 10 {
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if n, err := c.Read(buf); err == nil && string(buf[:n]) == string(payload) {
				got++
			}
		}
		if got != 10 || echo.Count() != 10 {
			t.Fatalf("%d of 10 echoes (%d at the client)", got, echo.Count())
		}
	})
	t.Run("path MTU discovery with TCP", func(t *testing.T) {
		// The server sends 8 MiB to the client in full-size segments
		// (the client's MSS is 1460), each with DF: only fragmentation
		// needed from fastnat lets the transfer finish.
		f := startFTP(t, topo, topo.Server, insideFTP)
		if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
			NS: topo.Client, Tool: testnet.Curl, Mode: testnet.PASV,
			URL: f.server.URL(publicFTP, f.name), Dst: filepath.Join(t.TempDir(), f.name),
		}, f.sha256); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("DF too big", func(t *testing.T) {
		// To the client's third address: the path MTUs to the others
		// are known by now.
		out := run(t, ctx, true, topo.Server, "ping", "-n", "-c", "1", "-W", "3", "-M", "do", "-s", "1472", clientAddr3.String())
		if !strings.Contains(out, fmt.Sprintf("Frag needed and DF set (mtu = %d)", outsideMTU)) {
			t.Fatal("no fragmentation needed with the outside MTU")
		}
	})
	t.Run("MTU changed while running", func(t *testing.T) {
		// ip link set on the running router: within a second and a half
		// the new MTU is what fragmentation needed carries and what no
		// frame to the client exceeds. To the client's fourth address,
		// whose path MTU the server has not learned.
		capture, err := testnet.StartCapture(topo.Client, testnet.NodeLink)
		if err != nil {
			t.Fatal(err)
		}
		defer capture.Close()
		// The client's end of the link follows, as a real link's would
		// (the router would drop its larger frames on the way in).
		setMTU := func(mtu int) {
			testnet.MustRun(t, topo.Router, "ip", "link", "set", testnet.RouterOutsideLink, "mtu", fmt.Sprint(mtu))
			testnet.MustRun(t, topo.Client, "ip", "route", "replace", testnet.OutsideNet.String(), "dev", testnet.NodeLink,
				"mtu", "lock", fmt.Sprint(mtu), "advmss", "1460")
		}
		setMTU(changedMTU)
		defer setMTU(outsideMTU)
		time.Sleep(1500 * time.Millisecond)
		out := run(t, ctx, true, topo.Server, "ping", "-n", "-c", "1", "-W", "3", "-M", "do", "-s", fmt.Sprint(outsideMTU-28), clientAddr4.String())
		if !strings.Contains(out, fmt.Sprintf("Frag needed and DF set (mtu = %d)", changedMTU)) {
			t.Error("no fragmentation needed with the new MTU")
		}
		// A packet that fits the new MTU exactly passes with DF.
		run(t, ctx, false, topo.Server, "ping", "-n", "-c", "1", "-W", "3", "-M", "do", "-s", fmt.Sprint(changedMTU-28), clientAddr4.String())
		// Without DF, a full-size packet is fragmented to the new MTU.
		run(t, ctx, false, topo.Server, "ping", "-n", "-c", "1", "-W", "3", "-M", "dont", "-s", "1472", clientAddr4.String())
		_ = capture.Close()
		largest, n := 0, 0
		for _, f := range capture.Frames() {
			if !f.Outgoing {
				n++
				largest = max(largest, len(f.Data))
			}
		}
		if n == 0 || largest > changedMTU+14 {
			t.Errorf("the client received %d frames, the largest %d bytes, from a link of MTU %d", n, largest, changedMTU)
		}
		if largest != changedMTU+14 {
			t.Errorf("the largest frame was %d bytes: the packet of exactly MTU %d did not arrive whole", largest, changedMTU)
		}
	})
	t.Run("host unreachable", func(t *testing.T) {
		start := time.Now()
		out := run(t, ctx, true, topo.Server, "ping", "-n", "-c", "1", "-W", "8", "198.18.0.77")
		// fastnat answers from the interface the packet came in on, as
		// for every error. The kernel's neighbour code reports the
		// failure about the packet after source NAT, so its error comes
		// from the public address.
		from := "From " + testnet.RouterInsideAddr.String()
		if r.name != fastnatRouter.name && strings.Contains(out, "From "+testnet.PublicAddr.String()) {
			from = "From " + testnet.PublicAddr.String()
		}
		if !strings.Contains(out, from) || !strings.Contains(out, "Destination Host Unreachable") {
			t.Fatal("no host unreachable from the NAT")
		}
		if d := time.Since(start); d > 7*time.Second {
			t.Errorf("host unreachable after %v", d)
		}
	})
	t.Run("net unreachable", func(t *testing.T) {
		out := run(t, ctx, true, topo.Server, "ping", "-n", "-c", "1", "-W", "3", "198.19.0.1")
		if !strings.Contains(out, "From "+testnet.RouterInsideAddr.String()) || !strings.Contains(out, "Destination Net Unreachable") {
			t.Fatal("no net unreachable from the NAT")
		}
	})
	_ = rx.Close()
	largest, n := 0, 0
	for _, f := range rx.Frames() {
		if f.Outgoing {
			continue
		}
		n++
		largest = max(largest, len(f.Data))
	}
	if largest > outsideMTU+14 {
		t.Errorf("the client received a %d-byte frame from a link of MTU %d", largest, outsideMTU)
	}
	t.Logf("the client received %d frames, the largest %d bytes", n, largest)
	if sock == "" {
		return
	}
	drops, events := fastnatStats(t, sock)
	t.Logf("drops %v\nevents %v", nonZero(drops), nonZero(events))
	for _, e := range []string{"icmp_time_exceeded", "icmp_host_unreachable", "icmp_net_unreachable"} {
		if events[e] == 0 {
			t.Errorf("fastnat counted no %s", e)
		}
	}
	// ping -M do, tracepath and the TCP transfer each needed one.
	if events["icmp_frag_needed"] < 3 {
		t.Errorf("fastnat sent %d fragmentation-needed errors, want at least 3", events["icmp_frag_needed"])
	}
	if events["frag_out_packets"] < 10 {
		t.Errorf("fastnat fragmented %d packets, want at least 10", events["frag_out_packets"])
	}
}

func nonZero(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// TestFastnatChecksumOffloadTrap: the peers of the router's veths transmit
// with checksum offload on, as a veth does by default, so their TCP and
// UDP packets reach fastnat with unfinished checksums. fastnat says so at
// start (naming the peer and the fix), refuses the sessions such packets
// would create (bad_l4_checksum), logs the fix once, and ping still works;
// with offload off on the peer, the same traffic passes.
func TestFastnatChecksumOffloadTrap(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := testnet.MustNew(t, testnet.Options{KeepOffload: true})
	dir := t.TempDir()
	file := filepath.Join(dir, "fastnat.toml")
	sock := filepath.Join(dir, "fastnat.sock")
	echoAt := netip.AddrPortFrom(testnet.ServerAddr, udpSinkPort)
	writeFile(t, file, fastnatConfig(false, []testnet.Forward{{Proto: "udp", Public: netip.AddrPortFrom(testnet.PublicAddr, udpSinkPort), Inside: echoAt}}, sock))
	p := startFastnat(t, topo, file)
	for _, ns := range []string{topo.Client, topo.Server} {
		want := fmt.Sprintf("fix=\"ip netns exec %s ethtool -K %s tx off\"", ns, testnet.NodeLink)
		if !strings.Contains(p.Output(), want) {
			t.Errorf("no start warning with %s", want)
		}
	}
	testnet.MustUDPEcho(t, topo.Server, echoAt)
	dst := netip.AddrPortFrom(testnet.PublicAddr, udpSinkPort)
	if n, err := testnet.UDPExchange(ctx, topo.Client, dst, payloads(3), time.Second); err != nil || n != 0 {
		t.Fatalf("%d echoes through partial checksums (%v), want none", n, err)
	}
	res, err := testnet.Ping(ctx, topo.Client, testnet.PublicAddr, 2, 2*time.Second)
	if err != nil || res.Received != res.Sent {
		t.Errorf("ping: %+v %v", res, err)
	}
	drops, _ := fastnatStats(t, sock)
	if drops["nat_bad_l4_checksum"] < 3 {
		t.Errorf("nat_bad_l4_checksum = %d, want at least 3", drops["nat_bad_l4_checksum"])
	}
	if n := strings.Count(p.Output(), "wrong checksums arrive here"); n != 1 {
		t.Errorf("the bad-checksum warning was logged %d times, want once", n)
	}
	testnet.MustRun(t, topo.Client, "ethtool", "-K", testnet.NodeLink, "tx", "off")
	testnet.MustRun(t, topo.Server, "ethtool", "-K", testnet.NodeLink, "tx", "off")
	if n, err := testnet.UDPExchange(ctx, topo.Client, dst, payloads(3), 2*time.Second); err != nil || n != 3 {
		t.Fatalf("with offload off, %d of 3 echoes (%v)", n, err)
	}
}
