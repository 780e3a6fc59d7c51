package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// ICMP errors from beyond the NAT reach the inside host translated back
// (RFC 5508 §4.2): the client is also a router, to remoteNet through a
// neighbour that never answers and over a link of MTU remoteMTU, so
// traceroute from inside, in its three modes, sees the remote router's
// time exceeded as hop 2; tracepath learns the path MTU from the remote
// router's fragmentation needed; and a UDP client sending to a closed
// port outside is refused. The inside host's kernel accepts an error only
// when the quoted header is exactly the one its socket sent, so every
// tool's answer proves the embedded header was restored.

// remoteNet is reached through the client; remoteMTU is the MTU of the
// client's route there.
var remoteNet = netip.MustParsePrefix("203.0.113.0/25")

const remoteMTU = 1300

func TestFastnatRemoteICMPErrors(t *testing.T) {
	requireFastnat(t)
	requireRouterTools(t)
	remoteICMPErrors(t, fastnatRouter)
}

// TestKernelRemoteICMPErrors is the proof that remoteICMPErrors expects
// what a Linux NAT does.
func TestKernelRemoteICMPErrors(t *testing.T) {
	requireHarness(t)
	requireRouterTools(t)
	remoteICMPErrors(t, kernelRouter)
}

func remoteICMPErrors(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	for _, c := range [][]string{
		{"sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"},
		{"sysctl", "-qw", "net.ipv4.conf.all.send_redirects=0"},
		{"sysctl", "-qw", "net.ipv4.conf." + testnet.NodeLink + ".send_redirects=0"},
		{"ip", "route", "add", remoteNet.String(), "via", "198.18.0.99", "mtu", "lock", fmt.Sprint(remoteMTU)},
	} {
		testnet.MustRun(t, topo.Client, c[0], c[1:]...)
	}
	if r.name == fastnatRouter.name {
		// The client is the outside interface's gateway; no rate limit
		// on fastnat's own errors, which the test does not count.
		dir := t.TempDir()
		file := filepath.Join(dir, "fastnat.toml")
		cfg := fastnatConfig(false, nil, filepath.Join(dir, "fastnat.sock"))
		cfg = strings.Replace(cfg, "role = \"outside\"\n", fmt.Sprintf("role = \"outside\"\ngateway = %q\n", testnet.ClientAddr), 1)
		writeFile(t, file, cfg+"\n[icmp]\nrate_limit = \"0s\"\n")
		startFastnat(t, topo, file)
	} else {
		r.setup(t, topo, false, nil)
		testnet.MustRun(t, topo.Router, "ip", "route", "add", "default", "via", testnet.ClientAddr.String())
		testnet.MustRun(t, topo.Router, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	}
	remote := netip.MustParseAddr("203.0.113.9").String()
	client := testnet.ClientAddr.String()

	for _, mode := range []struct{ name, flag string }{{"udp", "-U"}, {"icmp", "-I"}, {"tcp", "-T"}} {
		t.Run("traceroute "+mode.name, func(t *testing.T) {
			out := run(t, ctx, false, topo.Server, "traceroute", "-n", "-q", "1", "-w", "2", "-m", "2", mode.flag, remote)
			if h := hops(out); len(h) != 2 || h[0] != testnet.RouterInsideAddr.String() || h[1] != client {
				t.Fatalf("hops %v, want [%v %v]: the remote router's time exceeded did not come back", h, testnet.RouterInsideAddr, client)
			}
		})
	}
	t.Run("tracepath", func(t *testing.T) {
		out := run(t, ctx, true, topo.Server, "tracepath", "-n", "-m", "4", remote)
		if !strings.Contains(out, fmt.Sprintf("pmtu %d", remoteMTU)) {
			t.Fatalf("tracepath did not learn the remote router's MTU %d", remoteMTU)
		}
	})
	t.Run("udp to a closed port", func(t *testing.T) {
		c, err := testnet.DialUDP(topo.Server, netip.AddrPort{}, netip.AddrPortFrom(testnet.ClientAddr, 9999))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 64)
		if _, err := c.Write([]byte("anyone?")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(buf); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("read: %v, want connection refused (the client's port unreachable)", err)
		}
	})
}
