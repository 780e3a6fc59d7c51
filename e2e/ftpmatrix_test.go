package e2e

import (
	"context"
	"fmt"
	"net/netip"
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
	port21 bool // the server on port 21, no mapping
}

// fc is the cell of daemon d and tool in mode, with the client inside or
// the server; fc21 the same on port 21.
func fc(inside bool, d testnet.Daemon, tool testnet.Tool, mode testnet.Mode) ftpCell {
	return ftpCell{inside: inside, daemon: d, tool: tool, mode: mode}
}

func fc21(inside bool, d testnet.Daemon, tool testnet.Tool, mode testnet.Mode) ftpCell {
	c := fc(inside, d, tool, mode)
	c.port21 = true
	return c
}

func (c ftpCell) direction() string {
	if c.inside {
		return "client-inside"
	}
	return "server-inside"
}

func (c ftpCell) String() string {
	s := fmt.Sprintf("%s/%s/%s/%s", c.direction(), c.daemon, c.tool, c.mode)
	if c.port21 {
		s += "/port21"
	}
	return s
}

// The well-known port's servers: inside on 21, published as public:2121;
// outside on 21.
var (
	insideFTP21  = netip.AddrPortFrom(testnet.ServerAddr, 21)
	publicFTP21  = netip.AddrPortFrom(testnet.PublicAddr, 2121)
	outsideFTP21 = netip.AddrPortFrom(testnet.ClientAddr, 21)
)

// port21Diagonal covers every mode in each direction on port 21, two
// cells per server.
var port21Diagonal = []ftpCell{
	fc21(false, testnet.Vsftpd, testnet.Curl, testnet.EPRT), fc21(true, testnet.Vsftpd, testnet.LFTP, testnet.PASV),
	fc21(false, testnet.ProFTPD, testnet.TNFTP, testnet.PASV), fc21(true, testnet.ProFTPD, testnet.FTPLib, testnet.PORT),
	fc21(false, testnet.PureFTPd, testnet.FTPLib, testnet.EPSV), fc21(true, testnet.PureFTPd, testnet.Curl, testnet.EPSV),
	fc21(false, testnet.Pyftpdlib, testnet.LFTP, testnet.PORT), fc21(true, testnet.Pyftpdlib, testnet.TNFTP, testnet.EPRT),
}

// port21Cells returns daemon d's cells on port 21.
func port21Cells(d testnet.Daemon, full bool) []ftpCell {
	var cells []ftpCell
	for _, c := range ftpMatrixCells(full) {
		if full && c.daemon == d {
			c.port21 = true
			cells = append(cells, c)
		}
	}
	for _, c := range port21Diagonal {
		if !full && c.daemon == d {
			cells = append(cells, c)
		}
	}
	return cells
}

// setupPort21 configures r for the port-21 cells: no mapping, and the
// inside server's port 21 published as public:2121; the kernel gets its
// FTP helper on destination port 21.
func setupPort21(t *testing.T, r router, topo *testnet.Topology) {
	t.Helper()
	pub := testnet.Forward{Proto: "tcp", Public: publicFTP21, Inside: insideFTP21}
	if r.name != kernelRouter.name {
		r.setup(t, topo, false, []testnet.Forward{pub})
		return
	}
	cfg := testnet.DefaultKernelNAT(false)
	cfg.Servers = append(cfg.Servers, pub)
	cfg.FTPHelperPorts = []uint16{21}
	topo.MustKernelNAT(t, cfg)
}

// ftpDiagonal covers every server and every client at least once and
// every mode at least once in each direction, pairing them differently
// in the two directions.
var ftpDiagonal = []ftpCell{
	fc(false, testnet.Vsftpd, testnet.Curl, testnet.PASV),
	fc(false, testnet.ProFTPD, testnet.LFTP, testnet.EPSV),
	fc(false, testnet.PureFTPd, testnet.Wget, testnet.PORT),
	fc(false, testnet.Pyftpdlib, testnet.TNFTP, testnet.EPRT),
	fc(false, testnet.Vsftpd, testnet.NcFTP, testnet.PORT),
	fc(false, testnet.ProFTPD, testnet.FTPLib, testnet.EPRT),
	fc(false, testnet.PureFTPd, testnet.Busybox, testnet.EPSV),
	fc(true, testnet.ProFTPD, testnet.Curl, testnet.EPRT),
	fc(true, testnet.PureFTPd, testnet.LFTP, testnet.PASV),
	fc(true, testnet.Pyftpdlib, testnet.Wget, testnet.PASV),
	fc(true, testnet.Vsftpd, testnet.TNFTP, testnet.PORT),
	fc(true, testnet.PureFTPd, testnet.NcFTP, testnet.PORT),
	fc(true, testnet.Pyftpdlib, testnet.FTPLib, testnet.EPSV),
	fc(true, testnet.Vsftpd, testnet.Busybox, testnet.EPSV),
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
						cells = append(cells, fc(inside, d, tool, m))
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
	modes21 := map[dm]bool{}
	for _, d := range testnet.Daemons {
		for _, c := range port21Cells(d, false) {
			if !c.tool.Supports(c.mode) || !c.port21 {
				t.Errorf("%v: not a port-21 cell %v can use", c, c.tool)
			}
			modes21[dm{c.inside, c.mode}] = true
		}
	}
	if len(modes21) != 2*len(testnet.Modes) {
		t.Errorf("port-21 cells cover %d of the %d modes and directions", len(modes21), 2*len(testnet.Modes))
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
				c := fc(true, d, testnet.LFTP, testnet.PORT)
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
				c := fc(false, d, testnet.Curl, testnet.PASV)
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
			c := fc(false, d, testnet.Curl, testnet.PASV)
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
	// FTP on its well-known port needs no mapping: a client inside
	// reaching a server outside on port 21, and a nat server publishing
	// an inside server's port 21 on another public port (recognised by
	// the port after translation, see CASE.md). The kernel's helper, set
	// on destination port 21 as an operator sets it, sees only the
	// arriving port: the published server is not FTP to it.
	setupPort21(t, r, topo)
	for _, d := range daemons {
		t.Run("port21/"+d.String(), func(t *testing.T) {
			in := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP21, Daemon: d, Upload: true}, matrixGetSize)
			out := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Client, Addr: outsideFTP21, Daemon: d, Upload: true}, matrixGetSize)
			defer in.server.Stop()
			defer out.server.Stop()
			sides := [2]ftpSide{
				{"server-inside", topo.Client, in.server.URL(publicFTP21, in.name), in},
				{"client-inside", topo.Host, out.server.URL(outsideFTP21, out.name), out},
			}
			for _, c := range port21Cells(d, matrixFull()) {
				side := sides[0]
				if c.inside {
					side = sides[1]
				}
				t.Run(c.direction()+"/"+c.tool.String()+"/"+c.mode.String(), func(t *testing.T) {
					if r.name == kernelRouter.name && !c.inside {
						_, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
							NS: side.ns, Tool: c.tool, Mode: c.mode, URL: side.url, Dst: filepath.Join(t.TempDir(), side.f.name),
							ConnectTimeout: 2 * time.Second, Timeout: 20 * time.Second,
						}, side.f.sha256)
						if err == nil && c.mode.Passive() {
							record(c, "get", "ok (the kernel's helper was expected to miss it)")
							t.Errorf("the kernel's helper on port 21 recognised a connection to public port 2121")
						} else {
							record(c, "get", fmt.Sprintf("ok=%v (no helper on 2121: passive fails, active needs none)", err == nil))
						}
						waitClosed(ctx, t, topo)
						return
					}
					ftpMatrixCell(ctx, t, topo, c, side, put, putSum, record)
				})
			}
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
		t.Fatalf("%v%s", err, natState(t, topo))
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
			t.Fatalf("%v%s", err, natState(t, topo))
		}
		if err := waitUploaded(side.f.server.UploadPath(name), putSum); err != nil {
			record(c, "put", "FAIL")
			t.Fatalf("%v\n%s%s", err, tailString(res.Transcript, 4096), natState(t, topo))
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
