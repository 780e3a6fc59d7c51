package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
)

// A probe is one first packet, sent by traceroute with TTL 1 (-m 1), and
// what `fastnat explain --ttl 1` says the router does with it: the
// verdict and the answer, sent from hop (which traceroute shows as hop
// 1).
type explainProbe struct {
	name    string
	inside  bool     // traceroute runs on the inside host, else the outside client
	args    []string // traceroute's mode, port and destination
	query   []string // explain's PROTO SRC:PORT DST:PORT
	verdict string
	answer  string
	hop     string
	// kernelHop is the kernel's hop 1 where it differs: conntrack
	// translates the router's own time exceeded for a packet it has
	// DNATed as the connection's reply, so it comes from the public
	// address; fastnat sends it from the interface's, as RFC 1812 §4.3.2.4
	// has it.
	kernelHop string
}

var explainProbes = []explainProbe{
	{"udp through", true, []string{"-U", "-p", "33434", "198.18.0.1"}, []string{"udp", "10.77.0.5:40000", "198.18.0.1:33434"},
		"ttl_expired", "icmp_time_exceeded", "10.77.0.1", ""},
	{"tcp through", true, []string{"-T", "-p", "80", "198.18.0.1"}, []string{"tcp", "10.77.0.5:40000", "198.18.0.1:80"},
		"ttl_expired", "icmp_time_exceeded", "10.77.0.1", ""},
	{"to the published server", false, []string{"-T", "-p", "9091", "198.18.0.204"}, []string{"tcp", "198.18.0.1:40000", "198.18.0.204:9091"},
		"ttl_expired", "icmp_time_exceeded", "198.18.0.254", "198.18.0.204"},
	{"udp to a closed public port", false, []string{"-U", "-p", "4444", "198.18.0.204"}, []string{"udp", "198.18.0.1:40000", "198.18.0.204:4444"},
		"unsolicited", "icmp_port_unreachable", "198.18.0.204", ""},
	{"tcp to a closed public port", false, []string{"-T", "-p", "4444", "198.18.0.204"}, []string{"tcp", "198.18.0.1:40000", "198.18.0.204:4444"},
		"unsolicited", "tcp_reset", "198.18.0.204", ""},
	{"udp from inside to a closed public port", true, []string{"-U", "-p", "4444", "198.18.0.204"}, []string{"udp", "10.77.0.5:40000", "198.18.0.204:4444"},
		"unsolicited", "icmp_port_unreachable", "198.18.0.204", ""},
	{"ping the public address", false, []string{"-I", "198.18.0.204"}, []string{"icmp", "198.18.0.1:7", "198.18.0.204:7"},
		"answered", "icmp_echo_reply", "198.18.0.204", ""},
}

// TestFastnatExplainAnswers: for first packets with TTL 1 — through the
// router, to the published server, to closed ports of the public address
// from either side, a ping to it — the running daemon's `fastnat explain
// --ttl 1` names the answer traceroute then gets on the wire from the
// address it names (the kernel's NAT gives the same: TestKernelExplainAnswers).
// The daemon knows the host's addresses: a source of the router's inside
// address is a martian, a directed broadcast is named so.
func TestFastnatExplainAnswers(t *testing.T) {
	requireFastnat(t)
	requireRouterTools(t)
	topo := explainAnswers(t, fastnatRouter)
	sock := fastnatSocket(t, topo)
	ask := func(args ...string) control.ExplainResult {
		t.Helper()
		code, out, errOut := fastnatCLI(t, append([]string{"explain", "--socket", sock, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("fastnat explain %v: exit %d: %s", args, code, errOut)
		}
		var r control.ExplainResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		return r
	}
	for _, p := range explainProbes {
		r := ask(append([]string{"--ttl", "1"}, p.query...)...).Report
		answer, from := "", ""
		if r.Answer != nil {
			answer = r.Answer.Kind
			if r.Answer.From.IsValid() {
				from = r.Answer.From.String()
			}
		}
		if r.Verdict != p.verdict || answer != p.answer || from != "" && from != p.hop {
			t.Errorf("%s: explain says %s, %s from %q; want %s, %s from %s (as traceroute found)", p.name, r.Verdict, answer, from, p.verdict, p.answer, p.hop)
		}
	}
	if r := ask("--from", "inside", "udp", "10.77.0.1:5000", "198.18.0.1:53").Report; r.Verdict != "martian" {
		t.Errorf("the router's inside address as source: %s, want martian", r.Verdict)
	}
	if r := ask("udp", "10.77.0.5:5000", "198.18.0.255:53").Report; r.Verdict != "directed_broadcast" {
		t.Errorf("to the outside prefix's broadcast address: %s, want directed_broadcast", r.Verdict)
	}
}

// TestKernelExplainAnswers is the proof that the hops explainAnswers
// expects are what a Linux NAT answers.
func TestKernelExplainAnswers(t *testing.T) {
	requireHarness(t)
	requireRouterTools(t)
	explainAnswers(t, kernelRouter)
}

// explainAnswers sends each probe through router r with traceroute and
// checks who answers its first hop. It returns the topology.
func explainAnswers(t *testing.T, r router) *testnet.Topology {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	r.setup(t, topo, false, nil)
	for _, p := range explainProbes {
		ns := topo.Client
		if p.inside {
			ns = topo.Host
		}
		out := run(t, ctx, false, ns, "traceroute", append([]string{"-n", "-q", "1", "-w", "2", "-m", "1"}, p.args...)...)
		want := p.hop
		if r.name == kernelRouter.name && p.kernelHop != "" {
			want = p.kernelHop
		}
		if h := hops(out); len(h) != 1 || h[0] != want {
			t.Errorf("%s through %s: hop 1 %v, want %s:\n%s", p.name, r.name, h, want, strings.TrimSpace(out))
		}
	}
	return topo
}
