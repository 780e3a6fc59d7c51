package control

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/metrics"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
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
// answered ping, created at time 100 of a clock that began at epoch.
type caseTable struct {
	t                    *flowtable.Table
	ctl, data, udp, icmp uint32
}

const tcpEstablished, tcpSynSent = 3, 1 // nat's state numbers

// The case table's rule labels, which caseNames resolves as the NAT
// would: the server rule, the ALG's data connection of its control
// session, the outbound rule, and a rule a reload removed (the ping).
const (
	labelServer uint16 = iota + 1
	labelServerALG
	labelOutbound
	labelRemoved
)

var epoch = time.Date(2025, 12, 3, 9, 18, 0, 0, time.UTC)

// caseNames are the names the case table's numbers stand for.
var caseNames = Names{
	Rule: func(label uint16) nat.RuleRef {
		switch label {
		case labelServer:
			return nat.RuleRef{Kind: natlog.RuleServer}
		case labelServerALG:
			return nat.RuleRef{Kind: natlog.RuleServer, Via: natlog.ViaALG}
		case labelOutbound:
			return nat.RuleRef{Kind: natlog.RuleOutbound}
		case labelRemoved:
			return nat.RuleRef{Kind: natlog.RuleOutbound, Index: 1, Removed: true}
		}
		return nat.RuleRef{}
	},
	Ingress: func(i uint16) string { return []string{"inside", "outside"}[i] },
	Epoch:   epoch,
}

const fromInside = 1 // nat's flag: the first packet came from inside

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
		App: uint8(portmap.AppFTP), MapEntry: 0, Rule: labelServer, Ingress: 1,
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
		App: uint8(portmap.AppFTPData), MapEntry: -1, Parent: c.ctl, ParentGen: ft.Gen(c.ctl), Rule: labelServerALG, Ingress: 1,
	}, tcpSynSent, 30)
	c.udp = insert(flowtable.Session{
		Key: [2]packet.Tuple{
			tuple(t, packet.ProtoUDP, "192.168.0.5:5000", "8.8.8.8:53"),
			tuple(t, packet.ProtoUDP, "8.8.8.8:53", "220.160.54.204:1024"),
		},
		App: uint8(portmap.AppDNS), MapEntry: -1, Rule: labelOutbound, Flags: fromInside,
	}, 0, 300)
	ft.Touch(c.udp, flowtable.Orig, 60, 100)
	c.icmp = insert(flowtable.Session{
		Key: [2]packet.Tuple{
			tuple(t, packet.ProtoICMP, "192.168.0.5:7", "8.8.8.8:7"),
			tuple(t, packet.ProtoICMP, "8.8.8.8:1025", "220.160.54.204:1025"),
		},
		MapEntry: -1, Rule: labelRemoved, Flags: fromInside,
	}, 0, 60)
	ft.Touch(c.icmp, flowtable.Orig, 98, 100)
	ft.Touch(c.icmp, flowtable.Reply, 98, 101)
	return c
}

func TestListSessions(t *testing.T) {
	c := newCaseTable(t)
	l, err := ListSessions(c.t, 102, SessionQuery{}, caseNames)
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
		name                 string
		id                   uint32
		app, state, proto    string
		rule, ingress        string
		inside, outside      string // src->dst
		inbound              bool
		idle, ttl            int64
		initiator, responder Traffic
		parent               *uint32
	}{
		{"ftp control", c.ctl, "ftp", "TCP_ESTABLISHED", "tcp", "nat.server[0]", "outside",
			"192.168.0.226:21->125.77.89.113:36755", "220.160.54.204:9091->125.77.89.113:36755", true,
			2, 7438, Traffic{17, 822}, Traffic{16, 1289}, nil},
		{"ftp data", c.data, "ftp-data", "TCP_SYN_SENT", "tcp", "nat.server[0]/alg", "outside",
			"192.168.0.226:30001->125.77.89.113:40001", "220.160.54.204:30001->125.77.89.113:40001", true,
			2, 28, Traffic{}, Traffic{}, &c.ctl},
		{"udp without reply", c.udp, "dns", "UDP_READY", "udp", "nat.outbound[0]", "inside",
			"192.168.0.5:5000->8.8.8.8:53", "220.160.54.204:1024->8.8.8.8:53", false,
			2, 298, Traffic{1, 60}, Traffic{}, nil},
		{"answered ping", c.icmp, "other", "ICMP_REPLY", "icmp", "nat.outbound[1] (removed)", "inside",
			"192.168.0.5:7->8.8.8.8:7", "220.160.54.204:1025->8.8.8.8:1025", false,
			1, 59, Traffic{1, 98}, Traffic{1, 98}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := byID[tc.id]
			if !ok {
				t.Fatalf("session %d not listed", tc.id)
			}
			if s.App != tc.app || s.State != tc.state || s.Protocol != tc.proto || s.Rule != tc.rule || s.Ingress != tc.ingress {
				t.Errorf("app %q state %q protocol %q rule %q ingress %q", s.App, s.State, s.Protocol, s.Rule, s.Ingress)
			}
			if in, out := s.Inside.Src.String()+"->"+s.Inside.Dst.String(), s.Outside.Src.String()+"->"+s.Outside.Dst.String(); in != tc.inside || out != tc.outside || s.Inbound != tc.inbound {
				t.Errorf("inside %s outside %s inbound %t, want %s %s %t", in, out, s.Inbound, tc.inside, tc.outside, tc.inbound)
			}
			if s.Idle != tc.idle || s.TTL != tc.ttl || s.Age != 2 {
				t.Errorf("idle %d ttl %d age %d, want %d %d 2", s.Idle, s.TTL, s.Age, tc.idle, tc.ttl)
			}
			if want := epoch.Add(100 * time.Second); !s.Start.Equal(want) {
				t.Errorf("start %v, want %v", s.Start, want)
			}
			if s.Traffic.Initiator != tc.initiator || s.Traffic.Responder != tc.responder {
				t.Errorf("traffic %+v, want %+v / %+v", s.Traffic, tc.initiator, tc.responder)
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

// TestSessionFilters runs every filter, alone and combined, over the case
// table: which sessions each selects, and that a bad filter is refused
// with what is allowed.
func TestSessionFilters(t *testing.T) {
	c := newCaseTable(t)
	tests := []struct {
		name string
		f    SessionFilter
		want []uint32
	}{
		{"none", SessionFilter{}, []uint32{c.ctl, c.data, c.udp, c.icmp}},
		{"app", SessionFilter{App: "ftp"}, []uint32{c.ctl}},
		{"app in any case", SessionFilter{App: "FTP-DATA"}, []uint32{c.data}},
		{"app other", SessionFilter{App: "other"}, []uint32{c.icmp}},
		{"app none of it", SessionFilter{App: "sip"}, nil},
		{"address of the initiator", SessionFilter{Addr: "125.77.89.113"}, []uint32{c.ctl, c.data}},
		{"inside address", SessionFilter{Addr: "192.168.0.226"}, []uint32{c.ctl, c.data}},
		{"public address", SessionFilter{Addr: "220.160.54.204"}, []uint32{c.ctl, c.data, c.udp, c.icmp}},
		{"prefix", SessionFilter{Addr: "192.168.0.0/30"}, nil},
		{"prefix of hosts", SessionFilter{Addr: "192.168.0.0/29"}, []uint32{c.udp, c.icmp}},
		{"destination port", SessionFilter{Port: 9091}, []uint32{c.ctl}},
		{"translated port", SessionFilter{Port: 1024}, []uint32{c.udp}},
		{"port of either tuple", SessionFilter{Port: 53}, []uint32{c.udp}},
		{"icmp identifier", SessionFilter{Port: 1025}, []uint32{c.icmp}},
		{"protocol", SessionFilter{Protocol: "tcp"}, []uint32{c.ctl, c.data}},
		{"protocol icmp", SessionFilter{Protocol: "ICMP"}, []uint32{c.icmp}},
		{"protocol number", SessionFilter{Protocol: "17"}, []uint32{c.udp}},
		{"state", SessionFilter{State: "established"}, []uint32{c.ctl}},
		{"state with protocol", SessionFilter{State: "TCP_SYN_SENT"}, []uint32{c.data}},
		{"state of udp", SessionFilter{State: "ready"}, []uint32{c.udp}},
		{"state open is udp's", SessionFilter{State: "udp_open"}, nil},
		{"state reply", SessionFilter{State: "reply"}, []uint32{c.icmp}},
		{"rule", SessionFilter{Rule: "nat.server[0]"}, []uint32{c.ctl, c.data}},
		{"rule and way", SessionFilter{Rule: "nat.server[0]/alg"}, []uint32{c.data}},
		{"way", SessionFilter{Rule: "alg"}, []uint32{c.data}},
		{"kind", SessionFilter{Rule: "nat.outbound"}, []uint32{c.udp}},
		{"outbound rule 0", SessionFilter{Rule: "nat.outbound[0]"}, []uint32{c.udp}},
		{"a removed rule's index is another rule's", SessionFilter{Rule: "nat.outbound[1]"}, nil},
		{"removed", SessionFilter{Rule: "removed"}, []uint32{c.icmp}},
		{"hairpin", SessionFilter{Rule: "hairpin"}, nil},
		{"combined", SessionFilter{Protocol: "tcp", Port: 9091, State: "established", App: "ftp", Rule: "nat.server", Addr: "125.77.89.0/24"}, []uint32{c.ctl}},
		{"combined, one fails", SessionFilter{Protocol: "tcp", Port: 9091, State: "syn_sent"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ListSessions(c.t, 102, SessionQuery{Filter: tc.f}, caseNames)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint32
			for _, s := range l.Sessions {
				got = append(got, s.ID)
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) || l.Matched != len(want) {
				t.Errorf("got %v (matched %d), want %v", got, l.Matched, want)
			}
		})
	}
	bad := []struct {
		f    SessionFilter
		says string
	}{
		{SessionFilter{App: "gopher"}, "ftp-data"},
		{SessionFilter{Addr: "10.0.0.300"}, "not an IPv4 address or prefix"},
		{SessionFilter{Addr: "::1"}, "not an IPv4"},
		{SessionFilter{Port: 70000}, "allowed: 1 to 65535"},
		{SessionFilter{Protocol: "ipip"}, "known: icmp"},
		{SessionFilter{State: "listening"}, "known: syn_sent"},
		{SessionFilter{State: "tcp_"}, "known: syn_sent"},
		{SessionFilter{Rule: "nat.outbound[x]"}, "nat.outbound[N]"},
		{SessionFilter{Rule: "port_mapping[0]"}, "nat.outbound[N]"},
	}
	for _, b := range bad {
		if _, err := ListSessions(c.t, 102, SessionQuery{Filter: b.f}, caseNames); !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), b.says) {
			t.Errorf("%+v: %v, want a bad request saying %q", b.f, err, b.says)
		}
	}
	for _, q := range []struct {
		limit, shown int
	}{{3, 3}, {10, 4}} {
		l, _ := ListSessions(c.t, 102, SessionQuery{Limit: q.limit}, caseNames)
		if len(l.Sessions) != q.shown || l.Matched != 4 {
			t.Errorf("limit %d: %d shown of %d", q.limit, len(l.Sessions), l.Matched)
		}
	}
}

// TestListSessionsSkipsDeleted: a session deleted (and its slot reused)
// is never listed with its old keys.
func TestListSessionsSkipsDeleted(t *testing.T) {
	c := newCaseTable(t)
	c.t.Delete(c.ctl)
	l, _ := ListSessions(c.t, 102, SessionQuery{}, caseNames)
	for _, s := range l.Sessions {
		if s.ID == c.ctl || s.App == "ftp" {
			t.Errorf("deleted session listed: %+v", s)
		}
	}
	if l.Matched != 3 {
		t.Errorf("matched %d, want 3", l.Matched)
	}
}

// TestClearSessions: clear ends what the filter selects through the
// callback, by id and generation, and counts a session that ended on its
// own meanwhile as matched but not cleared.
func TestClearSessions(t *testing.T) {
	c := newCaseTable(t)
	var ended []uint32
	end := func(id, gen uint32) bool {
		if id == c.data {
			return false // expired under the walk
		}
		ended = append(ended, id)
		return c.t.DeleteGen(id, gen)
	}
	r, err := ClearSessions(c.t, 102, SessionFilter{Protocol: "tcp"}, caseNames, end)
	if err != nil || r.Matched != 2 || r.Cleared != 1 || !slices.Equal(ended, []uint32{c.ctl}) {
		t.Fatalf("clear tcp: %+v %v, ended %v", r, err, ended)
	}
	if c.t.Live(c.ctl) || !c.t.Live(c.udp) {
		t.Fatal("clear ended the wrong sessions")
	}
	if _, err := ClearSessions(c.t, 102, SessionFilter{State: "nope"}, caseNames, end); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("bad filter: %v", err)
	}
	var b bytes.Buffer
	WriteCleared(&b, r)
	if b.String() != "cleared 1 sessions (1 more matched and ended on their own meanwhile)\n" {
		t.Errorf("%q", b.String())
	}
}

// TestWriteSessions checks the brief format, one line per session under a
// header, against the whole expected text.
func TestWriteSessions(t *testing.T) {
	c := newCaseTable(t)
	tests := []struct {
		name string
		q    SessionQuery
		want string
	}{
		{"all", SessionQuery{}, `ID  PROTO  STATE        INITIATOR                                  RESPONDER                                 APP       RULE                       IN       AGE  TTL
0   tcp    ESTABLISHED  125.77.89.113:36755->220.160.54.204:9091   192.168.0.226:21->125.77.89.113:36755     ftp       nat.server[0]              outside  2s   2h3m58s
1   tcp    SYN_SENT     125.77.89.113:40001->220.160.54.204:30001  192.168.0.226:30001->125.77.89.113:40001  ftp-data  nat.server[0]/alg          outside  2s   28s
2   udp    READY        192.168.0.5:5000->8.8.8.8:53               8.8.8.8:53->220.160.54.204:1024           dns       nat.outbound[0]            inside   2s   4m58s
3   icmp   REPLY        192.168.0.5:7->8.8.8.8:7                   8.8.8.8:1025->220.160.54.204:1025         other     nat.outbound[1] (removed)  inside   2s   59s
Total sessions found: 4
`},
		{"limited", SessionQuery{Limit: 1, Filter: SessionFilter{Protocol: "tcp"}}, `ID  PROTO  STATE        INITIATOR                                 RESPONDER                              APP  RULE           IN       AGE  TTL
0   tcp    ESTABLISHED  125.77.89.113:36755->220.160.54.204:9091  192.168.0.226:21->125.77.89.113:36755  ftp  nat.server[0]  outside  2s   2h3m58s
Total sessions found: 2 (1 shown; raise --limit to see more)
`},
		{"none", SessionQuery{Filter: SessionFilter{App: "sip"}}, "Total sessions found: 0\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ListSessions(c.t, 102, tc.q, caseNames)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			WriteSessions(&b, l)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
}

func TestWriteSessionsVerboseCaseLayout(t *testing.T) {
	c := newCaseTable(t)
	l, _ := ListSessions(c.t, 102, SessionQuery{Filter: SessionFilter{App: "ftp"}}, caseNames)
	var b bytes.Buffer
	WriteSessionsVerbose(&b, l)
	want := `Initiator:
  Source IP/port: 125.77.89.113/36755
  Destination IP/port: 220.160.54.204/9091
  Protocol: TCP(6)
  Inbound interface: outside
Responder:
  Source IP/port: 192.168.0.226/21
  Destination IP/port: 125.77.89.113/36755
  Protocol: TCP(6)
State: TCP_ESTABLISHED
Application: FTP
Rule: nat.server[0]
Start time: 2025-12-03 09:19:40  TTL: 2h3m58s
Idle: 2s  Timeout: 2h4m
Initiator->Responder: 17 packets 822 bytes
Responder->Initiator: 16 packets 1289 bytes
Session ID: 0  Port mapping: port_mapping[0]

Total sessions found: 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	l, _ = ListSessions(c.t, 102, SessionQuery{Limit: 1}, caseNames)
	WriteSessionsVerbose(&b, l)
	if !strings.HasSuffix(b.String(), "Total sessions found: 4 (1 shown; raise --limit to see more)\n") {
		t.Errorf("truncated listing ends %q", b.String()[max(0, b.Len()-80):])
	}
	b.Reset()
	l, _ = ListSessions(c.t, 102, SessionQuery{Filter: SessionFilter{App: "ftp-data"}}, caseNames)
	WriteSessionsVerbose(&b, l)
	if !strings.Contains(b.String(), "Session ID: 1  Parent session: 0\n") {
		t.Errorf("data session lacks its parent:\n%s", b.String())
	}
}

func TestListExpectations(t *testing.T) {
	c := newCaseTable(t)
	if got := ListExpectations(c.t, 100, caseNames); len(got) != 0 {
		t.Fatalf("expectations in an empty store: %+v", got)
	}
	e := flowtable.Expectation{
		Proto: packet.ProtoTCP, SrcAddr: tuple(t, 6, "125.77.89.113:0", "0.0.0.0:0").SrcAddr,
		DstAddr: tuple(t, 6, "220.160.54.204:0", "0.0.0.0:0").SrcAddr, DstPort: 30002,
		Xlate:  tuple(t, 6, "192.168.0.226:30002", "125.77.89.113:0"),
		Parent: c.ctl, ParentGen: c.t.Gen(c.ctl), App: uint8(portmap.AppFTPData), Expires: 400,
	}
	if r := c.t.Expect(e); r != flowtable.Inserted {
		t.Fatal(r)
	}
	e.SrcAddr, e.DstPort = 0, 30003
	c.t.Expect(e)
	got := ListExpectations(c.t, 100, caseNames)
	if len(got) != 2 {
		t.Fatalf("%d expectations, want 2", len(got))
	}
	sources := map[string]bool{}
	for _, x := range got {
		sources[x.Source] = true
		if x.To.String() != "192.168.0.226:30002" || x.App != "ftp-data" || x.Parent != c.ctl || x.TTL != 300 || x.Protocol != "tcp" ||
			x.Rule != "nat.server[0]/alg" {
			t.Errorf("expectation %+v", x)
		}
	}
	if !sources["125.77.89.113"] || !sources["any"] {
		t.Errorf("sources %v", sources)
	}
	var b bytes.Buffer
	WriteExpectations(&b, got)
	if !strings.Contains(b.String(), "220.160.54.204:30002") || !strings.Contains(b.String(), "5m") {
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
		Blocks:   []metrics.Blocks{{Rule: 1, BlockSize: 512, Held: 3, Capacity: 126, QuotaExceeded: 2}},
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
		`\nport blocks\n  RULE +BLOCK SIZE +HELD +CAPACITY +QUOTA EXCEEDED +EXHAUSTED\n  nat\.outbound\[1\] +512 +3 +126 +2 +0\n`,
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

// TestStateWordEveryProtocol: a state without its protocol matches that
// state of every protocol, the address-only ones (GRE, ESP, a number)
// included; with its protocol, only that protocol's.
func TestStateWordEveryProtocol(t *testing.T) {
	for _, tc := range []struct {
		filter string
		name   string
		want   bool
	}{
		{"ready", "GRE_READY", true},
		{"ready", "47_READY", true},
		{"ready", "UDP-LITE_READY", true},
		{"open", "ESP_OPEN", true},
		{"open", "GRE_READY", false},
		{"established", "TCP_ESTABLISHED", true},
		{"syn_sent", "TCP_SYN_SENT", true},
		{"sent", "TCP_SYN_SENT", false},
		{"gre_open", "GRE_OPEN", true},
		{"gre_open", "ESP_OPEN", false},
		{"tcp_established", "TCP_ESTABLISHED", true},
	} {
		m, err := SessionFilter{State: tc.filter}.compile()
		if tc.filter == "sent" {
			if !errors.Is(err, ErrBadRequest) {
				t.Errorf("state %q: %v, want a bad request", tc.filter, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("state %q: %v", tc.filter, err)
		}
		if got := m.stateMatches(tc.name); got != tc.want {
			t.Errorf("state %q on a session in %s: %v, want %v", tc.filter, tc.name, got, tc.want)
		}
	}
}
