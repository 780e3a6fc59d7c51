package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
)

// The UDP service the tests publish: an echo server inside, reachable at
// the public address.
var (
	echoInside = netip.AddrPortFrom(testnet.ServerAddr, 7007)
	echoPublic = netip.AddrPortFrom(testnet.PublicAddr, 7007)
)

// requireRoot skips tests that build namespaces and attach XDP programs.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, XDP programs and AF_XDP sockets")
	}
	if err := testnet.CheckTools("ip", "ethtool", "sysctl"); err != nil {
		t.Skip(err)
	}
}

// testConfig is a configuration for testnet's topology: the public
// address outbound and a UDP echo server published on it; extra is
// appended.
func testConfig(t *testing.T, extra string) *config.Config {
	t.Helper()
	text := fmt.Sprintf(`[dataplane]
xdp_mode = "native"

[[interface]]
name = %q
role = "outside"

[[interface]]
name = %q
role = "inside"

[flows]
max = 4096

[[nat.outbound]]
inside = [%q]
pool = [%q]

[[nat.server]]
protocol = "udp"
public = %q
inside = %q
`, testnet.RouterOutsideLink, testnet.RouterInsideLink, testnet.InsideNet, testnet.PublicAddr, echoPublic, echoInside) + extra
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startDataplane builds a topology and runs New in its router namespace.
func startDataplane(t *testing.T, cfg *config.Config) (*testnet.Topology, *Dataplane) {
	t.Helper()
	requireRoot(t)
	topo := testnet.MustNew(t, testnet.Options{})
	var d *Dataplane
	err := testnet.Do(topo.Router, func() (err error) {
		d, err = New(cfg, Options{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return topo, d
}

// echoes sends n datagrams from the client to dst and returns how many
// echoes came back.
func echoes(t *testing.T, topo *testnet.Topology, dst netip.AddrPort, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = []byte(fmt.Sprintf("datagram %d", i))
	}
	got, err := testnet.UDPExchange(ctx, topo.Client, dst, payloads, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// routerAddrs lists the addresses on the router's outside interface.
func routerAddrs(t *testing.T, topo *testnet.Topology) string {
	t.Helper()
	return string(testnet.MustRun(t, topo.Router, "ip", "-4", "-o", "addr", "show", "dev", testnet.RouterOutsideLink))
}

// TestDataplane drives a dataplane through its whole life: New carries
// traffic, Stats counts it, Reload applies new rules to new sessions, and
// Close detaches the programs and removes the public addresses.
func TestDataplane(t *testing.T) {
	cfg := testConfig(t, "")
	topo, d := startDataplane(t, cfg)
	testnet.MustUDPEcho(t, topo.Server, echoInside)

	if got := echoes(t, topo, echoPublic, 5); got != 5 {
		t.Fatalf("%d of 5 echoes through the dataplane", got)
	}
	st := d.Stats()
	if len(st.Workers) != 1 || st.Workers[0].Translated < 10 || st.Table.Sessions != 1 || st.Table.Capacity < 4096 {
		t.Fatalf("stats after 5 echoes: %d workers, table %+v, worker %+v", len(st.Workers), st.Table, st.Workers)
	}
	if s, err := d.Sessions(control.SessionQuery{}); err != nil || s.Matched != 1 || s.Sessions[0].Responder.Src != echoInside {
		t.Errorf("sessions %+v, %v", s, err)
	}
	if !strings.Contains(routerAddrs(t, topo), testnet.PublicAddr.String()+"/32") {
		t.Errorf("public address not on the outside interface:\n%s", routerAddrs(t, topo))
	}

	// A reload that publishes the echo server on a second port: new
	// sessions use it, the running configuration is the new one.
	second := netip.AddrPortFrom(testnet.PublicAddr, 7008)
	cfg2 := testConfig(t, fmt.Sprintf("\n[[nat.server]]\nprotocol = \"udp\"\npublic = %q\ninside = %q\n", second, echoInside))
	if err := d.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	if d.Config() != cfg2 {
		t.Error("Config() is not the reloaded configuration")
	}
	if got := echoes(t, topo, second, 3); got != 3 {
		t.Fatalf("%d of 3 echoes through the rule the reload added", got)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if a := routerAddrs(t, topo); strings.Contains(a, testnet.PublicAddr.String()) {
		t.Errorf("public address left after Close:\n%s", a)
	}
	link := string(testnet.MustRun(t, topo.Router, "ip", "link", "show", testnet.RouterOutsideLink))
	if strings.Contains(link, "xdp") {
		t.Errorf("XDP program left attached after Close:\n%s", link)
	}
}
