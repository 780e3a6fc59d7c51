package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// unitCapabilities reads CapabilityBoundingSet= of deploy/fastnat.service
// as setpriv spells it: "-all,+net_admin,+net_raw,...".
func unitCapabilities(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../deploy/fastnat.service")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "CapabilityBoundingSet="); ok {
			set := "-all"
			for _, c := range strings.Fields(rest) {
				set += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
			}
			return set
		}
	}
	t.Fatal("deploy/fastnat.service has no CapabilityBoundingSet=")
	return ""
}

// notifications is systemd's side of sd_notify: a datagram socket whose
// messages arrive on a channel.
func notifications(t *testing.T) (path string, msgs <-chan string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch := make(chan string, 1024)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			ch <- string(b[:n])
		}
	}()
	return path, ch
}

// expectNotify waits for a notification that starts with prefix, skipping
// others (WATCHDOG=1 arrives in between).
func expectNotify(t *testing.T, msgs <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	var seen []string
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m, prefix) {
				return m
			}
			seen = append(seen, m)
		case <-timeout:
			t.Fatalf("no %q notification in 20s; got %q", prefix, seen)
		}
	}
}

// TestService runs fastnat as deploy/fastnat.service would: with only the
// unit's capabilities (setpriv --bounding-set), a notify socket and a
// watchdog. It must start, say READY=1, keep the watchdog fed, translate,
// say RELOADING=1 and READY=1 around a reload by signal and by `fastnat
// reload`, and say STOPPING=1 on SIGTERM.
func TestService(t *testing.T) {
	requireFastnat(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs util-linux's setpriv")
	}
	topo := fastnatRouter.newTopology(t, false)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fastnat.toml")
	sock := filepath.Join(dir, "fastnat.sock")
	echo := testnet.Forward{Proto: "udp", Public: netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort), Inside: netip.AddrPortFrom(testnet.ServerAddr, 7)}
	writeFile(t, cfg, fastnatConfig(true, []testnet.Forward{echo}, sock))
	testnet.MustUDPEcho(t, topo.Server, echo.Inside)

	notify, msgs := notifications(t)
	t.Setenv("NOTIFY_SOCKET", notify)
	t.Setenv("WATCHDOG_USEC", "400000") // WATCHDOG=1 every 200 ms
	p, err := topo.Start(topo.Router, "setpriv", "--bounding-set="+unitCapabilities(t), "--inh-caps=-all",
		fastnatBinary(t), "run", "-c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fastnat output:\n%s", tailString(p.Output(), 8192))
		}
	})
	if m := expectNotify(t, msgs, "READY=1"); !strings.Contains(m, "STATUS=serving "+cfg) {
		t.Errorf("ready notification %q", m)
	}
	expectNotify(t, msgs, "WATCHDOG=1")
	expectNotify(t, msgs, "WATCHDOG=1")
	caps, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(caps), "CapBnd:\t000000c000007000") {
		t.Errorf("fastnat's capabilities are not the unit's:\n%s", caps)
	}
	ctx := testContext(t)
	if n, err := testnet.UDPExchange(ctx, topo.Client, echo.Public, payloads(5), 2*time.Second); err != nil || n != 5 {
		t.Fatalf("%d of 5 echoes through fastnat with the unit's capabilities: %v", n, err)
	}

	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, msgs, "RELOADING=1")
	expectNotify(t, msgs, "READY=1")
	if code, out, errOut := fastnatCLI(t, "reload", "--socket", sock); code != 0 {
		t.Fatalf("fastnat reload: exit %d %s%s", code, out, errOut)
	}
	expectNotify(t, msgs, "RELOADING=1")
	expectNotify(t, msgs, "READY=1")

	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expectNotify(t, msgs, "STOPPING=1")
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("fastnat did not stop")
	}
	if done, err := p.Exited(); !done || err != nil {
		t.Errorf("fastnat exit: %v", err)
	}
	if strings.Contains(p.Output(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", p.Output())
	}
}
