package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatEventLog: the NAT's events reach collectors nobody here
// wrote, end to end through fastnat. Three sessions are made — a
// published UDP service from outside, an inside host going out, the host
// reaching the published service (hairpin) — and cleared; nfcapd (read
// back with nfdump -r), rsyslogd, tshark on the wire and `fastnat events
// --json` each have a session-create with exactly the tuples `fastnat show
// sessions` shows for every session, and a session-delete with its
// packets each way, and the bindings' events.
func TestFastnatEventLog(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	col := startCollectors(t, topo, true)
	dir := t.TempDir()
	sock := filepath.Join(dir, "fastnat.sock")
	cfg := filepath.Join(dir, "fastnat.toml")
	published := netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort)
	writeFile(t, cfg, fastnatConfig(false, []testnet.Forward{{Proto: "udp", Public: published,
		Inside: netip.AddrPortFrom(testnet.ServerAddr, 7)}}, sock)+col.logging())
	daemon := startFastnat(t, topo, cfg)
	stream := streamEvents(t, sock)

	testnet.MustUDPEcho(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 7))
	testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 7))
	for _, x := range []struct {
		ns  string
		dst netip.AddrPort
	}{{topo.Client, published}, {topo.Host, netip.AddrPortFrom(testnet.ClientAddr, 7)}, {topo.Host, published}} {
		if got, err := testnet.UDPExchange(ctx, x.ns, x.dst, payloads(3), 2*time.Second); err != nil || got != 3 {
			t.Fatalf("%s to %v: %d of 3 echoes, %v", x.ns, x.dst, got, err)
		}
	}
	var l control.SessionList
	if err := json.Unmarshal([]byte(fastnatShow(t, sock, "sessions", "--json")), &l); err != nil || len(l.Sessions) != 3 {
		t.Fatalf("show sessions: %v %+v", err, l)
	}
	code, out, errOut := fastnatCLI(t, "clear", "sessions", "--all", "--socket", sock)
	if code != 0 || out != "cleared 3 sessions\n" {
		t.Fatalf("clear sessions: exit %d: %s%s", code, out, errOut)
	}
	// 3 session creates and deletes, 2 bindings made and gone.
	waitFor(t, "10 events at rsyslog", func() bool { return len(col.syslog(t)) >= 10 })
	events := stream.stop(t, 10)
	if err := daemon.Stop(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, topo, 4739)
	records := col.nfdump(t)
	wire := col.tsharkRecords(t)

	syslogs := col.syslog(t)
	count := map[string]int{}
	for _, s := range syslogs {
		count[s.MsgID]++
	}
	if count["session-create"] != 3 || count["session-delete"] != 3 || count["binding-create"] != 2 || count["binding-delete"] != 2 {
		t.Errorf("rsyslog stored %v", count)
	}
	for _, s := range l.Sessions {
		want := map[string]string{
			"proto": s.Protocol, "rule": s.Rule,
			"src": s.Inside.Src.Addr().String(), "sport": strconv.Itoa(int(s.Inside.Src.Port())),
			"dst": s.Inside.Dst.Addr().String(), "dport": strconv.Itoa(int(s.Inside.Dst.Port())),
			"xsrc": s.Outside.Src.Addr().String(), "xsport": strconv.Itoa(int(s.Outside.Src.Port())),
			"xdst": s.Outside.Dst.Addr().String(), "xdport": strconv.Itoa(int(s.Outside.Dst.Port())),
		}
		t.Run(s.Rule, func(t *testing.T) {
			// rsyslog: the structured data of its create and delete.
			for _, typ := range []string{"session-create", "session-delete"} {
				if n := countSyslog(syslogs, typ, want); n != 1 {
					t.Errorf("rsyslog has %d %s with %v", n, typ, want)
				}
			}
			// fastnat events: the same JSON fields as the session.
			var created, deleted int
			for _, e := range events {
				if e.Inside == nil || *e.Inside != s.Inside || *e.Outside != s.Outside || e.Rule != s.Rule || e.Inbound != s.Inbound || e.App != s.App {
					continue
				}
				switch e.Type {
				case "session-create":
					created++
				case "session-delete":
					deleted++
					if e.Traffic == nil || *e.Traffic != s.Traffic || e.Start == nil || !e.Start.Equal(s.Start) {
						t.Errorf("session-delete %+v, want traffic %+v and start %v", e, s.Traffic, s.Start)
					}
				}
			}
			if created != 1 || deleted != 1 {
				t.Errorf("fastnat events streamed %d creates and %d deletes of the session", created, deleted)
			}
			// nfdump: natEvent 4 and 5 with the tuples; the delete's
			// packets each way.
			nf := map[string]any{"src4_addr": want["src"], "src_port": want["sport"], "dst4_addr": want["dst"], "dst_port": want["dport"],
				"src4_xlt_ip": want["xsrc"], "src_xlt_port": want["xsport"], "dst4_xlt_ip": want["xdst"], "dst_xlt_port": want["xdport"]}
			for ev, typ := range map[string]string{"4": "create", "5": "delete"} {
				nf["nat_event_id"] = ev
				var found []map[string]any
				for _, r := range records {
					if matches(r, nf) {
						found = append(found, r)
					}
				}
				if len(found) != 1 {
					t.Errorf("nfdump has %d session %s records with %v", len(found), typ, nf)
					continue
				}
				if typ == "delete" && (str(found[0]["in_packets"]) != strconv.FormatUint(s.Traffic.Initiator.Packets, 10) ||
					str(found[0]["out_packets"]) != strconv.FormatUint(s.Traffic.Responder.Packets, 10)) {
					t.Errorf("nfdump's delete counts %v/%v, the session's %+v", found[0]["in_packets"], found[0]["out_packets"], s.Traffic)
				}
			}
			// tshark: the records as they crossed the wire.
			ts := map[string]any{"cflow.nat_event": "4", "cflow.srcaddr": want["src"], "cflow.srcport": want["sport"],
				"cflow.dstaddr": want["dst"], "cflow.dstport": want["dport"],
				"cflow.post_natsource_ipv4_address": want["xsrc"], "cflow.post_naptsource_transport_port": want["xsport"],
				"cflow.post_natdestination_ipv4_address": want["xdst"], "cflow.post_naptdestination_transport_port": want["xdport"]}
			n := 0
			for _, r := range wire {
				if matches(r, ts) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("tshark decoded %d session-create records with %v", n, ts)
			}
		})
	}
	if !strings.Contains(daemon.Output(), "event exporter totals") {
		t.Errorf("fastnat did not log its exporters' totals:\n%s", daemon.Output())
	}
}

// countSyslog counts the messages of type typ whose structured data has
// every parameter of want.
func countSyslog(lines []syslogLine, typ string, want map[string]string) int {
	n := 0
	for _, l := range lines {
		if l.MsgID != typ {
			continue
		}
		ok := true
		for k, v := range want {
			if l.SD[k] != v {
				ok = false
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// matches reports whether record r has every field of want.
func matches(r, want map[string]any) bool {
	for k, v := range want {
		if str(r[k]) != str(v) {
			return false
		}
	}
	return true
}

// eventStream is a running `fastnat events --json`.
type eventStream struct {
	cancel context.CancelFunc
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []control.Event
	done   chan struct{}
}

// streamEvents starts `fastnat events --json` against the daemon at
// sock and waits until it is subscribed.
func streamEvents(t *testing.T, sock string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &eventStream{cancel: cancel, done: make(chan struct{})}
	s.cmd = exec.CommandContext(ctx, fastnatBinary(t), "events", "--json", "--socket", sock)
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.cmd.Wait() })
	go s.read(out)
	// The subscription shows in the event log's counters.
	waitFor(t, "fastnat events to subscribe", func() bool {
		return strings.Contains(fastnatShow(t, sock, "stats"), "fastnat events #")
	})
	return s
}

func (s *eventStream) read(r io.Reader) {
	defer close(s.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var e control.Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			s.mu.Lock()
			s.events = append(s.events, e)
			s.mu.Unlock()
		}
	}
}

// stop waits until the stream has carried n events, then ends it and
// returns what it carried.
func (s *eventStream) stop(t *testing.T, n int) []control.Event {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d events from fastnat events", n), func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.events) >= n
	})
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]control.Event(nil), s.events...)
}

// waitDrained waits until the UDP socket bound to port in the router
// namespace has read everything queued for it (its Recv-Q is empty), so
// that stopping the collector loses nothing in flight.
func waitDrained(t *testing.T, topo *testnet.Topology, port int) {
	t.Helper()
	empty := 0
	waitFor(t, fmt.Sprintf("the collector on port %d to read its queue", port), func() bool {
		out, err := testnet.Run(context.Background(), topo.Router, "ss", "-H", "-u", "-l", "-n", "sport", "=", ":"+strconv.Itoa(port))
		f := strings.Fields(string(out))
		if err == nil && len(f) > 2 && f[1] == "0" {
			empty++
		} else {
			empty = 0
		}
		return empty >= 3
	})
}
