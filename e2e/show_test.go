package e2e

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// TestFastnatShow: after a passive FTP download through port 9091, `fastnat
// show` reports the control session in the case's firewall layout, its
// data connection as an ftp-data child, the ALG's rewrite, and the
// traffic in `show stats --json`.
func TestFastnatShow(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, false)
	fastnatRouter.setup(t, topo, true, nil)
	var daemon *testnet.Process
	for _, p := range topo.Processes() {
		if p.Name == fastnatBinary(t) {
			daemon = p
		}
	}
	if daemon == nil {
		t.Fatal("fastnat not among the topology's processes")
	}
	sock := controlSocket(t, daemon)
	f := startFTP(t, topo, topo.Server, insideFTP)
	if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS: topo.Client, Tool: testnet.Curl, Mode: testnet.PASV,
		URL: f.server.URL(publicFTP, f.name), Dst: filepath.Join(t.TempDir(), f.name),
	}, f.sha256); err != nil {
		t.Fatal(err)
	}

	show := func(args ...string) string {
		t.Helper()
		code, out, errOut := fastnatCLI(t, append(append([]string{"show"}, args...), "--socket", sock)...)
		if code != 0 {
			t.Fatalf("fastnat show %v: exit %d: %s", args, code, errOut)
		}
		return out
	}

	// The control session, as the case's firewall shows it.
	out := show("sessions", "--app", "ftp", "--verbose")
	for _, re := range []string{
		`(?m)^Initiator:\n  Source IP/port: 198\.18\.0\.1/\d+\n  Destination IP/port: 198\.18\.0\.204/9091\n  Protocol: TCP\(6\)\n  Inbound interface: outside$`,
		`(?m)^Responder:\n  Source IP/port: 10\.77\.0\.226/2021\n  Destination IP/port: 198\.18\.0\.1/\d+\n  Protocol: TCP\(6\)$`,
		`(?m)^State: TCP_\w+$`,
		`(?m)^Application: FTP$`,
		`(?m)^Rule: nat\.server\[0\]$`,
		`(?m)^Start time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  TTL: \S+$`,
		`(?m)^Idle: \S+  Timeout: \S+$`,
		`(?m)^Total sessions found: 1$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("show sessions --app ftp does not match %s:\n%s", re, out)
		}
	}
	orig, reply := traffic(t, out)
	if orig[0] < 5 || reply[0] < 5 || orig[1] == 0 || reply[1] == 0 {
		t.Errorf("control session traffic %v / %v: want packets and bytes both ways", orig, reply)
	}

	// Its data connection: the client connected to the port the rewritten
	// 227 named; the file came back from the responder.
	out = show("sessions", "--app", "ftp-data", "--verbose")
	if !regexp.MustCompile(`(?m)^Application: FTP-DATA$`).MatchString(out) || !strings.Contains(out, "Parent session: ") ||
		!strings.Contains(out, "Rule: nat.server[0]/alg\n") {
		t.Errorf("show sessions --app ftp-data:\n%s", out)
	}
	if _, reply := traffic(t, out); reply[1] < fileSize {
		t.Errorf("data session carried %d bytes to the client, want at least %d", reply[1], fileSize)
	}

	// Statistics as JSON.
	var s metrics.Snapshot
	if err := json.Unmarshal([]byte(show("stats", "--json")), &s); err != nil {
		t.Fatal(err)
	}
	var rx, translated uint64
	for _, w := range s.Workers {
		rx += w.RxPackets
		translated += w.Translated
		if len(w.Ports) != 2 {
			t.Errorf("worker %d has %d ports, want outside and inside", w.ID, len(w.Ports))
		}
	}
	if translated < fileSize/1500 || rx < translated {
		t.Errorf("rx %d, translated %d frames: want at least the file's %d segments", rx, translated, fileSize/1500)
	}
	if s.FTP["sessions"] < 1 || s.FTP["rewritten"] < 1 || s.FTP["expectations_created"] < 1 {
		t.Errorf("ftp alg counters %v: want a session, a rewrite and an expectation", s.FTP)
	}
	if s.Table.ExpectMatched < 1 {
		t.Errorf("flow table %+v: the data connection did not match an expectation", s.Table)
	}
	apps := map[string]int{}
	for _, c := range s.Sessions {
		apps[c.Protocol+"/"+c.App] = c.Count
	}
	if apps["tcp/ftp"] != 1 || apps["tcp/ftp-data"] < 1 {
		t.Errorf("sessions by protocol and application: %v", apps)
	}
	if len(s.Pools) != 1 || s.Pools[0].Address != testnet.PublicAddr.String() || s.Pools[0].TCP < 1 {
		t.Errorf("pools %+v", s.Pools)
	}
	if s.Table.Sessions < 2 || s.Table.Capacity != 65536 {
		t.Errorf("flow table %+v", s.Table)
	}

	// The mapping that made it work, with the ALG's count.
	var ms []control.Mapping
	if err := json.Unmarshal([]byte(show("mappings", "--json")), &ms); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		if m.Port == testnet.FTPPublicPort && m.App == "ftp" && m.Index == 0 {
			found = true
			if m.ALGSessions != 1 || m.ALGRewritten < 1 {
				t.Errorf("mapping 9091: ALG sessions %d, rewrites %d", m.ALGSessions, m.ALGRewritten)
			}
		}
	}
	if !found {
		t.Errorf("no ftp mapping for 9091 in %+v", ms)
	}
	// The expectation was used: none is left.
	if out := show("expectations"); out != "no expectations\n" {
		t.Errorf("show expectations:\n%s", out)
	}
	// The text form of the statistics prints.
	if out := show("stats"); !strings.Contains(out, "ftp alg") || !strings.Contains(out, "198.18.0.204") {
		t.Errorf("show stats:\n%s", out)
	}
	// The rules the daemon runs.
	if out := show("rules"); !regexp.MustCompile(`(?m)^  0 +tcp +198\.18\.0\.204:9091 +10\.77\.0\.226:2021 `).MatchString(out) ||
		!strings.Contains(out, "10.77.0.0/24  198.18.0.204  1024-65535") {
		t.Errorf("show rules:\n%s", out)
	}
}

var trafficLine = regexp.MustCompile(`(?m)^(Initiator->Responder|Responder->Initiator): (\d+) packets (\d+) bytes$`)

// traffic reads the first session's packets and bytes each way from a
// `show sessions` listing.
func traffic(t *testing.T, out string) (orig, reply [2]uint64) {
	t.Helper()
	ms := trafficLine.FindAllStringSubmatch(out, 2)
	if len(ms) != 2 {
		t.Fatalf("no traffic lines in:\n%s", out)
	}
	for _, m := range ms {
		p, _ := strconv.ParseUint(m[2], 10, 64)
		b, _ := strconv.ParseUint(m[3], 10, 64)
		if m[1] == "Initiator->Responder" {
			orig = [2]uint64{p, b}
		} else {
			reply = [2]uint64{p, b}
		}
	}
	return orig, reply
}
