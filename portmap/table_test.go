package portmap

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func ip(s string) uint32 { return v4(netip.MustParseAddr(s)) }

func pfx(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

// slowLookup is the specification written as plainly as possible: among the
// user mappings that match, the most specific scope wins, then a mapping
// naming the protocol, then the later one in the list; only when no user
// mapping matches do the well-known ports apply.
func slowLookup(ms []Mapping, proto uint8, dst uint32, port uint16) (App, int) {
	bestRank, bestSpecific, bestIdx, bestApp := -1, false, -1, AppOther
	consider := func(rank int, specific bool, i int, app App) {
		if rank > bestRank || rank == bestRank && (specific && !bestSpecific || specific == bestSpecific && i >= bestIdx) {
			bestRank, bestSpecific, bestIdx, bestApp = rank, specific, i, app
		}
	}
	for i, m := range ms {
		if m.Port != port || m.Proto != ProtoAny && m.Proto != proto {
			continue
		}
		specific := m.Proto != ProtoAny
		if len(m.Hosts) == 0 {
			consider(rankUnscoped, specific, i, m.App)
		}
		for _, h := range m.Hosts {
			if h.IsValid() && h.Addr().Is4() && h.Masked().Contains(netip.AddrFrom4([4]byte{byte(dst >> 24), byte(dst >> 16), byte(dst >> 8), byte(dst)})) {
				consider(rankPrefix+h.Bits(), specific, i, m.App)
			}
		}
	}
	if bestRank >= 0 {
		return bestApp, bestIdx
	}
	for _, d := range wellKnown {
		if d.port == port && d.proto == proto {
			return d.app, -1
		}
	}
	return AppOther, -1
}

type probe struct {
	name  string
	proto uint8
	dst   string
	port  uint16
	app   App
	idx   int
}

func TestLookupRules(t *testing.T) {
	tests := []struct {
		name   string
		ms     []Mapping
		probes []probe
	}{
		{
			name: "defaults: every application on its well-known port",
			probes: []probe{
				{"ftp", ProtoTCP, "192.0.2.1", 21, AppFTP, -1},
				{"ssh", ProtoTCP, "192.0.2.1", 22, AppSSH, -1},
				{"smtp", ProtoTCP, "192.0.2.1", 25, AppSMTP, -1},
				{"dns tcp", ProtoTCP, "192.0.2.1", 53, AppDNS, -1},
				{"dns udp", ProtoUDP, "192.0.2.1", 53, AppDNS, -1},
				{"tftp", ProtoUDP, "192.0.2.1", 69, AppTFTP, -1},
				{"http", ProtoTCP, "192.0.2.1", 80, AppHTTP, -1},
				{"https", ProtoTCP, "192.0.2.1", 443, AppHTTPS, -1},
				{"rtsp", ProtoTCP, "192.0.2.1", 554, AppRTSP, -1},
				{"h323", ProtoTCP, "192.0.2.1", 1720, AppH323, -1},
				{"pptp", ProtoTCP, "192.0.2.1", 1723, AppPPTP, -1},
				{"sip tcp", ProtoTCP, "192.0.2.1", 5060, AppSIP, -1},
				{"sip udp", ProtoUDP, "192.0.2.1", 5060, AppSIP, -1},
				{"defaults are protocol-specific: udp 21", ProtoUDP, "192.0.2.1", 21, AppOther, -1},
				{"defaults are protocol-specific: sctp 80", ProtoSCTP, "192.0.2.1", 80, AppOther, -1},
				{"unmapped port", ProtoTCP, "192.0.2.1", 9091, AppOther, -1},
			},
		},
		{
			name: "the case: ftp 9091 tcp",
			ms:   []Mapping{{App: AppFTP, Port: 9091, Proto: ProtoTCP}},
			probes: []probe{
				{"tcp 9091 is ftp", ProtoTCP, "198.18.0.204", 9091, AppFTP, 0},
				{"any destination", ProtoTCP, "10.9.9.9", 9091, AppFTP, 0},
				{"udp 9091 is not", ProtoUDP, "198.18.0.204", 9091, AppOther, -1},
				{"21 stays ftp", ProtoTCP, "198.18.0.204", 21, AppFTP, -1},
			},
		},
		{
			name: "without protocol a mapping matches every transport protocol",
			ms:   []Mapping{{App: AppFTP, Port: 9091}},
			probes: []probe{
				{"tcp", ProtoTCP, "192.0.2.1", 9091, AppFTP, 0},
				{"udp", ProtoUDP, "192.0.2.1", 9091, AppFTP, 0},
				{"dccp", ProtoDCCP, "192.0.2.1", 9091, AppFTP, 0},
				{"sctp", ProtoSCTP, "192.0.2.1", 9091, AppFTP, 0},
				{"udp-lite", ProtoUDPLite, "192.0.2.1", 9091, AppFTP, 0},
				{"other port", ProtoTCP, "192.0.2.1", 9092, AppOther, -1},
			},
		},
		{
			name: "a user mapping beats the default on the same port",
			ms:   []Mapping{{App: AppHTTP, Port: 21}},
			probes: []probe{
				{"21 becomes http", ProtoTCP, "192.0.2.1", 21, AppHTTP, 0},
				{"also udp", ProtoUDP, "192.0.2.1", 21, AppHTTP, 0},
				{"80 stays http default", ProtoTCP, "192.0.2.1", 80, AppHTTP, -1},
			},
		},
		{
			name: "a user mapping of another protocol leaves the default alone",
			ms:   []Mapping{{App: AppTFTP, Port: 21, Proto: ProtoUDP}},
			probes: []probe{
				{"udp 21 is tftp", ProtoUDP, "192.0.2.1", 21, AppTFTP, 0},
				{"tcp 21 stays ftp", ProtoTCP, "192.0.2.1", 21, AppFTP, -1},
			},
		},
		{
			name: "a scoped user mapping beats the default only inside its scope",
			ms:   []Mapping{{App: AppHTTP, Port: 21, Hosts: pfx("198.18.0.204/32")}},
			probes: []probe{
				{"in scope", ProtoTCP, "198.18.0.204", 21, AppHTTP, 0},
				{"out of scope", ProtoTCP, "198.18.0.205", 21, AppFTP, -1},
			},
		},
		{
			name: "within a scope the mapping naming the protocol wins, in either order",
			ms: []Mapping{
				{App: AppHTTP, Port: 8000},
				{App: AppFTP, Port: 8000, Proto: ProtoTCP},
				{App: AppSIP, Port: 8001, Proto: ProtoUDP},
				{App: AppRTSP, Port: 8001},
			},
			probes: []probe{
				{"tcp 8000 specific", ProtoTCP, "192.0.2.1", 8000, AppFTP, 1},
				{"udp 8000 falls to protocol-less", ProtoUDP, "192.0.2.1", 8000, AppHTTP, 0},
				{"udp 8001 specific though earlier", ProtoUDP, "192.0.2.1", 8001, AppSIP, 2},
				{"tcp 8001 protocol-less", ProtoTCP, "192.0.2.1", 8001, AppRTSP, 3},
			},
		},
		{
			name: "scope precedence: host, then smaller prefix, then unscoped",
			ms: []Mapping{
				{App: AppHTTP, Port: 9000},
				{App: AppSSH, Port: 9000, Hosts: pfx("10.0.0.0/8")},
				{App: AppSMTP, Port: 9000, Hosts: pfx("10.1.0.0/16")},
				{App: AppFTP, Port: 9000, Hosts: pfx("10.1.2.3/32")},
				{App: AppDNS, Port: 9000, Hosts: pfx("0.0.0.0/0")},
			},
			probes: []probe{
				{"host", ProtoTCP, "10.1.2.3", 9000, AppFTP, 3},
				{"/16", ProtoTCP, "10.1.2.4", 9000, AppSMTP, 2},
				{"/8", ProtoTCP, "10.2.0.1", 9000, AppSSH, 1},
				{"/0 beats unscoped", ProtoTCP, "192.0.2.1", 9000, AppDNS, 4},
			},
		},
		{
			name: "unscoped applies outside every scope",
			ms: []Mapping{
				{App: AppHTTP, Port: 9000},
				{App: AppFTP, Port: 9000, Hosts: pfx("10.1.2.3/32")},
			},
			probes: []probe{
				{"host", ProtoTCP, "10.1.2.3", 9000, AppFTP, 1},
				{"elsewhere", ProtoTCP, "10.1.2.4", 9000, AppHTTP, 0},
			},
		},
		{
			name: "scope before protocol: a narrower protocol-less mapping beats a broader specific one",
			ms: []Mapping{
				{App: AppHTTP, Port: 9000, Proto: ProtoTCP},
				{App: AppFTP, Port: 9000, Hosts: pfx("10.1.2.0/24")},
				{App: AppSSH, Port: 9000, Proto: ProtoTCP, Hosts: pfx("10.0.0.0/8")},
			},
			probes: []probe{
				{"/24 protocol-less", ProtoTCP, "10.1.2.9", 9000, AppFTP, 1},
				{"/8 tcp", ProtoTCP, "10.9.0.1", 9000, AppSSH, 2},
				{"/8 udp has no match there, unscoped tcp neither", ProtoUDP, "10.9.0.1", 9000, AppOther, -1},
				{"unscoped tcp", ProtoTCP, "192.0.2.1", 9000, AppHTTP, 0},
			},
		},
		{
			name: "same port, protocol and scope with another application: the last wins",
			ms: []Mapping{
				{App: AppFTP, Port: 9091, Proto: ProtoTCP},
				{App: AppHTTP, Port: 9091, Proto: ProtoTCP},
				{App: AppSSH, Port: 9092},
				{App: AppSMTP, Port: 9092},
				{App: AppRTSP, Port: 9093, Hosts: pfx("10.0.0.1/32")},
				{App: AppPPTP, Port: 9093, Hosts: pfx("10.0.0.1/32")},
			},
			probes: []probe{
				{"tcp", ProtoTCP, "192.0.2.1", 9091, AppHTTP, 1},
				{"protocol-less", ProtoUDP, "192.0.2.1", 9092, AppSMTP, 3},
				{"scoped", ProtoUDP, "10.0.0.1", 9093, AppPPTP, 5},
			},
		},
		{
			name: "the same mapping twice stays, the later entry counts",
			ms: []Mapping{
				{App: AppFTP, Port: 9091, Proto: ProtoTCP},
				{App: AppFTP, Port: 9091, Proto: ProtoTCP},
			},
			probes: []probe{{"tcp", ProtoTCP, "192.0.2.1", 9091, AppFTP, 1}},
		},
		{
			name: "host bits of a scope are ignored",
			ms:   []Mapping{{App: AppFTP, Port: 9091, Hosts: pfx("10.1.2.3/24")}},
			probes: []probe{
				{"in /24", ProtoTCP, "10.1.2.200", 9091, AppFTP, 0},
				{"outside", ProtoTCP, "10.1.3.1", 9091, AppOther, -1},
			},
		},
		{
			name: "several hosts in one mapping, one later overwritten",
			ms: []Mapping{
				{App: AppFTP, Port: 9091, Hosts: pfx("10.0.0.1/32", "10.0.0.2/32")},
				{App: AppHTTP, Port: 9091, Hosts: pfx("10.0.0.2/32")},
			},
			probes: []probe{
				{"first host", ProtoTCP, "10.0.0.1", 9091, AppFTP, 0},
				{"second host overwritten", ProtoTCP, "10.0.0.2", 9091, AppHTTP, 1},
				{"third host", ProtoTCP, "10.0.0.3", 9091, AppOther, -1},
			},
		},
		{
			name: "ports 0 and 65535",
			ms:   []Mapping{{App: AppFTP, Port: 0}, {App: AppHTTP, Port: 65535, Proto: ProtoUDP}},
			probes: []probe{
				{"0", ProtoTCP, "192.0.2.1", 0, AppFTP, 0},
				{"65535", ProtoUDP, "192.0.2.1", 65535, AppHTTP, 1},
				{"65534", ProtoUDP, "192.0.2.1", 65534, AppOther, -1},
			},
		},
		{
			name: "non-IPv4 scopes take no part",
			ms:   []Mapping{{App: AppFTP, Port: 9091, Hosts: pfx("2001:db8::/32")}},
			probes: []probe{
				{"no match", ProtoTCP, "32.1.13.184", 9091, AppOther, -1},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, _ := Build(tc.ms)
			for _, p := range tc.probes {
				app, idx := tab.Lookup(p.proto, ip(p.dst), p.port)
				if app != p.app || idx != p.idx {
					t.Errorf("%s: Lookup(%s, %s, %d) = %v, %d; want %v, %d",
						p.name, ProtoName(p.proto), p.dst, p.port, app, idx, p.app, p.idx)
				}
				oapp, oidx := slowLookup(tc.ms, p.proto, ip(p.dst), p.port)
				if oapp != p.app || oidx != p.idx {
					t.Errorf("%s: oracle disagrees with the test: %v, %d", p.name, oapp, oidx)
				}
			}
		})
	}
}

func TestBuildOverwrites(t *testing.T) {
	tests := []struct {
		name string
		ms   []Mapping
		want []Overwrite
	}{
		{
			name: "no overwrite",
			ms:   []Mapping{{App: AppFTP, Port: 9091}, {App: AppHTTP, Port: 9092}},
		},
		{
			name: "same port and protocol, other application",
			ms:   []Mapping{{App: AppFTP, Port: 9091, Proto: ProtoTCP}, {App: AppHTTP, Port: 9091, Proto: ProtoTCP}},
			want: []Overwrite{{Old: 0, New: 1, OldApp: AppFTP, NewApp: AppHTTP, Port: 9091, Proto: ProtoTCP}},
		},
		{
			name: "both without protocol",
			ms:   []Mapping{{App: AppFTP, Port: 9091}, {App: AppHTTP, Port: 9091}},
			want: []Overwrite{{Old: 0, New: 1, OldApp: AppFTP, NewApp: AppHTTP, Port: 9091}},
		},
		{
			name: "same application again is not an overwrite",
			ms:   []Mapping{{App: AppFTP, Port: 9091}, {App: AppFTP, Port: 9091}},
		},
		{
			name: "other protocol is not an overwrite",
			ms:   []Mapping{{App: AppFTP, Port: 9091, Proto: ProtoTCP}, {App: AppHTTP, Port: 9091}},
		},
		{
			name: "other scope is not an overwrite",
			ms:   []Mapping{{App: AppFTP, Port: 9091}, {App: AppHTTP, Port: 9091, Hosts: pfx("10.0.0.1/32")}},
		},
		{
			name: "same scope written differently",
			ms: []Mapping{
				{App: AppFTP, Port: 9091, Hosts: pfx("10.0.0.0/24")},
				{App: AppHTTP, Port: 9091, Hosts: pfx("10.0.0.7/24")},
			},
			want: []Overwrite{{Old: 0, New: 1, OldApp: AppFTP, NewApp: AppHTTP, Port: 9091, Scope: netip.MustParsePrefix("10.0.0.0/24")}},
		},
		{
			name: "a chain reports each step",
			ms:   []Mapping{{App: AppFTP, Port: 1}, {App: AppHTTP, Port: 1}, {App: AppSSH, Port: 1}},
			want: []Overwrite{
				{Old: 0, New: 1, OldApp: AppFTP, NewApp: AppHTTP, Port: 1},
				{Old: 1, New: 2, OldApp: AppHTTP, NewApp: AppSSH, Port: 1},
			},
		},
		{
			name: "overwriting a default is not reported",
			ms:   []Mapping{{App: AppHTTP, Port: 21, Proto: ProtoTCP}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, got := Build(tc.ms)
			if len(got) != len(tc.want) {
				t.Fatalf("overwrites = %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("overwrite %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestBuildPanicsOnUnmappableProtocol(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Build accepted protocol 1")
		}
	}()
	Build([]Mapping{{App: AppFTP, Port: 1, Proto: 1}})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		ms         []Mapping
		port, xprt uint16
		app        App
		idx        int
	}{
		{"9091 to 21 is ftp by the translated port", nil, 9091, 21, AppFTP, -1},
		{"9091 to 2021 is nothing without a mapping", nil, 9091, 2021, AppOther, -1},
		{"9091 to 2021 with a mapping for 9091", []Mapping{{App: AppFTP, Port: 9091}}, 9091, 2021, AppFTP, 0},
		{"9091 to 2021 with a mapping for 2021", []Mapping{{App: AppFTP, Port: 2021}}, 9091, 2021, AppFTP, 0},
		{"the arriving port wins, even a default", nil, 80, 21, AppHTTP, -1},
		{"the arriving user mapping wins", []Mapping{{App: AppSSH, Port: 9091}, {App: AppFTP, Port: 2021}}, 9091, 2021, AppSSH, 0},
		{"outbound: no translation of the destination", nil, 21, 21, AppFTP, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, _ := Build(tc.ms)
			app, idx := tab.Classify(ProtoTCP, ip("198.18.0.204"), tc.port, ip("10.77.0.226"), tc.xprt)
			if app != tc.app || idx != tc.idx {
				t.Fatalf("Classify = %v, %d; want %v, %d", app, idx, tc.app, tc.idx)
			}
		})
	}
	var nilTable *Table
	if app, idx := nilTable.Classify(ProtoTCP, 0, 21, 0, 21); app != AppOther || idx != -1 {
		t.Fatalf("nil table classified %v, %d", app, idx)
	}
}

func TestEntries(t *testing.T) {
	tab, _ := Build([]Mapping{
		{App: AppHTTP, Port: 21},
		{App: AppFTP, Port: 21, Proto: ProtoTCP, Hosts: pfx("10.0.0.1/32")},
		{App: AppFTP, Port: 9091, Proto: ProtoTCP},
		{App: AppSSH, Port: 9091, Proto: ProtoTCP}, // overwrites the previous
	})
	want := []Entry{
		{App: AppFTP, Port: 21, Proto: ProtoTCP, Scope: netip.MustParsePrefix("10.0.0.1/32"), Mapping: 1},
		{App: AppHTTP, Port: 21, Proto: ProtoAny, Mapping: 0},
		{App: AppFTP, Port: 21, Proto: ProtoTCP, Mapping: -1},
	}
	got := tab.Entries()
	for i, w := range want {
		if got[i] != w {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], w)
		}
	}
	last := got[len(got)-1]
	if last.Port != 9091 || last.App != AppSSH || last.Mapping != 3 || last.Default() {
		t.Errorf("last entry = %+v", last)
	}
	if len(got) != len(wellKnown)+3 {
		t.Errorf("%d entries, want %d", len(got), len(wellKnown)+3)
	}
	got[0].App = AppDNS
	if tab.Entries()[0].App != AppFTP {
		t.Error("Entries exposes the table's storage")
	}
}

// randomMappings draws mappings over a few ports, protocols and nested
// scopes, so that every precedence rule and overwrite comes up often; with
// many=true one port gets hundreds of host scopes and goes through the hash.
func randomMappings(r *rand.Rand, n int, many bool) []Mapping {
	ports := []uint16{0, 21, 53, 80, 9091, 9092, 65535}
	protos := []uint8{ProtoAny, ProtoAny, ProtoTCP, ProtoUDP, ProtoDCCP, ProtoSCTP, ProtoUDPLite}
	scopes := pfx("0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "10.1.2.4/32", "10.1.3.0/24")
	ms := make([]Mapping, n)
	for i := range ms {
		m := Mapping{
			App:   App(1 + r.IntN(int(AppFTPData-1))),
			Port:  ports[r.IntN(len(ports))],
			Proto: protos[r.IntN(len(protos))],
		}
		for range r.IntN(3) {
			if many && r.IntN(2) == 0 {
				a := netip.AddrFrom4([4]byte{10, 1, byte(r.IntN(4)), byte(r.IntN(256))})
				m.Hosts = append(m.Hosts, netip.PrefixFrom(a, 32))
			} else {
				m.Hosts = append(m.Hosts, scopes[r.IntN(len(scopes))])
			}
		}
		ms[i] = m
	}
	return ms
}

func TestLookupMatchesOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	protos := []uint8{1, ProtoTCP, ProtoUDP, ProtoDCCP, ProtoSCTP, ProtoUDPLite}
	ports := []uint16{0, 21, 22, 53, 80, 9091, 9092, 9093, 65535}
	for round := range 300 {
		ms := randomMappings(r, r.IntN(40), round%3 == 0)
		if round%3 == 0 {
			ms = append(ms, randomMappings(r, 400, true)...)
		}
		tab, _ := Build(ms)
		for range 300 {
			dst := uint32(10)<<24 | uint32(1)<<16 | uint32(r.IntN(5))<<8 | uint32(r.IntN(256))
			if r.IntN(4) == 0 {
				dst = r.Uint32()
			}
			proto := protos[r.IntN(len(protos))]
			port := ports[r.IntN(len(ports))]
			app, idx := tab.Lookup(proto, dst, port)
			oapp, oidx := slowLookup(ms, proto, dst, port)
			if app != oapp || idx != oidx {
				t.Fatalf("round %d: Lookup(%d, %#x, %d) = %v, %d; oracle %v, %d\nmappings %+v",
					round, proto, dst, port, app, idx, oapp, oidx, ms)
			}
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	tab, _ := Build(randomMappings(rand.New(rand.NewPCG(3, 4)), 1000, true))
	dst := ip("10.1.2.3")
	allocs := testing.AllocsPerRun(1000, func() {
		tab.Lookup(ProtoTCP, dst, 9091)
		tab.Classify(ProtoUDP, dst, 1234, dst, 53)
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %.1f times per run", allocs)
	}
}

func TestDefaults(t *testing.T) {
	tab, _ := Build(nil)
	got := tab.Entries()
	slices.SortFunc(got, func(a, b Entry) int { return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto)) })
	if !slices.Equal(got, Defaults()) {
		t.Fatalf("Entries of an empty table = %v\nDefaults() = %v", got, Defaults())
	}
}
