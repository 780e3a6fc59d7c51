package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// The fastnat tests run the shared scenarios with fastnat as the router:
// `fastnat run` in the router namespace on AF_XDP sockets, the kernel's
// forwarding off, so every packet that crosses is one fastnat translated.

func TestFastnatFTP(t *testing.T) { requireFastnat(t); ftpServerInside(t, fastnatRouter) }
func TestFastnatFTPWithoutMapping(t *testing.T) {
	requireFastnat(t)
	ftpServerInsideUnmapped(t, fastnatRouter)
}
func TestFastnatFTPClientInside(t *testing.T) { requireFastnat(t); ftpClientInside(t, fastnatRouter) }
func TestFastnatUDP(t *testing.T)             { requireFastnat(t); udpThroughNAT(t, fastnatRouter) }
func TestFastnatICMP(t *testing.T)            { requireFastnat(t); icmpThroughNAT(t, fastnatRouter) }
func TestFastnatMalformedFrames(t *testing.T) { requireFastnat(t); malformedBurst(t, fastnatRouter) }

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fastnatBinary builds cmd/fastnat once per test process, or returns
// $FASTNAT_BIN when set (to measure another build, such as a baseline).
func fastnatBinary(tb testing.TB) string {
	tb.Helper()
	if bin := os.Getenv("FASTNAT_BIN"); bin != "" {
		return bin
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fastnat-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fastnat")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/fastnat/fastnat/cmd/fastnat").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

func requireFastnat(t *testing.T) {
	t.Helper()
	requireHarness(t)
	fastnatBinary(t)
}

// fastnatXDPMode is the [dataplane] xdp_mode of the next fastnat started
// ("auto" unless a test needs another).
var fastnatXDPMode = "auto"

// fastnatInterfaces is the start of every fastnat configuration for the
// topology: the dataplane and the router's two interfaces.
func fastnatInterfaces() string {
	return fmt.Sprintf(`[dataplane]
poll = "adaptive"
xdp_mode = %q

[[interface]]
name = %q
role = "outside"

[[interface]]
name = %q
role = "inside"
`, fastnatXDPMode, testnet.RouterOutsideLink, testnet.RouterInsideLink)
}

// fastnatConfig is the case's configuration for the topology.
func fastnatConfig(ftpMapping bool, extra []testnet.Forward, socket string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `%s
[flows]
max = 65536

[[nat.outbound]]
inside = [%q]
pool = [%q]

[[nat.server]]
protocol = "tcp"
public = %q
inside = %q
`, fastnatInterfaces(), testnet.InsideNet.String(), testnet.PublicAddr.String(), publicFTP.String(), insideFTP.String())
	for _, f := range extra {
		fmt.Fprintf(&b, "\n[[nat.server]]\nprotocol = %q\npublic = %q\ninside = %q\n", f.Proto, f.Public.String(), f.Inside.String())
	}
	if ftpMapping {
		fmt.Fprintf(&b, "\n[[port_mapping]]\napplication = \"ftp\"\nport = %d\nprotocol = \"tcp\"\n", testnet.FTPPublicPort)
	}
	fmt.Fprintf(&b, "\n[control]\nsocket = %q\n", socket)
	return b.String()
}

// fastnatRouter runs `fastnat run` in the router namespace. A second
// setup stops the running daemon and starts one with the new file.
var fastnatRouter = router{
	name: "fastnat",
	opts: testnet.Options{Forwarding: false},
	setup: func(t *testing.T, topo *testnet.Topology, ftpMapping bool, extra []testnet.Forward) {
		t.Helper()
		bin := fastnatBinary(t)
		for _, p := range topo.Processes() {
			if p.Name == bin {
				if err := p.Stop(); err != nil {
					t.Fatalf("stopping the previous fastnat: %v", err)
				}
			}
		}
		dir := t.TempDir()
		cfg := filepath.Join(dir, "fastnat.toml")
		if err := os.WriteFile(cfg, []byte(fastnatConfig(ftpMapping, extra, filepath.Join(dir, "fastnat.sock"))), 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := topo.Start(topo.Router, bin, "run", "-c", cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.Name = bin
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.Output(), "fastnat running") {
			if done, err := p.Exited(); done {
				t.Fatalf("fastnat exited: %v\n%s", err, p.Output())
			}
			if time.Now().After(deadline) {
				t.Fatalf("fastnat did not start in 10s:\n%s", p.Output())
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Cleanup(func() {
			if err := p.Stop(); err != nil {
				t.Errorf("fastnat stop: %v", err)
			}
			if t.Failed() {
				t.Logf("fastnat output:\n%s", tailString(p.Output(), 8192))
			}
		})
	},
}
