package control

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/metrics"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

func tuple(t *testing.T, proto uint8, src, dst string) packet.Tuple {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	a, b := s.Addr().As4(), d.Addr().As4()
	return packet.Tuple{
		SrcAddr: uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]),
		DstAddr: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]),
		SrcPort: s.Port(), DstPort: d.Port(), Proto: proto,
	}
}

// caseTable holds the case's FTP control session (with its firewall's
// packet counts), a passive data connection, a one-way UDP flow and an
// answered ping, created at time 100.
type caseTable struct {
	t                    *flowtable.Table
	ctl, data, udp, icmp uint32
}

const tcpEstablished, tcpSynSent = 3, 1 // nat's state numbers

func newCaseTable(t *testing.T) caseTable {
	t.Helper()
	ft, err := flowtable.New(flowtable.Config{MaxSessions: 256})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(s flowtable.Session, state uint8, timeout uint32) uint32 {
		t.Helper()
		id, _, r := ft.Insert(&s, state, timeout, 100)
		if r != flowtable.Inserted {
			t.Fatal(r)
		}
		return id
	}
	var c caseTable
	c.t = ft
	c.ctl = insert(flowtable.Session{
		Key: [2]packet.Tuple{
			tuple(t, packet.ProtoTCP, "125.77.89.113:36755", "220.160.54.204:9091"),
			tuple(t, packet.ProtoTCP, "192.168.0.226:21", "125.77.89.113:36755"),
		},
		App: uint8(portmap.AppFTP), MapEntry: 0,
	}, tcpEstablished, 7440)
	// 17 packets of 822 bytes in all one way, 16 of 1289 the other.
	for i := range 17 {
		ft.Touch(c.ctl, flowtable.Orig, 48+6*(i/16), 100)
	}
	for i := range 16 {
		ft.Touch(c.ctl, flowtable.Reply, 80+9*(i/15), 100)
	}
	c.data = insert(flowtable.Session{
		Key: [2]packet.Tuple{
			tuple(t, packet.ProtoTCP, "125.77.89.113:40001", "220.160.54.204:30001"),
			tuple(t, packet.ProtoTCP, "192.168.0.226:30001", "125.77.89.113:40001"),
		},
		App: uint8(portmap.AppFTPData), MapEntry: -1, Parent: c.ctl, ParentGen: ft.Gen(c.ctl),
	}, tcpSynSent, 30)
	c.udp = insert(flowtable.Session{
		Key: [2]packet.Tuple{
			tuple(t, packet.ProtoUDP, "192.168.0.5:5000", "8.8.8.8:53"),
			tuple(t, packet.ProtoUDP, "8.8.8.8:53", "220.160.54.204:1024"),
		},
		App: uint8(portmap.AppDNS), MapEntry: -1,
	}, 0, 300)
	ft.Touch(c.udp, flowtable.Orig, 60, 100)
	c.icmp = insert(flowtable.Session{
		Key: [2]packet.Tuple{
			tuple(t, packet.ProtoICMP, "192.168.0.5:7", "8.8.8.8:7"),
			tuple(t, packet.ProtoICMP, "8.8.8.8:1025", "220.160.54.204:1025"),
		},
		MapEntry: -1,
	}, 0, 60)
	ft.Touch(c.icmp, flowtable.Orig, 98, 100)
	ft.Touch(c.icmp, flowtable.Reply, 98, 101)
	return c
}

func TestListSessions(t *testing.T) {
	c := newCaseTable(t)
	l, err := ListSessions(c.t, 102, SessionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if l.Matched != 4 || len(l.Sessions) != 4 {
		t.Fatalf("matched %d, %d sessions; want 4", l.Matched, len(l.Sessions))
	}
	byID := map[uint32]Session{}
	for _, s := range l.Sessions {
		byID[s.ID] = s
	}
	tests := []struct {
		name              string
		id                uint32
		app, state, proto string
		idle, ttl         int64
		orig, reply       Traffic
		parent            *uint32
	}{
		{"ftp control", c.ctl, "ftp", "TCP_ESTABLISHED", "tcp", 2, 7438, Traffic{17, 822}, Traffic{16, 1289}, nil},
		{"ftp data", c.data, "ftp-data", "TCP_SYN_SENT", "tcp", 2, 28, Traffic{}, Traffic{}, &c.ctl},
		{"udp without reply", c.udp, "dns", "UDP_READY", "udp", 2, 298, Traffic{1, 60}, Traffic{}, nil},
		{"answered ping", c.icmp, "other", "ICMP_REPLY", "icmp", 1, 59, Traffic{1, 98}, Traffic{1, 98}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := byID[tc.id]
			if !ok {
				t.Fatalf("session %d not listed", tc.id)
			}
			if s.App != tc.app || s.State != tc.state || s.Protocol != tc.proto {
				t.Errorf("app %q state %q protocol %q", s.App, s.State, s.Protocol)
			}
			if s.Idle != tc.idle || s.TTL != tc.ttl {
				t.Errorf("idle %d ttl %d, want %d %d", s.Idle, s.TTL, tc.idle, tc.ttl)
			}
			if s.Orig != tc.orig || s.Reply != tc.reply {
				t.Errorf("traffic %+v / %+v, want %+v / %+v", s.Orig, s.Reply, tc.orig, tc.reply)
			}
			if (s.Parent == nil) != (tc.parent == nil) || s.Parent != nil && *s.Parent != *tc.parent {
				t.Errorf("parent %v, want %v", s.Parent, tc.parent)
			}
		})
	}
	ctl := byID[c.ctl]
	if ctl.Initiator.Src.String() != "125.77.89.113:36755" || ctl.Responder.Src.String() != "192.168.0.226:21" || ctl.Mapping != 0 {
		t.Errorf("control session %+v", ctl)
	}
}

func TestListSessionsFilter(t *testing.T) {
	c := newCaseTable(t)
	tests := []struct {
		name    string
		q       SessionQuery
		shown   int
		matched int
	}{
		{"ftp", SessionQuery{App: "ftp"}, 1, 1},
		{"case-insensitive", SessionQuery{App: "FTP-DATA"}, 1, 1},
		{"other", SessionQuery{App: "other"}, 1, 1},
		{"none of it", SessionQuery{App: "sip"}, 0, 0},
		{"limit", SessionQuery{Limit: 3}, 3, 4},
		{"limit over matches", SessionQuery{Limit: 10}, 4, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ListSessions(c.t, 102, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Sessions) != tc.shown || l.Matched != tc.matched {
				t.Errorf("%d shown of %d, want %d of %d", len(l.Sessions), l.Matched, tc.shown, tc.matched)
			}
		})
	}
	if _, err := ListSessions(c.t, 102, SessionQuery{App: "gopher"}); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), "ftp-data") {
		t.Errorf("unknown app: %v", err)
	}
}

// TestListSessionsSkipsDeleted: a session deleted (and its slot reused)
// is never listed with its old keys.
func TestListSessionsSkipsDeleted(t *testing.T) {
	c := newCaseTable(t)
	c.t.Delete(c.ctl)
	l, _ := ListSessions(c.t, 102, SessionQuery{})
	for _, s := range l.Sessions {
		if s.ID == c.ctl || s.App == "ftp" {
			t.Errorf("deleted session listed: %+v", s)
		}
	}
	if l.Matched != 3 {
		t.Errorf("matched %d, want 3", l.Matched)
	}
}

func TestWriteSessionsCaseLayout(t *testing.T) {
	c := newCaseTable(t)
	l, _ := ListSessions(c.t, 102, SessionQuery{App: "ftp"})
	var b bytes.Buffer
	WriteSessions(&b, l)
	want := `Initiator:
  Source IP/port: 125.77.89.113/36755
  Destination IP/port: 220.160.54.204/9091
  Protocol: TCP(6)
Responder:
  Source IP/port: 192.168.0.226/21
  Destination IP/port: 125.77.89.113/36755
  Protocol: TCP(6)
State: TCP_ESTABLISHED
Application: FTP
Idle: 2s  TTL: 2h3m58s  Timeout: 2h4m0s
Initiator->Responder: 17 packets 822 bytes
Responder->Initiator: 16 packets 1289 bytes
Session ID: 0  Port mapping: port_mapping[0]

Total sessions found: 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	l, _ = ListSessions(c.t, 102, SessionQuery{Limit: 1})
	WriteSessions(&b, l)
	if !strings.HasSuffix(b.String(), "Total sessions found: 4 (1 shown; raise --limit to see more)\n") {
		t.Errorf("truncated listing ends %q", b.String()[max(0, b.Len()-80):])
	}
	b.Reset()
	l, _ = ListSessions(c.t, 102, SessionQuery{App: "ftp-data"})
	WriteSessions(&b, l)
	if !strings.Contains(b.String(), "Session ID: 1  Parent session: 0\n") {
		t.Errorf("data session lacks its parent:\n%s", b.String())
	}
}

func TestListExpectations(t *testing.T) {
	c := newCaseTable(t)
	if got := ListExpectations(c.t, 100); len(got) != 0 {
		t.Fatalf("expectations in an empty store: %+v", got)
	}
	e := flowtable.Expectation{
		Proto: packet.ProtoTCP, SrcAddr: tuple(t, 6, "125.77.89.113:0", "0.0.0.0:0").SrcAddr,
		DstAddr: tuple(t, 6, "220.160.54.204:0", "0.0.0.0:0").SrcAddr, DstPort: 30002,
		Xlate:  tuple(t, 6, "192.168.0.226:30002", "125.77.89.113:0"),
		Parent: c.ctl, App: uint8(portmap.AppFTPData), Expires: 400,
	}
	if r := c.t.Expect(e); r != flowtable.Inserted {
		t.Fatal(r)
	}
	e.SrcAddr, e.DstPort = 0, 30003
	c.t.Expect(e)
	got := ListExpectations(c.t, 100)
	if len(got) != 2 {
		t.Fatalf("%d expectations, want 2", len(got))
	}
	sources := map[string]bool{}
	for _, x := range got {
		sources[x.Source] = true
		if x.To.String() != "192.168.0.226:30002" || x.App != "ftp-data" || x.Parent != c.ctl || x.TTL != 300 || x.Protocol != "tcp" {
			t.Errorf("expectation %+v", x)
		}
	}
	if !sources["125.77.89.113"] || !sources["any"] {
		t.Errorf("sources %v", sources)
	}
	var b bytes.Buffer
	WriteExpectations(&b, got)
	if !strings.Contains(b.String(), "220.160.54.204:30002") || !strings.Contains(b.String(), "5m0s") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestListMappings(t *testing.T) {
	doc := `[[interface]]
name = "eth0"
role = "inside"
[[interface]]
name = "eth1"
role = "outside"

[[port_mapping]]
application = "ftp"
port = 9091
protocol = "tcp"
`
	cfg, err := config.Parse("f.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	st := &alg.Stats{Entries: []alg.EntryCounters{
		{Entry: -1, Counters: alg.Counters{Sessions: 1}},
		{Entry: 0, Counters: alg.Counters{Sessions: 4, Rewritten: 3}},
	}}
	ms := ListMappings(cfg, st)
	var user, ftp21 *Mapping
	for i := range ms {
		switch {
		case ms[i].Port == 9091:
			user = &ms[i]
		case ms[i].Port == 21 && ms[i].App == "ftp":
			ftp21 = &ms[i]
		}
	}
	if user == nil || user.Index != 0 || user.Line != 8 || user.ALGSessions != 4 || user.ALGRewritten != 3 || user.Protocol != "tcp" {
		t.Fatalf("9091 mapping %+v", user)
	}
	if ftp21 == nil || ftp21.Index != -1 || ftp21.ALGSessions != 1 {
		t.Fatalf("default ftp mapping %+v", ftp21)
	}
	var b bytes.Buffer
	WriteMappings(&b, ms)
	lines := strings.Split(b.String(), "\n")
	if !strings.HasPrefix(lines[0], "APPLICATION") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.Contains(b.String(), "ftp          9091  tcp       any    port_mapping[0], line 8  4             3") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestWriteStats(t *testing.T) {
	s := metrics.Snapshot{
		UptimeSeconds: 65, ConfigFile: "/etc/fastnat/fastnat.toml", Build: metrics.Build{Version: "v1.2.3"},
		LastReload: metrics.LastReload{Time: 1700000000, Error: "t.toml:3:9: dataplane.batch: 0 is out of range"},
		Workers: []metrics.Worker{{ID: 0, RxPackets: 10, TxPackets: 9, Translated: 9, BusySeconds: 13,
			Drops: map[string]uint64{"nat_unsolicited": 1, "tx_full": 0},
			Ports: []metrics.Port{{Interface: "outside", Rx: 6, Tx: 4}}}},
		Table:    metrics.Table{Sessions: 3, Capacity: 100, Refused: map[string]uint64{}},
		Sessions: []metrics.SessionCount{{Protocol: "tcp", App: "ftp", Count: 1}},
		Pools:    []metrics.Pool{{Address: "198.18.0.204", TCP: 2, Capacity: 64512}, {Address: "198.18.0.205"}},
		FTP:      metrics.FTPSnapshot(alg.Counters{Rewritten: 2}),
		Events: &metrics.Events{Made: 103, RingDropped: 3, Exporters: []metrics.EventExporter{
			{Name: "syslog udp 192.0.2.11:514", Queued: 100, Exported: 99, Failed: 1}}},
		Reloads: metrics.Reloads{OK: 1},
	}
	var b bytes.Buffer
	WriteStats(&b, &s)
	out := b.String()
	for _, want := range []string{
		`fastnat v1\.2\.3, up 1m5s, configuration /etc/fastnat/fastnat.toml, reloads 1 ok, 0 refused, 0 failed\n`,
		`last reload at 2023-11-14T22:13:20Z FAILED: t\.toml:3:9: dataplane\.batch: 0 is out of range\n`,
		`\n  0 +0 +10 +0 +9 +0 +9 +0 +1 +20\.0%\n`,
		`sessions 3 of 100 \(3\.0%\)`,
		`nat_unsolicited\s+1\n`,
		`198\.18\.0\.204\s+2\s+0\s+0\s+64512\n`,
		`198\.18\.0\.205\s+0\s+0\s+0\s+-\n`,
		`\n  rewritten\s+2\n`,
		`\n  tcp\s+ftp\s+1\n`,
		`\n  103 events made, 3 dropped at a full worker ring\n  syslog udp 192.0.2.11:514: exported 99, queue dropped 0, failed 1\n`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("stats lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tx_full") {
		t.Errorf("zero drop reason shown:\n%s", out)
	}
}
