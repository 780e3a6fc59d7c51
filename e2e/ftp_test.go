package e2e

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

var (
	publicFTP = netip.AddrPortFrom(testnet.PublicAddr, testnet.FTPPublicPort)
	insideFTP = netip.AddrPortFrom(testnet.ServerAddr, testnet.FTPInsidePort)
	// outsideFTP is an FTP server outside on port 9091, for inside clients.
	outsideFTP = netip.AddrPortFrom(testnet.ClientAddr, testnet.FTPPublicPort)
)

// ftpServerInside: an FTP server inside on port 2021, published as
// public:9091, with FTP mapped to 9091: curl and lftp outside fetch the
// file on the first try in every mode.
func ftpServerInside(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, true, nil)
	f := startFTP(t, topo, topo.Server, insideFTP)
	url := f.server.URL(publicFTP, f.name)

	for _, tool := range testnet.Tools {
		for _, mode := range testnet.Modes {
			t.Run(tool.String()+"/"+mode.String(), func(t *testing.T) {
				if !tool.Supports(mode) {
					t.Skipf("%s: %v", tool, testnet.ErrModeUnsupported)
				}
				// Every header the router wrote, the rewritten 227 and
				// PORT included, is checked by gopacket; the receivers'
				// kernels would drop bad ones silently and TCP would
				// only retransmit.
				check := checkRouterOutput(t, topo)
				res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
					NS: topo.Client, Tool: tool, Mode: mode, URL: url,
					Dst: filepath.Join(t.TempDir(), f.name),
				}, f.sha256)
				if err != nil {
					t.Fatal(err)
				}
				if n := check(); n < fileSize/1500 {
					t.Errorf("checked only %d frames from the router", n)
				}
				if mode == testnet.PASV {
					// The server announced 10,77,0,226; the ALG must
					// have rewritten it to the public address.
					if r := res.Reply("227"); !strings.Contains(r, "(198,18,0,204,") {
						t.Errorf("227 reply %q does not name the public address", r)
					}
				}
				t.Logf("%d bytes in %v", res.Size, res.Elapsed.Round(time.Millisecond))
			})
		}
	}
}

// ftpServerInsideUnmapped reproduces the case: FTP is not mapped to 9091,
// so the 227 reply keeps the inside address and nothing translates the
// passive data connection.
func ftpServerInsideUnmapped(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, false, nil)
	f := startFTP(t, topo, topo.Server, insideFTP)
	url := f.server.URL(publicFTP, f.name)

	const (
		pasvWhy = "227 names 10.77.0.226, which outside clients cannot reach through the NAT"
		epsvWhy = "nothing translates the connection to the passive port (curl then falls back to PASV, which fails as above)"
		// Active mode from outside needs no ALG: PORT names the client's
		// own public address, and the server's connection from port 20
		// is ordinary outbound traffic that nat outbound translates.
		portWhy = "the data connection is plain outbound traffic through nat outbound"
	)
	cases := []struct {
		tool testnet.Tool
		mode testnet.Mode
		ok   bool
		why  string
	}{
		{testnet.Curl, testnet.PASV, false, pasvWhy},
		{testnet.LFTP, testnet.PASV, false, pasvWhy},
		{testnet.Curl, testnet.EPSV, false, epsvWhy},
		{testnet.LFTP, testnet.EPSV, false, epsvWhy},
		{testnet.Curl, testnet.PORT, true, portWhy},
		{testnet.Curl, testnet.EPRT, true, portWhy},
		{testnet.LFTP, testnet.PORT, true, portWhy},
	}
	for _, c := range cases {
		t.Run(c.tool.String()+"/"+c.mode.String(), func(t *testing.T) {
			res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
				NS: topo.Client, Tool: c.tool, Mode: c.mode, URL: url,
				Dst:            filepath.Join(t.TempDir(), f.name),
				ConnectTimeout: 2 * time.Second,
				Timeout:        20 * time.Second,
			}, f.sha256)
			switch {
			case c.ok && err != nil:
				t.Fatalf("want success (%s): %v", c.why, err)
			case !c.ok && err == nil:
				t.Fatalf("transfer succeeded; want failure (%s)", c.why)
			case !c.ok:
				t.Logf("failed as in the case (%s): %.120v", c.why, err)
			}
			if c.mode == testnet.PASV {
				if r := res.Reply("227"); !strings.Contains(r, "(10,77,0,226,") {
					t.Errorf("227 reply %q: want the unrewritten inside address", r)
				}
			}
		})
	}
}

// ftpClientInside: an FTP client inside (10.77.0.5) fetches from an FTP
// server outside on port 9091 through nat outbound, with and without FTP
// mapped to 9091. In active mode the PORT/EPRT it sends names its inside
// address; the ALG must rewrite it to the public address and translate the
// server's connection back.
func ftpClientInside(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	f := startFTP(t, topo, topo.Client, outsideFTP)
	url := f.server.URL(outsideFTP, f.name)

	for _, mapped := range []bool{true, false} {
		name := "mapped"
		if !mapped {
			name = "unmapped"
		}
		t.Run(name, func(t *testing.T) {
			r.setup(t, topo, mapped, nil)
			for _, tool := range testnet.Tools {
				for _, mode := range testnet.Modes {
					t.Run(tool.String()+"/"+mode.String(), func(t *testing.T) {
						if !tool.Supports(mode) {
							t.Skipf("%s: %v", tool, testnet.ErrModeUnsupported)
						}
						res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
							NS: topo.Host, Tool: tool, Mode: mode, URL: url,
							Dst:            filepath.Join(t.TempDir(), f.name),
							ConnectTimeout: 3 * time.Second,
							Timeout:        30 * time.Second,
						}, f.sha256)
						// Unmapped, passive mode still works (the client
						// opens every connection) but the server refuses a
						// PORT/EPRT naming 10.77.0.5, which is not its
						// peer's address: the case's active-mode failure
						// seen from the other side.
						wantOK := mapped || mode.Passive()
						switch {
						case wantOK && err != nil:
							t.Fatal(err)
						case !wantOK && err == nil:
							t.Fatal("active transfer without the FTP mapping succeeded")
						case !wantOK:
							t.Logf("failed as expected: %.120v", err)
							return
						}
						if mode == testnet.PORT && !strings.Contains(strings.Join(res.Sent, "\n"), "PORT 10,77,0,5,") {
							t.Errorf("client sent %q, want its inside address", res.Sent)
						}
					})
				}
			}
		})
	}
	// What the server accepted named only the public address.
	log := f.server.Log()
	for _, want := range []string{`"PORT 198,18,0,204,`, `"EPRT |1|198.18.0.204|`} {
		if !strings.Contains(log, want) {
			t.Errorf("server log lacks %s:\n%s", want, tailString(log, 4096))
		}
	}
}
