package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatEventLog: a daemon with [[logging.ipfix]] and
// [[logging.syslog]] starts its exporters — nfcapd in the router
// namespace learns fastnat as an IPFIX exporter from the templates it
// sends before any record — and `fastnat events` streams from the control
// socket until the daemon stops. A rule with deterministic mapping, which
// the dataplane does not run yet, is refused at start.
func TestFastnatEventLog(t *testing.T) {
	requireFastnat(t)
	nfcapd, err := exec.LookPath("nfcapd")
	if err != nil {
		t.Skip("nfcapd not found (Debian: nfdump; .ci/run installs it)")
	}
	topo := fastnatRouter.newTopology(t, false)
	dir := t.TempDir()
	collector, err := topo.Start(topo.Router, nfcapd, "-E", "-w", dir, "-b", "127.0.0.1", "-p", "4739")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { collector.Stop() })
	sock := filepath.Join(dir, "fastnat.sock")
	syslogSock := filepath.Join(dir, "log.sock")
	cfg := filepath.Join(dir, "fastnat.toml")
	writeFile(t, cfg, fastnatConfig(true, nil, sock)+`
[[logging.ipfix]]
collector = "127.0.0.1:4739"
template_refresh = "2s"

[[logging.syslog]]
transport = "unix"
address = "`+syslogSock+`"
`)
	daemon := startFastnat(t, topo, cfg)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(collector.Output(), "New ipfix exporter"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("nfcapd saw no templates from fastnat:\n%s\nfastnat:\n%s", collector.Output(), daemon.Output())
		}
	}

	// A live stream that ends when the daemon does.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := exec.CommandContext(ctx, fastnatBinary(t), "events", "--socket", sock, "--proto", "tcp")
	var out strings.Builder
	events.Stdout, events.Stderr = &out, &out
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let it subscribe; nothing is asserted about time
	if err := daemon.Stop(); err != nil {
		t.Fatalf("fastnat stop: %v", err)
	}
	err = events.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out.String(), "ended the event stream") {
		t.Fatalf("fastnat events after the daemon stopped: %v\n%s", err, out.String())
	}
	if !strings.Contains(daemon.Output(), "event exporter totals") {
		t.Errorf("fastnat did not log its exporters' totals:\n%s", daemon.Output())
	}

	// Deterministic mapping is refused until the dataplane runs it.
	det := filepath.Join(dir, "det.toml")
	writeFile(t, det, strings.Replace(fastnatConfig(true, nil, sock), "[[nat.server]]", "mapping = \"deterministic\"\n\n[[nat.server]]", 1))
	run := testnet.Command(ctx, topo.Router, fastnatBinary(t), "run", "-c", det)
	b, err := run.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "not in the dataplane yet") {
		t.Fatalf("fastnat run with a deterministic rule: %v\n%s", err, b)
	}
	os.Remove(det)
}
