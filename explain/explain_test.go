package explain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/dataplane"
	. "github.com/fastnat/fastnat/explain"
)

var update = flag.Bool("update", false, "rewrite the golden text reports in testdata")

func load(t *testing.T, file string) *config.Config {
	t.Helper()
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func q(proto, src, dst, from string) Query {
	return Query{Proto: proto, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), From: from}
}

// TestExplain runs the case's connections and their neighbours through
// the example configurations: the case before its fix (nothing maps 9091:
// not inspected, and the mapping that would fix it suggested) and after
// it, the repository's example, the FTP ALG off, hairpinning, clients
// inside (no suggestion: their servers are no nat.server's), a server on
// the well-known port classified after translation, and connections the
// NAT drops.
func TestExplain(t *testing.T) {
	tests := []struct {
		name, file string
		q          Query
		verdict    string
		from       string
		rules      []string // Name() of each rule
		translated string   // "src -> dst"
		app        string
		by         string // port mapping Name(), "default", or ""
		on         string
		inspected  bool
		suggest    bool
	}{
		{"the case before its fix", "testdata/case.toml", q("tcp", "198.18.0.1:40000", "198.18.0.204:9091", ""),
			"translated", "outside", []string{"nat.server[0]"}, "198.18.0.1:40000 -> 10.77.0.226:2021", "other", "", "", false, true},
		{"the case after its fix", "testdata/case-mapped.toml", q("tcp", "198.18.0.1:40000", "198.18.0.204:9091", ""),
			"translated", "outside", []string{"nat.server[0]"}, "198.18.0.1:40000 -> 10.77.0.226:2021", "ftp", "port_mapping[0]", "arriving", true, false},
		{"the repository's example", "../examples/fastnat.toml", q("tcp", "198.18.0.1:40000", "198.18.0.204:9091", ""),
			"translated", "outside", []string{"nat.server[0]"}, "198.18.0.1:40000 -> 10.77.0.226:2021", "ftp", "port_mapping[0]", "arriving", true, false},
		{"the FTP ALG off", "testdata/alg-off.toml", q("tcp", "198.18.0.1:40000", "198.18.0.204:9091", ""),
			"translated", "outside", []string{"nat.server[0]"}, "198.18.0.1:40000 -> 10.77.0.226:2021", "ftp", "port_mapping[0]", "arriving", false, false},
		{"ftp on 21 after translation", "testdata/case.toml", q("tcp", "198.18.0.1:40000", "198.18.0.204:2121", ""),
			"translated", "outside", []string{"nat.server[1]"}, "198.18.0.1:40000 -> 10.77.0.227:21", "ftp", "default", "translated", true, false},
		{"a client inside to an ftp server on 21", "testdata/case.toml", q("tcp", "10.77.0.5:40000", "192.0.2.7:21", ""),
			"translated", "inside", []string{"nat.outbound[0]"}, "198.18.0.204:40000 -> 192.0.2.7:21", "ftp", "default", "arriving", true, false},
		// Outbound to a port nothing classifies: no suggestion (the issue
		// asks for one for published servers; every other port would get
		// one too).
		{"a client inside to a server on 9091", "testdata/case.toml", q("tcp", "10.77.0.5:40000", "192.0.2.7:9091", ""),
			"translated", "inside", []string{"nat.outbound[0]"}, "198.18.0.204:40000 -> 192.0.2.7:9091", "other", "", "", false, false},
		{"a client inside to a web server on 8080", "testdata/case.toml", q("tcp", "10.77.0.5:40000", "1.2.3.4:8080", ""),
			"translated", "inside", []string{"nat.outbound[0]"}, "198.18.0.204:40000 -> 1.2.3.4:8080", "other", "", "", false, false},
		{"hairpinning to the unmapped published server", "testdata/case.toml", q("tcp", "10.77.0.5:40000", "198.18.0.204:9091", ""),
			"translated", "inside", []string{"nat.server[0]", "nat.outbound[0]"}, "198.18.0.204:40000 -> 10.77.0.226:2021", "other", "", "", false, true},
		{"a client inside with a low source port", "testdata/case.toml", q("tcp", "10.77.0.5:1000", "192.0.2.7:80", ""),
			"translated", "inside", []string{"nat.outbound[0]"}, "198.18.0.204:0 -> 192.0.2.7:80", "http", "default", "arriving", false, false},
		{"hairpinning to the published server", "testdata/case-mapped.toml", q("tcp", "10.77.0.5:40000", "198.18.0.204:9091", ""),
			"translated", "inside", []string{"nat.server[0]", "nat.outbound[0]"}, "198.18.0.204:40000 -> 10.77.0.226:2021", "ftp", "port_mapping[0]", "arriving", true, false},
		{"udp to the server's public address", "testdata/case.toml", q("udp", "198.18.0.1:5000", "198.18.0.204:9091", ""),
			"unsolicited", "outside", nil, "", "", "", "", false, false},
		{"from inside, no rule", "testdata/case.toml", q("udp", "10.99.0.5:5000", "192.0.2.7:53", "inside"),
			"no_rule", "inside", nil, "", "", "", "", false, false},
		// Protocols without ports: address-only sessions outbound,
		// nothing inbound, AH never.
		{"gre from inside", "testdata/case.toml", q("gre", "10.77.0.5:0", "192.0.2.7:0", ""),
			"translated", "inside", []string{"nat.outbound[0]"}, "198.18.0.204:0 -> 192.0.2.7:0", "other", "", "", false, false},
		{"esp by number from inside", "testdata/case.toml", q("50", "10.77.0.5:0", "192.0.2.7:0", ""),
			"translated", "inside", []string{"nat.outbound[0]"}, "198.18.0.204:0 -> 192.0.2.7:0", "other", "", "", false, false},
		{"gre from outside", "testdata/case.toml", q("gre", "192.0.2.7:0", "198.18.0.204:0", ""),
			"unsolicited", "outside", nil, "", "", "", "", false, false},
		{"ah from inside", "testdata/case.toml", q("ah", "10.77.0.5:0", "192.0.2.7:0", ""),
			"protocol", "inside", nil, "", "", "", "", false, false},
		// Martians: what the kernel's routing never forwards.
		{"mdns from inside", "testdata/case.toml", q("udp", "10.77.0.5:5353", "224.0.0.251:5353", ""),
			"martian", "inside", nil, "", "", "", "", false, false},
		{"a loopback source to the published server", "testdata/case.toml", q("tcp", "127.0.0.1:40000", "198.18.0.204:9091", ""),
			"martian", "outside", nil, "", "", "", "", false, false},
		{"the NAT's own address as the source", "testdata/case.toml", q("tcp", "198.18.0.204:40000", "198.18.0.204:9091", "outside"),
			"martian", "outside", nil, "", "", "", "", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := load(t, tc.file)
			r, err := Explain(cfg, dataplane.NATRules(cfg), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if r.Verdict != tc.verdict || r.Connection.From != tc.from {
				t.Fatalf("verdict %q arriving %q, want %q %q (%s)", r.Verdict, r.Connection.From, tc.verdict, tc.from, r.Why)
			}
			var names []string
			for _, rule := range r.Rules {
				names = append(names, rule.Name())
				if rule.Line == 0 || rule.File != cfg.File {
					t.Errorf("%s without its place in the file: %+v", rule.Name(), rule)
				}
			}
			if strings.Join(names, ",") != strings.Join(tc.rules, ",") {
				t.Errorf("rules %v, want %v", names, tc.rules)
			}
			if tc.verdict != "translated" {
				if r.Translated != nil || r.ALG.Inspected || r.Suggestion != nil {
					t.Errorf("a dropped connection explained as passing: %+v", r)
				}
				return
			}
			if got := r.Translated.Src.String() + " -> " + r.Translated.Dst.String(); got != tc.translated {
				t.Errorf("translated %s, want %s", got, tc.translated)
			}
			a := r.Application
			by := ""
			switch {
			case a.By != nil:
				by = a.By.Name()
				if a.By.Line != cfg.PortMappingLines[a.By.Index] {
					t.Errorf("mapping at line %d, the file has it at %d", a.By.Line, cfg.PortMappingLines[a.By.Index])
				}
			case a.Default != "":
				by = "default"
			}
			if a.Name != tc.app || by != tc.by || a.On != tc.on {
				t.Errorf("application %q by %q on %q, want %q by %q on %q", a.Name, by, a.On, tc.app, tc.by, tc.on)
			}
			if r.ALG.Inspected != tc.inspected {
				t.Errorf("inspected %v (%s), want %v", r.ALG.Inspected, r.ALG.Why, tc.inspected)
			}
			if (r.Suggestion != nil) != tc.suggest {
				t.Fatalf("suggestion %+v, want one: %v", r.Suggestion, tc.suggest)
			}
			if r.Suggestion != nil {
				// The suggestion, added to the file, makes the connection ftp.
				fixed := appendSuggestion(t, tc.file, r.Suggestion)
				r2, err := Explain(fixed, dataplane.NATRules(fixed), tc.q)
				if err != nil {
					t.Fatal(err)
				}
				if r2.Application.Name != "ftp" || r2.Application.By == nil || r2.Application.On != "arriving" || !r2.ALG.Inspected || r2.Suggestion != nil {
					t.Errorf("with the suggestion: %+v, ALG %+v", r2.Application, r2.ALG)
				}
			}
		})
	}
}

// appendSuggestion writes file with s's table at the end to a new file and
// loads it.
func appendSuggestion(t *testing.T, file string, s *Suggestion) *config.Config {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "fixed.toml")
	if err := os.WriteFile(p, append(append(b, '\n'), s.TOML()...), 0o600); err != nil {
		t.Fatal(err)
	}
	return load(t, p)
}

// TestExplainText: the two reports of the case the README shows, before
// and after the mapping, as golden files (go test ./explain -update
// rewrites them).
func TestExplainText(t *testing.T) {
	for _, name := range []string{"case", "case-mapped"} {
		t.Run(name, func(t *testing.T) {
			cfg := load(t, filepath.Join("testdata", name+".toml"))
			r, err := Explain(cfg, dataplane.NATRules(cfg), q("tcp", "198.18.0.1:40000", "198.18.0.204:9091", ""))
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			r.WriteText(&b)
			golden := filepath.Join("testdata", name+".txt")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(want) {
				t.Errorf("report\n%s\nwant\n%s", b.String(), want)
			}
			// And as JSON for scripts: it round-trips.
			jsonRoundTrip(t, r, b.String())
		})
	}
}

func TestExplainBadQuery(t *testing.T) {
	cfg := load(t, "testdata/case.toml")
	for _, bad := range []Query{
		q("bogus", "198.18.0.1:1", "198.18.0.204:9091", ""),
		q("tcp", "198.18.0.1:1", "198.18.0.204:9091", "sideways"),
		{Proto: "tcp", Src: netip.MustParseAddrPort("[::1]:1"), Dst: netip.MustParseAddrPort("198.18.0.204:9091")},
	} {
		if _, err := Explain(cfg, dataplane.NATRules(cfg), bad); !errors.Is(err, ErrQuery) {
			t.Errorf("%+v: %v, want ErrQuery", bad, err)
		}
	}
}

// TestExplainAnswers: a first packet the NAT answers itself instead of
// forwarding is explained with the answer, as the dataplane sends it
// (pipeline's TestExplainMatchesWorker holds the two together): ping to
// the public address, a SYN or UDP to a closed port there from either
// side (a reset, port unreachable), a TTL that runs out where the packet
// would be forwarded (time exceeded) — but not one addressed to the NAT
// itself, which is answered as a closed port whatever its TTL.
func TestExplainAnswers(t *testing.T) {
	cfg := load(t, "testdata/case.toml")
	ttl := func(q Query, n uint8) Query { q.TTL = &n; return q }
	tests := []struct {
		name     string
		q        Query
		verdict  string
		kind     string
		from     string // the answer's source, "" for the arrival interface's
		wantText string
	}{
		{"ping the public address", q("icmp", "198.18.0.1:7", "198.18.0.204:7", ""),
			"answered", "icmp_echo_reply", "198.18.0.204", "verdict      answered by the NAT itself, not forwarded\nanswer       icmp_echo_reply from 198.18.0.204:"},
		{"a SYN to a closed public port", q("tcp", "198.18.0.1:40000", "198.18.0.204:4444", ""),
			"unsolicited", "tcp_reset", "198.18.0.204", "answer       tcp_reset from 198.18.0.204: nothing holds the port"},
		{"UDP to the published TCP port", q("udp", "198.18.0.1:5000", "198.18.0.204:9091", ""),
			"unsolicited", "icmp_port_unreachable", "198.18.0.204", ""},
		{"UDP from inside to a closed public port", q("udp", "10.77.0.5:5000", "198.18.0.204:4444", ""),
			"unsolicited", "icmp_port_unreachable", "198.18.0.204", "it is addressed to a public address of the NAT's own"},
		{"TTL 1 to a closed public port", ttl(q("udp", "198.18.0.1:5000", "198.18.0.204:4444", ""), 1),
			"unsolicited", "icmp_port_unreachable", "198.18.0.204", "arriving outside with TTL 1"},
		{"TTL 1 outbound", ttl(q("udp", "10.77.0.5:5000", "192.0.2.7:33434", ""), 1),
			"ttl_expired", "icmp_time_exceeded", "", "answer       icmp_time_exceeded: forwarding it would take its TTL to 0"},
		{"TTL 0 to the published server", ttl(q("tcp", "198.18.0.1:40000", "198.18.0.204:9091", ""), 0),
			"ttl_expired", "icmp_time_exceeded", "", ""},
		{"TTL 1 from a host no rule holds", ttl(q("udp", "10.99.0.5:5000", "192.0.2.7:53", "inside"), 1),
			"ttl_expired", "icmp_time_exceeded", "", ""},
		{"TTL 1 gre outbound", ttl(q("gre", "10.77.0.5:0", "192.0.2.7:0", ""), 1),
			"ttl_expired", "icmp_time_exceeded", "", ""},
		{"unsolicited to an address not the NAT's", q("tcp", "198.18.0.1:40000", "198.18.0.77:80", ""),
			"unsolicited", "", "", ""},
		{"a martian is not answered", ttl(q("udp", "127.0.0.1:5000", "198.18.0.204:4444", ""), 1),
			"martian", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Explain(cfg, dataplane.NATRules(cfg), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			kind, from := "", ""
			if r.Answer != nil {
				kind = r.Answer.Kind
				if r.Answer.From.IsValid() {
					from = r.Answer.From.String()
				}
			}
			if r.Verdict != tc.verdict || kind != tc.kind || from != tc.from {
				t.Fatalf("verdict %q answer %q from %q, want %q %q %q (%s)", r.Verdict, kind, from, tc.verdict, tc.kind, tc.from, r.Why)
			}
			if r.Translated != nil || r.ALG.Inspected || r.Application != nil {
				t.Errorf("a connection that does not pass explained as passing: %+v", r)
			}
			var b bytes.Buffer
			r.WriteText(&b)
			if !strings.Contains(b.String(), tc.wantText) {
				t.Errorf("text lacks %q:\n%s", tc.wantText, b.String())
			}
			jsonRoundTrip(t, r, b.String())
		})
	}
}

// jsonRoundTrip checks that r, whose text is text, reads back from its
// JSON as the same report.
func jsonRoundTrip(t *testing.T, r Report, text string) {
	t.Helper()
	j, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	back.WriteText(&b)
	if b.String() != text {
		t.Errorf("JSON round trip changed the report:\n%s\n%s", b.String(), j)
	}
}

// TestExplainOwnAddresses: with the host's addresses known (as the
// daemon knows them), a source of the router's own is a martian and a
// directed broadcast is refused, each with its reason in words; without
// them (a file alone) the same connections are translated.
func TestExplainOwnAddresses(t *testing.T) {
	cfg := load(t, "testdata/case.toml")
	rules := dataplane.NATRules(cfg)
	for _, c := range []struct {
		q       Query
		verdict string
	}{
		{q("udp", "10.77.0.1:5000", "192.0.2.7:53", "inside"), "martian"},
		{q("udp", "10.77.0.5:5000", "198.18.0.255:53", ""), "directed_broadcast"},
		{q("tcp", "10.77.0.5:40000", "10.77.0.255:80", ""), "directed_broadcast"},
	} {
		offline, err := Explain(cfg, rules, c.q)
		if err != nil {
			t.Fatal(err)
		}
		live := rules
		live.Local = []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("198.18.0.254/24")}
		r, err := Explain(cfg, live, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if r.Verdict != c.verdict || len(r.Why) < 40 || r.Answer != nil || offline.Verdict != "translated" {
			t.Errorf("%v: %q (%s), answer %+v; offline %q", c.q, r.Verdict, r.Why, r.Answer, offline.Verdict)
		}
	}
}
