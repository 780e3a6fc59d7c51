package main

import (
	"encoding/json"
	"github.com/fastnat/fastnat/internal/testutil"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/natlogtest"
)

// eventDaemon is a stub daemon whose control socket streams the events
// pushed into ring.
func eventDaemon(t *testing.T) (socket string, hub *natlog.Hub) {
	t.Helper()
	hub, err := natlog.NewHub(natlog.HubConfig{Producers: 1})
	if err != nil {
		t.Fatal(err)
	}
	hub.Start()
	t.Cleanup(func() { hub.Close() })
	socket = filepath.Join(t.TempDir(), "fastnat.sock")
	s, err := control.Listen(socket, &stubDaemon{})
	if err != nil {
		t.Fatal(err)
	}
	s.ServeEvents(hub)
	t.Cleanup(func() { s.Close() })
	return socket, hub
}

// runEvents runs `fastnat events ARGS` until want lines were printed,
// then stops it as Ctrl-C would.
func runEvents(t *testing.T, hub *natlog.Hub, push []natlog.Event, want int, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut testutil.SyncBuffer
	stop := make(chan struct{})
	done := make(chan int, 1)
	go func() { done <- streamEvents(args, &out, &errOut, stop) }()
	for deadline := time.Now().Add(30 * time.Second); len(hub.Stats().Outlets) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			close(stop)
			t.Fatalf("no subscription; stderr %q", errOut.String())
		}
	}
	for i := range push {
		hub.Ring(0).Push(&push[i])
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Count(out.String(), "\n") < want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d lines, want %d:\n%s\nstderr %q", strings.Count(out.String(), "\n"), want, out.String(), errOut.String())
		}
	}
	close(stop)
	code := <-done
	// The hub drops the subscription after the stream ends; wait for it,
	// so that the next run's wait for its own subscription is not
	// satisfied by this one's (events pushed then would reach nobody).
	for deadline := time.Now().Add(30 * time.Second); len(hub.Stats().Outlets) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream's subscription outlived it")
		}
	}
	return code, out.String(), errOut.String()
}

func TestEventsCommand(t *testing.T) {
	socket, hub := eventDaemon(t)
	evs := natlogtest.Events()
	code, out, errOut := runEvents(t, hub, evs, len(evs), "--socket", socket)
	if code != exitOK || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	var want strings.Builder
	for _, e := range evs {
		want.WriteString(e.String() + "\n")
	}
	if out != want.String() {
		t.Errorf("printed\n%s\nwant\n%s", out, want.String())
	}

	// Filters, JSON.
	code, out, _ = runEvents(t, hub, evs, 2, "--socket", socket, "--json", "--type", "block-alloc,block-release", "--addr", "10.77.0.0/24")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 2 {
		t.Fatalf("exit %d, output %q", code, out)
	}
	for i, l := range lines {
		var e control.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type != []string{"block-alloc", "block-release"}[i] || e.Ports == nil || e.Ports.First != 1024 {
			t.Errorf("line %d: %v %+v", i, err, e)
		}
	}
}

func TestEventsCommandErrors(t *testing.T) {
	socket, _ := eventDaemon(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--socket", socket, "--type", "session"}, exitUsage, `invalid value "session" for flag -type: "session" is not allowed`},
		{[]string{"--socket", socket, "--addr", "10.77"}, exitUsage, `"10.77" is not an IPv4 address or prefix`},
		{[]string{"--socket", socket, "sessions"}, exitUsage, "usage: fastnat events"},
		{[]string{"--socket", filepath.Join(t.TempDir(), "none.sock")}, exitFailure, "is fastnat running?"},
	} {
		code, _, errOut := runCmd(append([]string{"events"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%v: exit %d, stderr %q", tc.args, code, errOut)
		}
	}
}

func TestLookupCommand(t *testing.T) {
	cfg := writeConfig(t, `[[nat.outbound]]
inside = ["10.77.0.0/24"]
pool = ["198.18.0.204-198.18.0.205"]
mapping = "deterministic"
[[nat.outbound]]
inside = ["10.0.0.0/8"]
pool = ["198.18.0.1"]
`)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"198.18.0.204:40123", "-c", cfg}, exitOK, "198.18.0.204:40123 -> 10.77.0.77 (nat.outbound[0], 198.18.0.204 ports 39832-40335)\n", ""},
		{[]string{"-c", cfg, "10.77.0.77"}, exitOK, "10.77.0.77 -> 198.18.0.204 ports 39832-40335 (nat.outbound[0])\n", ""},
		{[]string{"-c", cfg, "10.77.0.200", "198.18.0.205:1024"}, exitOK,
			"10.77.0.200 -> 198.18.0.205 ports 37312-37815 (nat.outbound[0])\n198.18.0.205:1024 -> 10.77.0.128 (nat.outbound[0], 198.18.0.205 ports 1024-1527)\n", ""},
		{[]string{"-c", cfg, "198.18.0.1:5000"}, exitFailure, "198.18.0.1:5000: nat.outbound[1] maps dynamically", ""},
		{[]string{"-c", cfg, "198.18.0.204:1000"}, exitFailure, "198.18.0.204:1000: no inside host owns this port of nat.outbound[0]", ""},
		{[]string{"-c", cfg, "203.0.113.1:80"}, exitFailure, "203.0.113.1:80: no nat.outbound rule has this address", ""},
		{[]string{"-c", cfg, "nat.example"}, exitUsage, "", `"nat.example": not an IPv4 address`},
		{[]string{"-c", cfg}, exitUsage, "", "usage: fastnat lookup"},
		{[]string{"-c", "/nonexistent.toml", "10.77.0.1"}, exitUsage, "", "no such file"},
	} {
		code, out, errOut := runCmd(append([]string{"lookup"}, tc.args...)...)
		if code != tc.code || !strings.HasPrefix(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%v: exit %d\nstdout %q\nstderr %q", tc.args, code, out, errOut)
		}
	}
	code, out, _ := runCmd("lookup", "--json", "-c", cfg, "198.18.0.204:40123")
	var a lookupAnswer
	if err := json.Unmarshal([]byte(out), &a); code != exitOK || err != nil ||
		a != (lookupAnswer{Query: "198.18.0.204:40123", Rule: "nat.outbound[0]", Inside: "10.77.0.77", Public: "198.18.0.204", First: 39832, Last: 40335}) {
		t.Errorf("--json: exit %d, %v, %+v", code, err, a)
	}
}

func TestCheckShowsAllocationAndLogging(t *testing.T) {
	cfg := writeConfig(t, `[[nat.outbound]]
inside = ["10.77.0.0/24"]
pool = ["198.18.0.204-198.18.0.205"]
mapping = "deterministic"
[[nat.outbound]]
inside = ["10.0.0.0/8"]
pool = ["198.18.0.1"]
block_size = 512
[[logging.ipfix]]
collector = "192.0.2.10:4739"
events = ["block-alloc", "block-release"]
[[logging.syslog]]
transport = "tcp"
address = "192.0.2.11:514"
`)
	code, out, errOut := runCmd("check", "-c", cfg)
	for _, want := range []string{
		"deterministic: 256 inside addresses, 504 ports each",
		"endpoint-independent, blocks of 512 ports, at most 4 per host",
		"ipfix to 192.0.2.10:4739, domain 1, templates every 1m, messages up to 1400 bytes, events block-alloc,block-release (line 9)",
		"syslog over tcp to 192.0.2.11:514, facility 16, host this machine's name, every event (line 12)",
	} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("exit %d, stderr %q: output lacks %q:\n%s", code, errOut, want, out)
		}
	}
}

// TestLookupFleetFile: one file with every node's deterministic slice
// answers for the fleet (docs/deploy.md).
func TestLookupFleetFile(t *testing.T) {
	cfg := writeConfig(t, `[[nat.outbound]]
inside = ["100.64.0.0/18"]
pool = ["203.0.113.0/27"]
mapping = "deterministic"
[[nat.outbound]]
inside = ["100.64.64.0/18"]
pool = ["203.0.113.32/27"]
mapping = "deterministic"
`)
	code, out, errOut := runCmd("lookup", "-c", cfg, "203.0.113.40:41234", "100.64.64.1")
	// The /27s keep 30 addresses each (no network and broadcast), so
	// 16384 hosts share 30 addresses: 547 an address, 117 ports each, 551
	// ranges an address; .40 is the pool's 8th address, and 41234 lies in
	// its range 343: host 7 × 551 + 343 = 4200 of 100.64.64.0/18.
	want := "203.0.113.40:41234 -> 100.64.80.104 (nat.outbound[1], 203.0.113.40 ports 41155-41271)\n" +
		"100.64.64.1 -> 203.0.113.33 ports 1141-1257 (nat.outbound[1])\n"
	if code != exitOK || out != want {
		t.Errorf("exit %d, stderr %q\n got %s\nwant %s", code, errOut, out, want)
	}
}
