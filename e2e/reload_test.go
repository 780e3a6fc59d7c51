package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
)

// metricsAddr is where the reload test's fastnat serves /metrics, inside
// the router namespace.
var metricsAddr = netip.MustParseAddrPort("127.0.0.1:9300")

// startFastnat runs `fastnat run -c cfg args...` in the router namespace
// and waits until its control socket is up. It is stopped at cleanup, with
// its log shown if the test failed.
func startFastnat(t *testing.T, topo *testnet.Topology, cfg string, args ...string) *testnet.Process {
	t.Helper()
	bin := fastnatBinary(t)
	p, err := topo.Start(topo.Router, bin, append([]string{"run", "-c", cfg}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.Name = bin
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("fastnat stop: %v", err)
		}
		if t.Failed() {
			t.Logf("fastnat output:\n%s", tailString(p.Output(), 8192))
		}
	})
	controlSocket(t, p)
	return p
}

var controlSocketLine = regexp.MustCompile(`msg="control socket" path=(\S+)`)

// controlSocket waits until fastnat p logs its control socket and returns
// the socket's path.
func controlSocket(t *testing.T, p *testnet.Process) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := controlSocketLine.FindStringSubmatch(p.Output()); m != nil {
			return strings.Trim(m[1], `"`)
		}
		if done, err := p.Exited(); done {
			t.Fatalf("fastnat exited: %v\n%s", err, p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("fastnat did not open its control socket in 10s:\n%s", p.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fastnatCLI runs the fastnat binary (show, reload) from the test's own
// namespace: the control socket is a file, reachable from any namespace.
func fastnatCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(fastnatBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("fastnat %v: %v", args, err)
	}
	return code, o.String(), e.String()
}

// TestFastnatReload: an FTP download in progress survives a reload that
// adds the port mapping, and a new passive session uses the mapping; a
// file with errors is refused, over the control socket and on SIGHUP, and
// the daemon keeps running with its configuration.
//
// The download in progress must work before the mapping exists, so it
// uses active mode (PORT): the client names its own, public address, and
// the server's data connection from port 20 is ordinary outbound traffic
// through nat outbound — no ALG needed. It is slowed down (curl
// --limit-rate) so that the reload happens in the middle of it.
func TestFastnatReload(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, false)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "fastnat.toml")
	sock := filepath.Join(dir, "fastnat.sock")
	pcap := filepath.Join(dir, "drops.pcap")
	metricsConf := fmt.Sprintf("\n[metrics]\nlisten = %q\n", metricsAddr)
	unmapped := fastnatConfig(false, nil, sock) + metricsConf
	mapped := fastnatConfig(true, nil, sock) + metricsConf
	writeFile(t, cfg, unmapped)
	p := startFastnat(t, topo, cfg, "--pcap-drops", pcap)
	f := startFTP(t, topo, topo.Server, insideFTP)
	url := f.server.URL(publicFTP, f.name)

	// Without the mapping a passive transfer fails, as in the case.
	if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS: topo.Client, Tool: testnet.Curl, Mode: testnet.PASV, URL: url,
		Dst: filepath.Join(t.TempDir(), f.name), ConnectTimeout: 2 * time.Second, Timeout: 10 * time.Second,
	}, f.sha256); err == nil {
		t.Fatal("passive transfer succeeded before the mapping was added")
	}

	// The slow active-mode download: 8 MiB at 2 MB/s, about 4 s.
	slowDst := filepath.Join(t.TempDir(), "slow-"+f.name)
	slow := testnet.Command(ctx, topo.Client, "curl", "--silent", "--show-error", "--fail",
		"--ftp-port", "-", "--disable-eprt", "--limit-rate", "2M", "--max-time", "60", "--output", slowDst, url)
	var slowErr bytes.Buffer
	slow.Stderr = &slowErr
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	slowDone := make(chan error, 1)
	go func() { slowDone <- slow.Wait() }()
	waitSize(t, slowDst, 256<<10, slowDone)

	// Reload with the mapping while it runs.
	writeFile(t, cfg, mapped)
	code, out, errOut := fastnatCLI(t, "reload", "-c", cfg)
	if code != 0 || out != fmt.Sprintf("reloaded %s (1 port mappings)\n", cfg) {
		t.Fatalf("fastnat reload: exit %d\n%s%s", code, out, errOut)
	}
	size := sizeOf(slowDst)
	if size >= fileSize {
		t.Fatalf("the slow download had finished (%d bytes) before the reload", size)
	}
	t.Logf("reloaded with the download at %d of %d bytes", size, fileSize)
	select {
	case err := <-slowDone:
		t.Fatalf("the slow download ended right after the reload: %v %s", err, slowErr.String())
	default:
	}

	// A new passive session uses the mapping: the ALG rewrites the 227.
	res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS: topo.Client, Tool: testnet.Curl, Mode: testnet.PASV, URL: url,
		Dst: filepath.Join(t.TempDir(), f.name), Timeout: 30 * time.Second,
	}, f.sha256)
	if err != nil {
		t.Fatalf("passive transfer after the reload: %v", err)
	}
	if r := res.Reply("227"); !strings.Contains(r, "(198,18,0,204,") {
		t.Errorf("227 reply %q: want the public address after the reload", r)
	}

	// The download that was in progress completes intact.
	select {
	case err := <-slowDone:
		if err != nil {
			t.Fatalf("slow download: %v: %s", err, slowErr.String())
		}
	case <-ctx.Done():
		t.Fatal("slow download did not finish")
	}
	if sum, size, err := testnet.FileSHA256(slowDst); err != nil || sum != f.sha256 {
		t.Fatalf("slow download: %d bytes, sha256 %s (err %v), want %s", size, sum, err, f.sha256)
	}

	// A broken file is refused over the control socket: exit 2 with the
	// positioned error.
	broken := mapped + "\n[[port_mapping]]\napplication = \"gopher\"\nport = 7070\n"
	writeFile(t, cfg, broken)
	wantPos := fmt.Sprintf("%s:%d:15: port_mapping[1].application", cfg, lineOf(broken, `application = "gopher"`))
	code, _, errOut = fastnatCLI(t, "reload", "--socket", sock)
	if code != 2 || !strings.Contains(errOut, wantPos) {
		t.Fatalf("reload of a broken file: exit %d, stderr %q; want 2 and %q", code, errOut, wantPos)
	}
	// And on SIGHUP, logged with its position.
	if err := syscall.Kill(p.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, p, 2, "reload refused", wantPos)
	if done, err := p.Exited(); done {
		t.Fatalf("fastnat exited after a refused reload: %v", err)
	}
	// The running configuration (with the mapping) still applies.
	if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS: topo.Client, Tool: testnet.Curl, Mode: testnet.PASV, URL: url,
		Dst: filepath.Join(t.TempDir(), f.name), Timeout: 30 * time.Second,
	}, f.sha256); err != nil {
		t.Fatalf("passive transfer after the refused reloads: %v", err)
	}

	// Metrics count the reloads; an unsolicited datagram is dropped,
	// counted and captured (and answered port unreachable, so the
	// exchange may end before the capture's writer has written it).
	if n, err := testnet.UDPExchange(ctx, topo.Client, netip.AddrPortFrom(testnet.PublicAddr, 7777), [][]byte{[]byte("nobody home")}, 200*time.Millisecond); err != nil || n != 0 {
		t.Fatalf("unsolicited datagram: %d echoes, %v", n, err)
	}
	written := regexp.MustCompile(`(?m)^fastnat_drop_capture_frames_total\{result="written"\} [1-9]\d*$`)
	waitFor(t, "the drop capture to write the datagram", func() bool { return written.MatchString(scrape(t, topo)) })
	m := scrape(t, topo)
	for _, want := range []string{
		`(?m)^fastnat_config_reloads_total\{result="ok"\} 1$`,
		`(?m)^fastnat_config_reloads_total\{result="refused"\} 2$`,
		`(?m)^fastnat_worker_drops_total\{queue="0",reason="nat_unsolicited",worker="0"\} [1-9]\d*$`,
		`(?m)^fastnat_ftp_alg_rewritten_total\{mapping="port_mapping\[0\]"\} [1-9]\d*$`,
		`(?m)^fastnat_ftp_alg_rewritten_total\{mapping="default"\} 0$`,
		`(?m)^fastnat_sessions\{app="ftp",protocol="tcp"\} [1-9]\d*$`,
		`(?m)^fastnat_interface_rx_packets_total\{interface="outside",queue="0",worker="0"\} [1-9]\d*$`,
		`(?m)^fastnat_worker_busy_seconds_total\{queue="0",worker="0"\} \d`,
		`(?m)^fastnat_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1$`,
		`(?m)^fastnat_config_last_reload_successful 0$`, // the last reload was refused
		`(?m)^fastnat_start_time_seconds \d`,
		`(?m)^fastnat_pool_ports_capacity\{address="198\.18\.0\.204",protocol="tcp"\} 64512$`,
		`(?m)^fastnat_drop_capture_frames_total\{result="written"\} [1-9]\d*$`,
	} {
		if !regexp.MustCompile(want).MatchString(m) {
			t.Errorf("/metrics does not match %s", want)
		}
	}
	if !capturedUDP(t, pcap, 7777) {
		t.Errorf("the unsolicited datagram is not in %s", pcap)
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sizeOf(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// lineOf is the 1-based line of the first line of s holding sub.
func lineOf(s, sub string) int {
	for i, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return i + 1
		}
	}
	return 0
}

// waitSize waits until path holds at least n bytes; done reports the
// download's end, which must not come first.
func waitSize(t *testing.T, path string, n int64, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for sizeOf(path) < n {
		select {
		case err := <-done:
			t.Fatalf("download ended after %d bytes: %v", sizeOf(path), err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("download stuck at %d bytes", sizeOf(path))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitOutput waits up to secs seconds for a line of p's output holding
// every string in want.
func waitOutput(t *testing.T, p *testnet.Process, secs int, want ...string) {
	t.Helper()
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		for _, line := range strings.Split(p.Output(), "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fastnat did not log a line with %q in %ds:\n%s", want, secs, tailString(p.Output(), 4096))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches /metrics from fastnat in the router namespace.
func scrape(t *testing.T, topo *testnet.Topology) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := testnet.DialTCP(ctx, topo.Router, metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", metricsAddr)
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("HTTP/1.0 200")) {
		t.Fatalf("/metrics answered %.200q", b)
	}
	return string(b)
}

// capturedUDP reports whether the pcap file at path holds a UDP datagram
// to port, decoded by gopacket. It waits a little for the writer.
func capturedUDP(t *testing.T, path string, port layers.UDPPort) bool {
	t.Helper()
	for range 50 {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 && binary.BigEndian.Uint32(b) != 0xa1b2c3d4 {
			t.Fatalf("%s is not a pcap file", path)
		}
		bo := binary.ByteOrder(binary.LittleEndian)
		if binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 {
			bo = binary.BigEndian
		}
		for r := b[24:]; len(r) >= 16; {
			n := int(bo.Uint32(r[8:]))
			if len(r) < 16+n {
				break
			}
			pkt := gopacket.NewPacket(r[16:16+n], layers.LayerTypeEthernet, gopacket.Default)
			if u, ok := pkt.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && u.DstPort == port {
				return true
			}
			r = r[16+n:]
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
