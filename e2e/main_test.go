package e2e

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// fileSize is the size of the file every FTP test fetches: large enough
// that a transfer takes many windows of data, small enough to be quick.
const fileSize = 8 << 20

// requireHarness skips the test unless it runs as root with every program
// the harness drives installed.
func requireHarness(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("e2e: needs root (network namespaces); run as root, as .ci/run does")
	}
	if err := testnet.CheckTools("ip", "ethtool", "sysctl", "nft", "vsftpd", "curl", "lftp"); err != nil {
		tb.Skipf("e2e: %v; install the Debian packages vsftpd lftp curl iproute2 nftables ethtool procps (.ci/run does)", err)
	}
}

// testContext returns a context that ends a little before the test's
// deadline, so a hung client is killed while the test can still report.
func testContext(t *testing.T) context.Context {
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-5*time.Second))
		t.Cleanup(cancel)
	}
	return ctx
}

// ftpFixture is an FTP server with one random file of fileSize bytes.
type ftpFixture struct {
	server *testnet.FTPServer
	name   string // file name on the server
	sha256 string
}

// startFTP starts vsftpd in ns on addr serving a random file (fixed seed,
// so every run moves the same bytes).
func startFTP(t *testing.T, topo *testnet.Topology, ns string, addr netip.AddrPort) ftpFixture {
	t.Helper()
	s := topo.MustStartFTPServer(t, testnet.FTPServerConfig{NS: ns, Addr: addr})
	const name = "payload.bin"
	sum := testnet.MustWriteRandomFile(t, filepath.Join(s.Root(), name), fileSize, 0x9091)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("vsftpd %s log:\n%s", addr, tailString(s.Log(), 8192))
		}
	})
	return ftpFixture{server: s, name: name, sha256: sum}
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
