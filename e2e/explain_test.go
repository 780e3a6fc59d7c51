package e2e

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatExplain asks the running daemon about a live FTP control
// session: the report names the nat.server rule and the port mapping that
// made it ftp, and adds the live session, its open expectation and what
// the ALG counted for it, in text and JSON, by tuple and by session id.
// Then, with the daemon restarted without the mapping, the same
// connection is the case: not inspected, and the mapping that fixes it
// suggested.
func TestFastnatExplain(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, false)
	fastnatRouter.setup(t, topo, true, nil)
	startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP}, smallFile)
	sock := func() string {
		t.Helper()
		for _, p := range topo.Processes() {
			if p.Name == fastnatBinary(t) {
				if done, _ := p.Exited(); !done {
					return controlSocket(t, p)
				}
			}
		}
		t.Fatal("no fastnat running")
		return ""
	}
	explain := func(args ...string) string {
		t.Helper()
		code, out, errOut := fastnatCLI(t, append([]string{"explain", "--socket", sock()}, args...)...)
		if code != 0 {
			t.Fatalf("fastnat explain %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	c, err := testnet.DialFTP(ctx, topo.Client, publicFTP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.List(ctx, testnet.PASV); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cmd("PASV", 227); err != nil { // an expectation left open
		t.Fatal(err)
	}
	conn := []string{"tcp", c.LocalAddr().String(), publicFTP.String()}

	out := explain(conn...)
	t.Logf("fastnat explain --live %s:\n%s", strings.Join(conn, " "), out)
	for _, want := range []string{
		"nat rule     nat.server[0] (fastnat.toml:",
		"application  ftp, by port_mapping[0] (fastnat.toml:",
		"on the arriving port 9091",
		"ftp alg      inspected:",
		"session      ",
		"TCP_ESTABLISHED, ftp, mapping 0",
		"expectations tcp from 198.18.0.1 to 198.18.0.204:",
		"alg counted  sessions 1, commands 2, rewritten 2, expectations_created 2, expectations_used 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain lacks %q:\n%s", want, out)
		}
	}
	var r control.ExplainResult
	if err := json.Unmarshal([]byte(explain(append([]string{"--json"}, conn...)...)), &r); err != nil {
		t.Fatal(err)
	}
	if r.Session == nil || len(r.Expectations) != 1 || r.ALG["rewritten"] != 2 || !r.Report.ALG.Inspected || r.Report.Suggestion != nil {
		t.Fatalf("explain --json: %+v", r)
	}
	byID := explain("--json", strconv.FormatUint(uint64(r.Session.ID), 10))
	var r2 control.ExplainResult
	if err := json.Unmarshal([]byte(byID), &r2); err != nil {
		t.Fatal(err)
	}
	if r2.Session == nil || r2.Session.ID != r.Session.ID || r2.Report.Connection.Src != r.Report.Connection.Src {
		t.Errorf("by session id: %+v", r2)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	// The case: the same daemon's file without the mapping.
	fastnatRouter.setup(t, topo, false, nil)
	out = explain(conn...)
	for _, want := range []string{
		"application  other: no port mapping or default matches 9091/tcp as it arrives, nor 2021/tcp",
		"ftp alg      not inspected: not classified ftp",
		"application = \"ftp\"",
		"port = 9091",
		"session      none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("explain without the mapping lacks %q:\n%s", want, out)
		}
	}
}
