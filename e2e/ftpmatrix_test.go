package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// The FTP interoperability matrix: four FTP servers (vsftpd, proftpd,
// pure-ftpd, pyftpdlib) and seven clients (curl, lftp, wget, tnftp, ncftp,
// Python's ftplib, busybox), in every data-connection mode each client can
// use over IPv4, in both directions of the case — the server inside
// published by nat server on public:9091 → inside:2021, and the client
// inside going out through nat outbound to a server on port 9091 — with
// ftp mapped to 9091. Every cell downloads a file and, where the client
// can, uploads one, on the first try, sha256 checked at the other end,
// and leaves no socket closing; then, without the mapping, every server
// reproduces the case (a passive download from outside fails).
//
// By default a diagonal runs (every server and every client at least
// once, every mode at least once in each direction); FASTNAT_FTP_MATRIX=1
// runs every cell, through fastnat and through the kernel's NAT with its
// FTP helper on 9091.

// matrixFull reports whether the whole matrix was asked for.
func matrixFull() bool { return os.Getenv("FASTNAT_FTP_MATRIX") == "1" }

// ftpCell is one cell of the matrix.
type ftpCell struct {
	inside bool // the client inside (nat outbound); else the server inside (nat server)
	daemon testnet.Daemon
	tool   testnet.Tool
	mode   testnet.Mode
}

func (c ftpCell) direction() string {
	if c.inside {
		return "client-inside"
	}
	return "server-inside"
}

func (c ftpCell) String() string {
	return fmt.Sprintf("%s/%s/%s/%s", c.direction(), c.daemon, c.tool, c.mode)
}

// ftpDiagonal covers every server and every client at least once and
// every mode at least once in each direction, pairing them differently
// in the two directions.
var ftpDiagonal = []ftpCell{
	{false, testnet.Vsftpd, testnet.Curl, testnet.PASV},
	{false, testnet.ProFTPD, testnet.LFTP, testnet.EPSV},
	{false, testnet.PureFTPd, testnet.Wget, testnet.PORT},
	{false, testnet.Pyftpdlib, testnet.TNFTP, testnet.EPRT},
	{false, testnet.Vsftpd, testnet.NcFTP, testnet.PORT},
	{false, testnet.ProFTPD, testnet.FTPLib, testnet.EPRT},
	{false, testnet.PureFTPd, testnet.Busybox, testnet.EPSV},
	{true, testnet.ProFTPD, testnet.Curl, testnet.EPRT},
	{true, testnet.PureFTPd, testnet.LFTP, testnet.PASV},
	{true, testnet.Pyftpdlib, testnet.Wget, testnet.PASV},
	{true, testnet.Vsftpd, testnet.TNFTP, testnet.PORT},
	{true, testnet.PureFTPd, testnet.NcFTP, testnet.PORT},
	{true, testnet.Pyftpdlib, testnet.FTPLib, testnet.EPSV},
	{true, testnet.Vsftpd, testnet.Busybox, testnet.EPSV},
}

// ftpMatrixCells returns the cells to run.
func ftpMatrixCells(full bool) []ftpCell {
	if !full {
		return ftpDiagonal
	}
	var cells []ftpCell
	for _, inside := range []bool{false, true} {
		for _, d := range testnet.Daemons {
			for _, tool := range testnet.AllTools {
				for _, m := range testnet.Modes {
					if tool.Supports(m) {
						cells = append(cells, ftpCell{inside, d, tool, m})
					}
				}
			}
		}
	}
	return cells
}

// TestFTPMatrixDiagonal checks that the default cells cover what they
// promise.
func TestFTPMatrixDiagonal(t *testing.T) {
	type dm struct {
		inside bool
		mode   testnet.Mode
	}
	daemons, tools, modes := map[testnet.Daemon]bool{}, map[testnet.Tool]bool{}, map[dm]bool{}
	for _, c := range ftpDiagonal {
		if !c.tool.Supports(c.mode) {
			t.Errorf("%v: %v cannot use %v", c, c.tool, c.mode)
		}
		daemons[c.daemon], tools[c.tool], modes[dm{c.inside, c.mode}] = true, true, true
	}
	for _, d := range testnet.Daemons {
		if !daemons[d] {
			t.Errorf("no cell for %v", d)
		}
	}
	for _, tool := range testnet.AllTools {
		if !tools[tool] {
			t.Errorf("no cell for %v", tool)
		}
	}
	for _, inside := range []bool{false, true} {
		for _, m := range testnet.Modes {
			if !modes[dm{inside, m}] {
				t.Errorf("no cell for %v with the client inside=%v", m, inside)
			}
		}
	}
}

func TestFastnatFTPMatrix(t *testing.T) {
	requireFastnat(t)
	requireMatrix(t)
	ftpMatrix(t, fastnatRouter, ftpMatrixCells(matrixFull()))
}

func TestKernelNATFTPMatrix(t *testing.T) {
	requireHarness(t)
	if !matrixFull() {
		t.Skip("the kernel's matrix runs with FASTNAT_FTP_MATRIX=1, beside fastnat's whole matrix")
	}
	requireMatrix(t)
	ftpMatrix(t, kernelRouter, ftpMatrixCells(true))
}

// requireMatrix skips the test unless every server and client of the
// matrix is installed.
func requireMatrix(t *testing.T) {
	t.Helper()
	if err := testnet.CheckTools("proftpd", "pure-ftpd", "/usr/bin/python3", "python3", "wget", "tnftp", "ncftpget", "ncftpput", "busybox"); err != nil {
		t.Skipf("e2e: %v; scripts/setup.sh installs them (.ci/run runs it)", err)
	}
	if out, err := exec.Command("/usr/bin/python3", "-c", "import pyftpdlib").CombinedOutput(); err != nil {
		t.Skipf("e2e: no pyftpdlib (%v: %s); install the Debian package python3-pyftpdlib", err, out)
	}
}

// The matrix's file sizes: a download of many windows, a smaller upload.
const (
	matrixGetSize = 1 << 20
	matrixPutSize = 256 << 10
)

// ftpMatrix runs cells through r, one server program at a time (each
// listens on the case's ports in both directions), then the case without
// the mapping for every server that had cells.
func ftpMatrix(t *testing.T, r router, cells []ftpCell) {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	r.setup(t, topo, true, nil)
	put := filepath.Join(t.TempDir(), "upload.bin")
	putSum, err := testnet.WriteRandomFile(put, matrixPutSize, 0x5707)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	results := map[string]string{}
	record := func(c ftpCell, what, res string) {
		mu.Lock()
		results[c.String()+" "+what] = res
		mu.Unlock()
	}
	var daemons []testnet.Daemon
	for _, d := range testnet.Daemons {
		var mine []ftpCell
		for _, c := range cells {
			if c.daemon == d {
				mine = append(mine, c)
			}
		}
		if len(mine) == 0 {
			continue
		}
		daemons = append(daemons, d)
		t.Run(d.String(), func(t *testing.T) {
			sides := startMatrixServers(t, topo, d)
			for _, c := range mine {
				side := sides[0]
				if c.inside {
					side = sides[1]
				}
				t.Run(c.direction()+"/"+c.tool.String()+"/"+c.mode.String(), func(t *testing.T) {
					ftpMatrixCell(ctx, t, topo, c, side, put, putSum, record)
				})
			}
			// A client inside that knows its public address announces it
			// (lftp's ftp:port-ipv4, the setting for active mode behind a
			// NAT): the data connection must still reach it.
			t.Run("client-inside/lftp/PORT/public-address", func(t *testing.T) {
				c := ftpCell{true, d, testnet.LFTP, testnet.PORT}
				_, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
					NS: topo.Host, Tool: c.tool, Mode: c.mode, URL: sides[1].url, Dst: filepath.Join(t.TempDir(), sides[1].f.name),
					ConnectTimeout: 3 * time.Second, Timeout: 20 * time.Second, LFTPSet: []string{"ftp:port-ipv4 " + testnet.PublicAddr.String()},
				}, sides[1].f.sha256)
				checkAnnouncedPublic(t, r, c, "public address", err, record)
				waitClosed(ctx, t, topo)
			})
			for _, s := range sides {
				_ = s.f.server.Stop()
			}
			// A server inside configured with the public address to
			// announce (vsftpd pasv_address, proftpd MasqueradeAddress,
			// pure-ftpd -P, pyftpdlib --nat-address), as operators set one
			// up behind a NAT: its 227 names the NAT's address already.
			t.Run("server-inside/curl/PASV/public-address", func(t *testing.T) {
				c := ftpCell{false, d, testnet.Curl, testnet.PASV}
				f := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP, Daemon: d, PasvAddress: testnet.PublicAddr}, matrixGetSize)
				defer f.server.Stop()
				res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
					NS: topo.Client, Tool: c.tool, Mode: c.mode, URL: f.server.URL(publicFTP, f.name), Dst: filepath.Join(t.TempDir(), f.name),
					ConnectTimeout: 3 * time.Second, Timeout: 20 * time.Second,
				}, f.sha256)
				if reply := res.Reply("227"); !strings.Contains(reply, "(198,18,0,204,") {
					t.Errorf("227 reply %q: want the public address the server announces", reply)
				}
				checkAnnouncedPublic(t, r, c, "public address", err, record)
				waitClosed(ctx, t, topo)
			})
		})
	}
	// The case: without the mapping, a passive download from a server
	// inside fails, whichever server it is — its 227 names the inside
	// address, and nothing translates a connection to it.
	r.setup(t, topo, false, nil)
	for _, d := range daemons {
		t.Run("unmapped/"+d.String(), func(t *testing.T) {
			f := startMatrixServer(t, topo, d, false)
			defer f.server.Stop()
			c := ftpCell{false, d, testnet.Curl, testnet.PASV}
			res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
				NS: topo.Client, Tool: c.tool, Mode: c.mode, URL: f.server.URL(publicFTP, f.name),
				Dst: filepath.Join(t.TempDir(), f.name), ConnectTimeout: 2 * time.Second, Timeout: 20 * time.Second,
			}, f.sha256)
			if err == nil {
				record(c, "unmapped", "ok (want failure)")
				t.Fatal("the passive download succeeded without the mapping; want the case's failure")
			}
			if reply := res.Reply("227"); !strings.Contains(reply, "10,77,0,226,") {
				t.Errorf("227 reply %q: want the unrewritten inside address", reply)
			}
			record(c, "unmapped", "fails as in the case")
			waitClosed(ctx, t, topo)
		})
	}
	var keys []string
	for k := range results {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%-52s %s\n", k, results[k])
	}
	t.Logf("FTP matrix through %s:\n%s", r.name, b.String())
}

// startMatrixServers starts daemon d in both directions, uploads allowed:
// inside on the case's port, reached as public:9091, and outside on 9091.
func startMatrixServers(t *testing.T, topo *testnet.Topology, d testnet.Daemon) [2]ftpSide {
	t.Helper()
	in := startMatrixServer(t, topo, d, false)
	out := startMatrixServer(t, topo, d, true)
	return [2]ftpSide{
		{"server-inside", topo.Client, in.server.URL(publicFTP, in.name), in},
		{"client-inside", topo.Host, out.server.URL(outsideFTP, out.name), out},
	}
}

// startMatrixServer starts daemon d inside (on insideFTP) or outside (on
// outsideFTP) with a file of matrixGetSize and uploads allowed.
func startMatrixServer(t *testing.T, topo *testnet.Topology, d testnet.Daemon, outside bool) ftpFixture {
	t.Helper()
	cfg := testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP, Daemon: d, Upload: true}
	if outside {
		cfg.NS, cfg.Addr = topo.Client, outsideFTP
	}
	return startFTPSized(t, topo, cfg, matrixGetSize)
}

// ftpMatrixCell downloads and, where the client can, uploads in one cell,
// and checks that every socket has closed.
func ftpMatrixCell(ctx context.Context, t *testing.T, topo *testnet.Topology, c ftpCell, side ftpSide,
	put, putSum string, record func(ftpCell, string, string)) {
	spec := testnet.FetchSpec{
		NS: side.ns, Tool: c.tool, Mode: c.mode, URL: side.url,
		Dst: filepath.Join(t.TempDir(), side.f.name), ConnectTimeout: 5 * time.Second, Timeout: 30 * time.Second,
	}
	res, err := testnet.FetchCheck(ctx, spec, side.f.sha256)
	if err != nil {
		record(c, "get", "FAIL")
		t.Fatal(err)
	}
	if c.mode == testnet.PASV && !c.inside {
		if reply := res.Reply("227"); reply != "" && !strings.Contains(reply, "198,18,0,204,") {
			t.Errorf("227 reply %q does not name the public address", reply)
		}
	}
	record(c, "get", fmt.Sprintf("ok %v", res.Elapsed.Round(time.Millisecond)))
	if c.tool.CanUpload() {
		name := strings.NewReplacer("/", "-").Replace(c.String()) + ".bin"
		spec.Src = put
		u, err := url.Parse(side.url)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + testnet.UploadDir + "/" + name
		spec.URL = u.String()
		res, err := testnet.Fetch(ctx, spec)
		if err != nil {
			record(c, "put", "FAIL")
			t.Fatal(err)
		}
		if err := waitUploaded(side.f.server.UploadPath(name), putSum); err != nil {
			record(c, "put", "FAIL")
			t.Fatalf("%v\n%s", err, tailString(res.Transcript, 4096))
		}
		record(c, "put", fmt.Sprintf("ok %v", res.Elapsed.Round(time.Millisecond)))
	}
	waitClosed(ctx, t, topo)
}

// waitUploaded waits up to 5 s for the file at path to have sha256 sum
// (a server may finish writing after the client has its reply).
func waitUploaded(path, sum string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, n, err := testnet.FileSHA256(path)
		if err == nil && got == sum {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("uploaded file %s: sha256 %s (%d bytes, %v), want %s: %w", path, got, n, err, sum, testnet.ErrChecksum)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAnnouncedPublic judges a transfer whose data endpoint was
// announced with the NAT's public address by the host behind it: fastnat
// takes the public address for the sender's own and prepares the data
// connection; the kernel's FTP helper records no expectation for an
// address other than the sender's real one (nf_conntrack_ftp: "NOT
// RECORDING"), so the data connection finds nothing to translate it.
func checkAnnouncedPublic(t *testing.T, r router, c ftpCell, what string, err error, record func(ftpCell, string, string)) {
	t.Helper()
	switch {
	case r.name == kernelRouter.name && err == nil:
		record(c, what, "ok (the kernel's helper was expected to fail)")
		t.Errorf("the kernel's NAT carried a data connection announced with the public address; its helper used not to")
	case r.name == kernelRouter.name:
		record(c, what, "fails (no expectation for the public address)")
	case err != nil:
		record(c, what, "FAIL")
		t.Fatal(err)
	default:
		record(c, what, "ok")
	}
}
