package e2e

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// fragMTU is the path MTU the FTP hosts of the fragmented-control tests
// lock on their routes through the NAT, and fragMSS the smallest MSS
// their TCP may use (net.ipv4.tcp_min_snd_mss). TCP then sends segments
// of up to fragMSS bytes, above the path MTU, and with the MTU locked the
// kernel clears Don't Fragment and cuts every segment that carries data
// into IPv4 fragments of 48 data bytes — as a host with path MTU
// discovery off behind a small-MTU link sends them — while each FTP line
// still fits one segment: Linux's FTP helper drops a segment that ends
// inside a 227 line (a partial match), so lines split over segments
// would hang the kernel's twin for a reason of its own.
const (
	fragMTU = 68
	fragMSS = 536
)

// TestFastnatFTPFragmentedControl: FTP through fastnat when every control
// segment with data arrives in IPv4 fragments, both ways, for an inside
// client (its PORT and EPRT rewritten) and an inside server (its 227
// rewritten). The ALG reassembles each segment to inspect it; every
// transfer completes with the file's sha256, as through the kernel's NAT
// (TestKernelNATFTPFragmentedControl), which reassembles before its FTP
// helper.
func TestFastnatFTPFragmentedControl(t *testing.T) {
	requireFastnat(t)
	topo := fastnatRouter.newTopology(t, true)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fastnat.sock")
	cfg := filepath.Join(dir, "fastnat.toml")
	writeFile(t, cfg, fastnatConfig(true, nil, sock))
	startFastnat(t, topo, cfg)
	ftpFragmentedControl(t, topo)
	var s metrics.Snapshot
	if err := json.Unmarshal([]byte(fastnatShow(t, sock, "stats", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	t.Logf("ftp alg: reassembled %d, frag_dropped %d, rewritten %d", s.FTP["reassembled"], s.FTP["frag_dropped"], s.FTP["rewritten"])
	if s.FTP["reassembled"] == 0 || s.FTP["rewritten"] == 0 {
		t.Errorf("the ALG reassembled %d segments and rewrote %d lines", s.FTP["reassembled"], s.FTP["rewritten"])
	}
}

// TestKernelNATFTPFragmentedControl is the same on the kernel's NAT.
func TestKernelNATFTPFragmentedControl(t *testing.T) {
	requireHarness(t)
	topo := kernelRouter.newTopology(t, true)
	kernelRouter.setup(t, topo, true, nil)
	ftpFragmentedControl(t, topo)
}

func ftpFragmentedControl(t *testing.T, topo *testnet.Topology) {
	ctx := testContext(t)
	// The inside FTP client and server send in fragments: the endpoints
	// the NAT rewrites come from them, and so do the replies to the
	// outside client's commands and the passive data.
	lock := []string{"mtu", "lock", strconv.Itoa(fragMTU), "advmss", "1460"}
	gw := testnet.RouterInsideAddr.String()
	for _, ns := range []string{topo.Host, topo.Server} {
		testnet.MustRun(t, ns, "sysctl", "-q", "-w", "net.ipv4.tcp_min_snd_mss="+strconv.Itoa(fragMSS))
		testnet.MustRun(t, ns, "ip", append([]string{"route", "replace", "default", "via", gw}, lock...)...)
	}
	sides := []struct {
		name      string
		ns        string // the client's
		url       string
		f         ftpFixture
		rewritten func(testnet.Mode) bool // the inside end announces an endpoint in this mode
	}{
		{name: "client inside", ns: topo.Host, rewritten: func(m testnet.Mode) bool { return !m.Passive() }},
		{name: "server inside", ns: topo.Client, rewritten: testnet.Mode.Passive},
	}
	out := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Client, Addr: outsideFTP}, smallFile)
	sides[0].url, sides[0].f = out.server.URL(outsideFTP, out.name), out
	in := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP}, smallFile)
	sides[1].url, sides[1].f = in.server.URL(publicFTP, in.name), in
	for _, sd := range sides {
		for _, mode := range testnet.Modes {
			t.Run(sd.name+"/"+mode.String(), func(t *testing.T) {
				before := fragCreates(t, topo)
				res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
					NS: sd.ns, Tool: testnet.Curl, Mode: mode, URL: sd.url,
					Dst:     filepath.Join(t.TempDir(), sd.f.name),
					Timeout: 60 * time.Second,
				}, sd.f.sha256)
				if err != nil {
					t.Fatal(err)
				}
				// The endpoint the NAT rewrites came in fragments.
				if n := fragCreates(t, topo) - before; n == 0 && sd.rewritten(mode) {
					t.Errorf("the FTP hosts made no fragments")
				}
				if mode == testnet.PASV && sd.ns == topo.Client {
					if r := res.Reply("227"); !strings.Contains(r, "(198,18,0,204,") {
						t.Errorf("227 reply %q does not name the public address", r)
					}
				}
				t.Logf("%d bytes in %v", res.Size, res.Elapsed.Round(time.Millisecond))
			})
		}
	}
	// What the outside server accepted named only the public address.
	log := out.server.Log()
	for _, want := range []string{`"PORT 198,18,0,204,`, `"EPRT |1|198.18.0.204|`} {
		if !strings.Contains(log, want) {
			t.Errorf("outside server log lacks %s:\n%s", want, tailString(log, 4096))
		}
	}
}

// fragCreates sums the IPv4 fragments the FTP hosts' kernels made
// (Ip FragCreates).
func fragCreates(t *testing.T, topo *testnet.Topology) uint64 {
	t.Helper()
	var sum uint64
	for _, ns := range []string{topo.Host, topo.Server, topo.Client} {
		n, err := testnet.SNMPCounter(ns, "Ip", "FragCreates")
		if err != nil {
			t.Fatal(err)
		}
		sum += n
	}
	return sum
}
