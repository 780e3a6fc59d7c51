package dataplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testutil"

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

// echoes sends n datagrams from the client to dst, one at a time, each
// waiting up to 3 s for its echo, and returns how many echoes came back.
func echoes(t *testing.T, topo *testnet.Topology, dst netip.AddrPort, n int) int {
	t.Helper()
	return exchange(t, topo, dst, n, 3*time.Second)
}

// noEchoes is echoes for a destination that must not answer: a second a
// datagram is enough to see a reply that should not come, where echoes
// waits 3 s, as long as the client's first ARP for a new public address
// and a worker's wake-up may take on a loaded machine (1 s lost one of
// two echoes through a freshly reloaded rule in CI).
func noEchoes(t *testing.T, topo *testnet.Topology, dst netip.AddrPort, n int) int {
	t.Helper()
	return exchange(t, topo, dst, n, time.Second)
}

func exchange(t *testing.T, topo *testnet.Topology, dst netip.AddrPort, n int, wait time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n+1)*wait+10*time.Second)
	defer cancel()
	payloads := make([][]byte, n)
	for i := range payloads {
		payloads[i] = []byte(fmt.Sprintf("datagram %d", i))
	}
	got, err := testnet.UDPExchange(ctx, topo.Client, dst, payloads, wait)
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
	// A worker publishes its counters on its next poll after a busy one:
	// give it that poll.
	st := d.Stats()
	for deadline := time.Now().Add(2 * time.Second); len(st.Workers) == 1 && st.Workers[0].Translated < 5 && time.Now().Before(deadline); st = d.Stats() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(st.Workers) != 1 || st.Workers[0].Translated < 5 || st.Table.Sessions != 1 || st.Table.Capacity < 4096 {
		t.Fatalf("stats after 5 echoes: %d workers, table %+v, worker %+v", len(st.Workers), st.Table, st.Workers)
	}
	if s, err := d.Sessions(control.SessionQuery{}); err != nil || s.Matched != 1 || s.Sessions[0].Responder.Src != echoInside {
		t.Errorf("sessions %+v, %v", s, err)
	}
	if !strings.Contains(routerAddrs(t, topo), testnet.PublicAddr.String()+"/32") {
		t.Errorf("public address not on the outside interface:\n%s", routerAddrs(t, topo))
	}

	loaded := d.Rules().Loaded
	if r := d.Rules(); len(r.Servers) != 1 || r.Servers[0].Public != echoPublic || time.Since(loaded) > time.Minute {
		t.Errorf("rules: %+v", r)
	}
	// A reload that publishes the echo server on a second port: new
	// sessions use it, the running configuration is the new one.
	second := netip.AddrPortFrom(testnet.PublicAddr, 7008)
	cfg2 := testConfig(t, fmt.Sprintf("\n[[nat.server]]\nprotocol = \"udp\"\npublic = %q\ninside = %q\n", second, echoInside))
	if pending, err := d.Reload(cfg2); err != nil || pending != nil {
		t.Fatalf("reload: %v, pending %v", err, pending)
	}
	if n := len(d.Config().NAT.Server); n != 2 {
		t.Errorf("Config() has %d server rules, want the reloaded configuration's 2", n)
	}
	if r := d.Rules(); len(r.Servers) != 2 || r.Servers[1].Public != second || !r.Loaded.After(loaded) {
		t.Errorf("rules after the reload: %+v", r)
	}
	if got := echoes(t, topo, second, 3); got != 3 {
		t.Fatalf("%d of 3 echoes through the rule the reload added", got)
	}

	// Every worker beats: Alive holds across two calls, and fails once
	// the workers have stopped.
	if err := d.Alive(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // as long as a loaded race-detector run needs for 64 polls
	if err := d.Alive(); err != nil {
		t.Errorf("running workers: %v", err)
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_ = d.Alive() // a worker's last beat as it stopped
	time.Sleep(50 * time.Millisecond)
	if err := d.Alive(); !errors.Is(err, ErrStuck) {
		t.Errorf("stopped workers: %v, want ErrStuck", err)
	}
	if a := routerAddrs(t, topo); strings.Contains(a, testnet.PublicAddr.String()) {
		t.Errorf("public address left after Close:\n%s", a)
	}
	link := string(testnet.MustRun(t, topo.Router, "ip", "link", "show", testnet.RouterOutsideLink))
	if strings.Contains(link, "xdp") {
		t.Errorf("XDP program left attached after Close:\n%s", link)
	}
}

// TestReloadAllOrNothing: a reload that fails at any step of its commit
// leaves the dataplane as it was — rules, public addresses on the
// interface, XDP filter and configuration — and the same reload without
// the fault then applies all of it, removing the public address the file
// no longer names.
func TestReloadAllOrNothing(t *testing.T) {
	spare := netip.MustParseAddr("198.18.0.206") // in the file at first, removed by the reload
	added := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.205"), 7007)
	before := testConfig(t, fmt.Sprintf("\n[[nat.outbound]]\ninside = [\"10.78.0.0/24\"]\npool = [%q]\n", spare))
	after := testConfig(t, fmt.Sprintf("\n[[nat.server]]\nprotocol = \"udp\"\npublic = %q\ninside = %q\n", added, echoInside))
	topo, d := startDataplane(t, before)
	testnet.MustUDPEcho(t, topo.Server, echoInside)
	unchanged := func(t *testing.T) {
		t.Helper()
		addrs := routerAddrs(t, topo)
		if !strings.Contains(addrs, spare.String()+"/32") || strings.Contains(addrs, added.Addr().String()+"/") {
			t.Errorf("addresses changed: want %v kept and %v not added:\n%s", spare, added.Addr(), addrs)
		}
		if d.Config() != before {
			t.Error("the running configuration changed")
		}
		if got := echoes(t, topo, echoPublic, 2); got != 2 {
			t.Errorf("%d of 2 echoes through the running rule", got)
		}
		if got := noEchoes(t, topo, added, 2); got != 0 {
			t.Errorf("%d echoes through a rule of the failed reload", got)
		}
	}
	unchanged(t)
	for _, step := range []string{"add addresses", "set filters", "install rules", "remove addresses"} {
		t.Run(step, func(t *testing.T) {
			injected := errors.New("injected failure")
			reached := false
			d.commitFault = func(s string) error {
				reached = reached || s == step
				if s == step {
					return injected
				}
				return nil
			}
			defer func() { d.commitFault = nil }()
			_, err := d.Reload(after)
			if !errors.Is(err, ErrReload) || !errors.Is(err, injected) || !reached {
				t.Fatalf("reload failing at %q: %v (step reached: %v)", step, err, reached)
			}
			unchanged(t)
		})
	}
	// A configuration the interfaces cannot take is refused before
	// anything changes: more public addresses than the XDP map holds,
	// which the file's own checks allow.
	huge := testConfig(t, "\n[[nat.outbound]]\ninside = [\"10.79.0.0/16\"]\npool = [\"198.19.0.0/19\"]\n")
	if _, err := d.Reload(huge); err == nil || errors.Is(err, ErrReload) {
		t.Fatalf("reload with 8190 public addresses: %v, want refused before the commit", err)
	}
	unchanged(t)

	if _, err := d.Reload(after); err != nil {
		t.Fatal(err)
	}
	if got := echoes(t, topo, added, 2); got != 2 {
		t.Errorf("%d of 2 echoes through the reloaded rule", got)
	}
	addrs := routerAddrs(t, topo)
	if strings.Contains(addrs, spare.String()+"/") || !strings.Contains(addrs, added.Addr().String()+"/32") {
		t.Errorf("after the reload want %v removed and %v added:\n%s", spare, added.Addr(), addrs)
	}
}

// TestReloadPending: keys that size what New built keep their running
// values and are reported; the rest of the file applies.
func TestReloadPending(t *testing.T) {
	topo, d := startDataplane(t, testConfig(t, ""))
	testnet.MustUDPEcho(t, topo.Server, echoInside)
	next := testConfig(t, "\n[metrics]\nlisten = \"127.0.0.1:9399\"\n[timeouts]\nudp = \"3m\"\n")
	next.Dataplane.Workers, next.Flows.Max = 2, 8192
	pending, err := d.Reload(next)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range pending {
		keys = append(keys, p.String())
	}
	want := []string{"dataplane.workers (running 0, file 2)", "flows.max (running 4096, file 8192)", `metrics.listen (running "", file "127.0.0.1:9399")`}
	if !slices.Equal(keys, want) {
		t.Errorf("pending\n%q\nwant\n%q", keys, want)
	}
	run := d.Config()
	if run.Dataplane.Workers != 0 || run.Flows.Max != 4096 || run.Metrics.Listen != "" || run.Timeouts.UDP != 3*time.Minute {
		t.Errorf("running configuration: workers %d, flows %d, metrics %q, udp timeout %v", run.Dataplane.Workers, run.Flows.Max, run.Metrics.Listen, run.Timeouts.UDP)
	}
	if got := echoes(t, topo, echoPublic, 2); got != 2 {
		t.Errorf("%d of 2 echoes after the reload", got)
	}
}

// TestWorkersClamped: more workers than the first interface has queues
// runs one per queue and says so, with the fix; every socket's copy or
// zero-copy mode is logged.
func TestWorkersClamped(t *testing.T) {
	requireRoot(t)
	topo := testnet.MustNew(t, testnet.Options{Queues: 2})
	cfg := testConfig(t, "")
	cfg.Dataplane.Workers = 4
	var logs testutil.SyncBuffer
	var d *Dataplane
	err := testnet.Do(topo.Router, func() (err error) {
		d, err = New(cfg, Options{Log: slog.New(slog.NewTextHandler(&logs, nil))})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	out := logs.String()
	if d.Workers() != 2 || !strings.Contains(out, `level=WARN msg="fewer workers than [dataplane] workers asks: one per queue of the first interface" asked=4 running=2 interface=outside queues=2 fix="ethtool -L outside combined 4 (on every interface), or workers = 2"`) {
		t.Errorf("%d workers; log:\n%s", d.Workers(), out)
	}
	if n := strings.Count(out, "umem=copy"); n != 4 {
		t.Errorf("%d serving lines with umem=copy, want 4 (2 queues x 2 interfaces):\n%s", n, out)
	}
}
