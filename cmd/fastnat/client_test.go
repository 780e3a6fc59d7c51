package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/metrics"
)

// stubDaemon answers the control socket like a daemon would, without a
// dataplane.
type stubDaemon struct {
	asked   []control.SessionQuery
	cleared []control.SessionFilter
	refuse  bool
	pending []control.Pending
}

func (s *stubDaemon) Stats() metrics.Snapshot {
	return metrics.Snapshot{UptimeSeconds: 3, Table: metrics.Table{Sessions: 1, Capacity: 10}}
}

func (s *stubDaemon) Sessions(q control.SessionQuery) (control.SessionList, error) {
	s.asked = append(s.asked, q)
	return control.SessionList{Matched: 1, Sessions: []control.Session{{
		ID: 4, Protocol: "tcp", ProtoNum: 6, App: "ftp", State: "TCP_ESTABLISHED", Mapping: -1,
		Rule: "nat.server[0]", Ingress: "eth1", Start: time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC), Age: 63, TTL: 7437,
		Initiator: control.Flow{Src: netip.MustParseAddrPort("198.18.0.1:40000"), Dst: netip.MustParseAddrPort("198.18.0.204:9091")},
		Responder: control.Flow{Src: netip.MustParseAddrPort("10.77.0.226:2021"), Dst: netip.MustParseAddrPort("198.18.0.1:40000")},
	}}}, nil
}

func (s *stubDaemon) Clear(f control.SessionFilter) (control.ClearResult, error) {
	s.cleared = append(s.cleared, f)
	return control.ClearResult{Matched: 3, Cleared: 3}, nil
}

func (s *stubDaemon) Expectations() []control.Expectation { return nil }
func (s *stubDaemon) Mappings() []control.Mapping {
	return []control.Mapping{{App: "ftp", Port: 21, Protocol: "tcp", Scope: "any", Index: -1}}
}

func (s *stubDaemon) Rules() control.Rules {
	cfg, err := config.Parse("/etc/fastnat.toml", []byte(exampleRules))
	if err != nil {
		panic(err)
	}
	return control.ListRules(cfg, time.Date(2025, 1, 31, 12, 0, 0, 0, time.UTC))
}

// exampleRules is the configuration stubDaemon runs.
const exampleRules = `[[interface]]
name = "eth0"
role = "inside"
[[interface]]
name = "eth1"
role = "outside"
[[nat.outbound]]
inside = ["10.0.0.0/8"]
pool = ["198.18.0.1-198.18.0.3", "198.18.0.9"]
[[nat.server]]
protocol = "tcp"
public = "198.18.0.9:9091"
inside = "10.0.0.5:21"
`

func (s *stubDaemon) Reload() (control.ReloadResult, error) {
	if s.refuse {
		return control.ReloadResult{}, fmt.Errorf("%w: /etc/fastnat.toml:3:9: dataplane.batch: 0 is out of range", control.ErrRefused)
	}
	return control.ReloadResult{File: "/etc/fastnat.toml", PortMappings: 2, Pending: s.pending}, nil
}

func startStub(t *testing.T, d *stubDaemon) (socket, cfgFile string) {
	t.Helper()
	dir := t.TempDir()
	socket = filepath.Join(dir, "fastnat.sock")
	s, err := control.Listen(socket, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cfgFile = writeConfig(t, fmt.Sprintf("[control]\nsocket = %q\n", socket))
	return socket, cfgFile
}

func TestShowCommands(t *testing.T) {
	d := &stubDaemon{}
	socket, cfgFile := startStub(t, d)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"sessions via -c, flags after the subject", []string{"show", "sessions", "-c", cfgFile, "--app", "ftp", "--limit", "5",
			"--addr", "198.18.0.0/24", "--port", "9091", "--proto", "tcp", "--state", "established", "--rule", "nat.server[0]"}, exitOK,
			"ID  PROTO  STATE        INITIATOR                            RESPONDER                           APP  RULE           IN    AGE   TTL\n" +
				"4   tcp    ESTABLISHED  198.18.0.1:40000->198.18.0.204:9091  10.77.0.226:2021->198.18.0.1:40000  ftp  nat.server[0]  eth1  1m3s  2h3m57s\n" +
				"Total sessions found: 1\n", ""},
		{"sessions verbose", []string{"show", "sessions", "--verbose", "--socket", socket}, exitOK,
			"Initiator:\n  Source IP/port: 198.18.0.1/40000\n  Destination IP/port: 198.18.0.204/9091\n  Protocol: TCP(6)\n  Inbound interface: eth1\n", ""},
		{"sessions via --socket, flags first", []string{"show", "--socket", socket, "sessions"}, exitOK, "Total sessions found: 1\n", ""},
		{"stats", []string{"show", "stats", "--socket", socket}, exitOK, "sessions 1 of 10 (10.0%)", ""},
		{"mappings", []string{"show", "mappings", "--socket", socket}, exitOK, "ftp          21    tcp       any    default", ""},
		{"expectations", []string{"show", "expectations", "--socket", socket}, exitOK, "no expectations\n", ""},
		{"rules", []string{"show", "rules", "--socket", socket}, exitOK, "rules of /etc/fastnat.toml, loaded 2025-01-31T12:00:00Z\n\n" +
			"nat outbound (the first rule whose inside prefix holds the source applies)\n" +
			"  RULE  INSIDE      POOL                              PORTS       MAPPING               LINE\n" +
			"  0     10.0.0.0/8  198.18.0.1-198.18.0.3,198.18.0.9  1024-65535  endpoint-independent  7\n\n" +
			"nat server\n  RULE  PROTOCOL  PUBLIC           INSIDE       LINE\n  0     tcp       198.18.0.9:9091  10.0.0.5:21  10\n\n" +
			"timeouts: tcp_syn 30s, tcp_established 2h4m, tcp_transitory 4m, tcp_closed 10s, udp 5m, icmp 1m, other 10m, expectation 5m\n" +
			"ftp alg: on (third-party addresses refused, at most 8 expectations per session)\n", ""},
		{"no subject", []string{"show", "--socket", socket}, exitUsage, "", "usage: fastnat show"},
		{"two subjects", []string{"show", "stats", "sessions", "--socket", socket}, exitUsage, "", "usage: fastnat show"},
		{"app without sessions", []string{"show", "stats", "--app", "ftp", "--socket", socket}, exitUsage, "", "--app: only for sessions"},
		{"filters without sessions", []string{"show", "rules", "--verbose", "--state", "open", "--socket", socket}, exitUsage, "", "--state, --verbose: only for sessions"},
		{"port out of range", []string{"show", "sessions", "--port", "65536", "--socket", socket}, exitUsage, "", `invalid value "65536" for flag -port`},
		{"negative limit", []string{"show", "sessions", "--limit", "-1", "--socket", socket}, exitUsage, "", `invalid value "-1" for flag -limit: out of range; allowed: 0 to`},
		{"config with the socket off", []string{"show", "stats", "-c", writeConfig(t, "[control]\nsocket = \"\"\n")}, exitUsage, "", "the control socket is off"},
		{"missing config", []string{"show", "stats", "-c", "/nonexistent/f.toml"}, exitUsage, "", "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
			}
		})
	}
	if q := d.asked[0]; q != (control.SessionQuery{Filter: control.SessionFilter{App: "ftp", Addr: "198.18.0.0/24", Port: 9091,
		Protocol: "tcp", State: "established", Rule: "nat.server[0]"}, Limit: 5}) {
		t.Errorf("daemon asked %+v", q)
	}
	if q := d.asked[2]; q != (control.SessionQuery{Limit: 100}) {
		t.Errorf("default query %+v, want limit 100", q)
	}
}

func TestClearCommand(t *testing.T) {
	d := &stubDaemon{}
	socket, _ := startStub(t, d)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
		asked  *control.SessionFilter
	}{
		{"by rule and address", []string{"clear", "sessions", "--rule", "nat.outbound[0]", "--addr", "10.77.0.5", "--socket", socket}, exitOK,
			"cleared 3 sessions\n", "", &control.SessionFilter{Rule: "nat.outbound[0]", Addr: "10.77.0.5"}},
		{"all", []string{"clear", "sessions", "--all", "--socket", socket}, exitOK, "cleared 3 sessions\n", "", &control.SessionFilter{}},
		{"json", []string{"clear", "sessions", "--proto", "udp", "--json", "--socket", socket}, exitOK,
			"{\n  \"matched\": 3,\n  \"cleared\": 3\n}\n", "", &control.SessionFilter{Protocol: "udp"}},
		{"no filter", []string{"clear", "sessions", "--socket", socket}, exitUsage, "", "no filter given", nil},
		{"no subject", []string{"clear", "--socket", socket}, exitUsage, "", "usage: fastnat clear sessions", nil},
		{"another subject", []string{"clear", "bindings", "--all", "--socket", socket}, exitUsage, "", `unknown subject "bindings"`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := len(d.cleared)
			code, out, errOut := runCmd(tc.args...)
			if code != tc.code || out != tc.stdout || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
			}
			switch {
			case tc.asked == nil && len(d.cleared) != n:
				t.Errorf("the daemon was asked %+v", d.cleared[n:])
			case tc.asked != nil && (len(d.cleared) != n+1 || d.cleared[n] != *tc.asked):
				t.Errorf("the daemon was asked %+v, want %+v", d.cleared[n:], *tc.asked)
			}
		})
	}
}

func TestShowJSON(t *testing.T) {
	socket, _ := startStub(t, &stubDaemon{})
	code, out, errOut := runCmd("show", "sessions", "--json", "--socket", socket)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var l control.SessionList
	if err := json.Unmarshal([]byte(out), &l); err != nil || l.Matched != 1 || l.Sessions[0].Responder.Src.Port() != 2021 {
		t.Fatalf("%v: %s", err, out)
	}
	code, out, _ = runCmd("show", "expectations", "--json", "--socket", socket)
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("no expectations as JSON: exit %d %q", code, out)
	}
	code, out, _ = runCmd("show", "stats", "--json", "--socket", socket)
	var s metrics.Snapshot
	if err := json.Unmarshal([]byte(out), &s); code != exitOK || err != nil || s.UptimeSeconds != 3 {
		t.Errorf("stats as JSON: exit %d, %v: %s", code, err, out)
	}
}

func TestReloadCommand(t *testing.T) {
	d := &stubDaemon{}
	socket, cfgFile := startStub(t, d)
	code, out, errOut := runCmd("reload", "-c", cfgFile)
	if code != exitOK || out != "reloaded /etc/fastnat.toml (2 port mappings)\n" {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
	}
	d.pending = []control.Pending{{Key: "dataplane.workers", Running: "2", File: "4"}}
	code, out, errOut = runCmd("reload", "--socket", socket)
	if want := "reloaded /etc/fastnat.toml (2 port mappings), except 1 changed keys that wait for a restart:\n" +
		"  dataplane.workers (running 2, file 4)\n"; code != exitOK || out != want {
		t.Fatalf("reload with a pending key: exit %d\nstdout %q\nwant %q\nstderr %q", code, out, want, errOut)
	}
	d.refuse = true
	code, _, errOut = runCmd("reload", "--socket", socket)
	if code != exitUsage || !strings.Contains(errOut, "/etc/fastnat.toml:3:9: dataplane.batch") || !strings.Contains(errOut, "keeps its running configuration") {
		t.Fatalf("refused reload: exit %d, stderr %q", code, errOut)
	}
	// A -c file with errors is reported without asking the daemon.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("[dataplane]\nbatch = 0\n"), 0o600)
	code, _, errOut = runCmd("reload", "-c", bad)
	if code != exitUsage || !strings.Contains(errOut, bad+":2:9: dataplane.batch") || !strings.Contains(errOut, "the daemon was not asked") {
		t.Fatalf("broken -c file: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCmd("reload", "extra", "--socket", socket); code != exitUsage || !strings.Contains(errOut, "usage: fastnat reload") {
		t.Errorf("extra argument: exit %d, %q", code, errOut)
	}
}
