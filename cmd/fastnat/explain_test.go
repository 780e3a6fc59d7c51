package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/explain"
)

// TestExplainOffline: `fastnat explain -c FILE` needs only the file: the
// case before its fix gets the mapping that fixes it, in text and JSON.
func TestExplainOffline(t *testing.T) {
	code, out, errOut := runCmd("explain", "-c", "../../explain/testdata/case.toml", "tcp", "198.18.0.1:40000", "198.18.0.204:9091")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"nat rule     nat.server[0] (case.toml:16): tcp 198.18.0.204:9091 -> 10.77.0.226:2021\n",
		"ftp alg      not inspected: not classified ftp\n",
		"[[port_mapping]]\n",
		"port = 9091\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCmd("explain", "--json", "-c", "../../explain/testdata/case-mapped.toml", "tcp", "198.18.0.1:40000", "198.18.0.204:9091")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r explain.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !r.ALG.Inspected || r.Application.By == nil || r.Application.By.Line != 26 || r.Suggestion != nil {
		t.Errorf("after the fix: %+v", r)
	}
}

func TestExplainUsage(t *testing.T) {
	for _, args := range [][]string{
		{"explain"},
		{"explain", "tcp", "198.18.0.1:40000"},
		{"explain", "-c", "../../explain/testdata/case.toml", "tcp", "198.18.0.1", "198.18.0.204:9091"},
		{"explain", "-c", "../../explain/testdata/case.toml", "bogus", "198.18.0.1:1", "198.18.0.204:9091"},
		{"explain", "-c", "../../explain/testdata/case.toml", "--from", "left", "tcp", "198.18.0.1:1", "198.18.0.204:9091"},
		{"explain", "-c", "/nonexistent.toml", "tcp", "198.18.0.1:1", "198.18.0.204:9091"},
		{"explain", "x"},
		{"explain", "-c", "../../explain/testdata/case.toml", "--ttl", "256", "udp", "10.77.0.5:1", "192.0.2.7:53"},
		{"explain", "--ttl", "1", "7"},
	} {
		if code, _, _ := runCmd(args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	// The wrong argument is named, once.
	if _, _, errOut := runCmd("explain", "-c", "../../explain/testdata/case.toml", "gre", "10.77.0.5", "192.0.2.7"); strings.Count(errOut, "is not ADDRESS:PORT") != 1 || !strings.Contains(errOut, `"10.77.0.5"`) {
		t.Errorf("bad endpoints: %q", errOut)
	}
	if code, _, errOut := runCmd("explain", "--socket", "/nonexistent.sock", "7"); code != exitFailure || !strings.Contains(errOut, "is fastnat running") {
		t.Errorf("no daemon: exit %d %q", code, errOut)
	}
}

// TestExplainTTL: --ttl gives the first packet's TTL; with 1 an outbound
// datagram is answered time exceeded instead of translated.
func TestExplainTTL(t *testing.T) {
	code, out, errOut := runCmd("explain", "-c", "../../explain/testdata/case.toml", "--ttl", "1", "udp", "10.77.0.5:5000", "192.0.2.7:33434")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"arriving inside with TTL 1", "verdict      dropped (ttl_expired)", "answer       icmp_time_exceeded:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
