package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/portmap"
)

// mainEnv makes the test binary act as the fastnat binary: the demo test
// starts it in the router namespace as "fastnat run" and runs "fastnat
// show" with it, so the daemon under test is this very build.
const mainEnv = "FASTNAT_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	// Commands that start "fastnat" as os.Executable() (the demo) start
	// this binary; it must act as fastnat there, never run the tests again.
	os.Setenv(mainEnv, "1")
	os.Exit(m.Run())
}

func TestDemoConfig(t *testing.T) {
	be32 := func(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }
	for _, mapping := range []bool{false, true} {
		name := "without mapping"
		if mapping {
			name = "with mapping"
		}
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Parse("demo.toml", []byte(demoConfig("/tmp/fnt-x/fastnat.sock", mapping)))
			if err != nil {
				t.Fatal(err)
			}
			// The embedded text must agree with testnet's addressing plan.
			if len(cfg.Interfaces) != 2 ||
				cfg.Interfaces[0].Name != testnet.RouterOutsideLink || cfg.Interfaces[0].Role != config.RoleOutside ||
				cfg.Interfaces[1].Name != testnet.RouterInsideLink || cfg.Interfaces[1].Role != config.RoleInside {
				t.Errorf("interfaces %+v, want testnet's outside and inside links", cfg.Interfaces)
			}
			if o := cfg.NAT.Outbound; len(o) != 1 || len(o[0].Inside) != 1 || o[0].Inside[0] != testnet.InsideNet ||
				len(o[0].Pool) != 1 || o[0].Pool[0] != testnet.PublicAddr {
				t.Errorf("outbound %+v, want %v behind %v", o, testnet.InsideNet, testnet.PublicAddr)
			}
			want := []config.Server{
				{Proto: portmap.ProtoTCP, Public: demoPublicFTP, Inside: demoInsideFTP},
				{Proto: portmap.ProtoUDP, Public: demoPublicUDP, Inside: demoInsideUDP},
			}
			if len(cfg.NAT.Server) != len(want) {
				t.Fatalf("servers %+v, want %+v", cfg.NAT.Server, want)
			}
			for i, s := range cfg.NAT.Server {
				if s.Proto != want[i].Proto || s.Public != want[i].Public || s.Inside != want[i].Inside {
					t.Errorf("server %d: %+v, want %+v", i, s, want[i])
				}
			}
			if cfg.Control.Socket != "/tmp/fnt-x/fastnat.sock" {
				t.Errorf("control socket %q", cfg.Control.Socket)
			}
			// The case: the FTP control connection to public:9091,
			// translated to inside:2021, is FTP only with the mapping.
			app, _ := cfg.PortMap.Classify(portmap.ProtoTCP,
				be32(demoPublicFTP.Addr()), demoPublicFTP.Port(), be32(demoInsideFTP.Addr()), demoInsideFTP.Port())
			if got := app == portmap.AppFTP; got != mapping {
				t.Errorf("9091/tcp classified as %v; want FTP: %v", app, mapping)
			}
		})
	}
}

func TestDemoPreflight(t *testing.T) {
	all := func(string) bool { return true }
	without := func(missing ...string) func(string) bool {
		return func(p string) bool {
			for _, m := range missing {
				if p == m {
					return false
				}
			}
			return true
		}
	}
	tests := []struct {
		name  string
		euid  int
		found func(string) bool
		want  string // substring of the error; "" for none
	}{
		{"root with every tool", 0, all, ""},
		{"not root", 1000, all, "needs root"},
		{"not root is reported before tools", 1000, without("vsftpd"), "sudo ./scripts/demo"},
		{"vsftpd and curl missing", 0, without("vsftpd", "curl"), "vsftpd, curl not installed; install the Debian packages with `apt-get install vsftpd curl`"},
		{"sysctl comes with procps", 0, without("sysctl"), "apt-get install procps"},
		{"ip comes with iproute2", 0, without("ip"), "apt-get install iproute2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := demoPreflight(tc.euid, tc.found)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestLogLines(t *testing.T) {
	out := "time=2026-01-01T00:00:00Z level=INFO msg=serving interface=outside\n" +
		"time=2026-01-01T00:00:00Z level=WARN msg=other\n" +
		"level=INFO msg=\"fastnat running\" workers=2\n"
	got := logLines(out, "serving", "fastnat running")
	want := "level=INFO msg=serving interface=outside\nlevel=INFO msg=\"fastnat running\" workers=2\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := tailLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("tailLines: %q", got)
	}
}

// requireDemo skips unless the demo can run here, and returns options
// that make the test binary (see TestMain) the fastnat it runs.
func requireDemo(t *testing.T) demoOptions {
	t.Helper()
	if err := demoPreflight(os.Geteuid(), toolFound); err != nil {
		t.Skipf("demo: %v", err)
	}
	if testing.Short() {
		t.Skip("demo: builds namespaces and runs fastnat; skipped with -short")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return demoOptions{bin: exe, fileSize: 1 << 20, bench: time.Second, queues: 2}
}

// removedNamespaces returns the namespaces the teardown says it removed
// and checks that they are gone.
func removedNamespaces(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`removed (fnt-\w+-cli), (fnt-\w+-rtr), (fnt-\w+-srv) and `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no teardown line in the output:\n%s", out)
	}
	for _, ns := range m[1:] {
		if _, err := os.Stat("/run/netns/" + ns); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists (%v)", ns, err)
		}
	}
}

func TestDemo(t *testing.T) {
	opt := requireDemo(t)
	var out bytes.Buffer
	err := runDemo(context.Background(), opt, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"[1/8] Building the network",
		`msg="fastnat running" workers=2`,
		"227 Entering Passive Mode (10,77,0,226,",  // the case, unrewritten
		"FAILED, as in the case",                   // ... and its failure
		`msg="configuration reloaded"`,             // the fix applied by SIGHUP
		"227 Entering Passive Mode (198,18,0,204,", // rewritten by the ALG
		"client sent: PORT 198,18,0,1,",
		"$ fastnat show sessions",
		"received ",
		`msg="worker totals" worker=1`,
		"[8/8] Teardown",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The session table shows the FTP data connections the ALG opened
	// (unless show is still a stub, which the demo reports and skips).
	if !strings.Contains(strings.ToLower(s), "ftp-data") && !strings.Contains(s, "not implemented") {
		t.Error("the session table shows no FTP data session")
	}
	if n := strings.Count(s, "sha256 matches"); n != 2 {
		t.Errorf("%d transfers with a matching sha256, want 2 (PASV and PORT)", n)
	}
	removedNamespaces(t, s)
}

// cancelOn is a writer that cancels a context once what was written
// contains a marker.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	cancel context.CancelFunc
}

func (w *cancelOn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.marker) {
		w.cancel()
	}
	return len(p), nil
}

// TestDemoInterrupted: SIGINT (a cancelled context) in the middle of the
// demo stops it, and it still removes everything it built.
func TestDemoInterrupted(t *testing.T) {
	opt := requireDemo(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &cancelOn{marker: "[4/8]", cancel: cancel}
	err := runDemo(ctx, opt, w)
	out := w.buf.String()
	t.Log("\n" + out)
	if !errors.Is(err, errDemoInterrupted) {
		t.Fatalf("error %v, want %v", err, errDemoInterrupted)
	}
	if strings.Contains(out, "[5/8]") {
		t.Error("the demo went on after the interrupt")
	}
	if strings.Contains(out, "fastnat's log:") {
		t.Error("an interrupt is not a failure to diagnose")
	}
	removedNamespaces(t, out)
}
