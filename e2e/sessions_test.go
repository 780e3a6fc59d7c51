package e2e

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// TestFastnatSessionOperations: through a running fastnat, sessions made
// three ways — a published UDP service from outside, an inside host
// going out, the inside host reaching the published service (hairpin) —
// are listed one per line with the rule that made them and the interface
// they came in on, selected by every filter, shown in the firewall's
// layout with --verbose and as JSON; `fastnat clear sessions` ends the
// inside host's sessions and gives their ports and binding back (the
// pools' use returns to zero), and the host's next datagram makes a new
// session.
func TestFastnatSessionOperations(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, false, []testnet.Forward{{
		Proto:  "udp",
		Public: netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort),
		Inside: netip.AddrPortFrom(testnet.ServerAddr, 7),
	}})
	sock := fastnatSocket(t, topo)
	testnet.MustUDPEcho(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 7))
	outEcho := testnet.MustUDPEcho(t, topo.Client, netip.AddrPortFrom(testnet.ClientAddr, 7))
	published := netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort)
	exchange := func(ns string, dst netip.AddrPort) {
		t.Helper()
		if got, err := testnet.UDPExchange(ctx, ns, dst, payloads(3), 2*time.Second); err != nil || got != 3 {
			t.Fatalf("%s to %v: %d of 3 echoes, %v", ns, dst, got, err)
		}
	}
	exchange(topo.Client, published)                               // nat.server[1], in on outside
	exchange(topo.Host, netip.AddrPortFrom(testnet.ClientAddr, 7)) // nat.outbound[0], in on inside
	exchange(topo.Host, published)                                 // nat.server[1]/hairpin, in on inside
	if len(outEcho.Peers()) != 1 {
		t.Fatalf("the echo outside saw %v", outEcho.Peers())
	}

	// One line per session, with its rule and interface.
	out := fastnatShow(t, sock, "sessions")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 || !regexp.MustCompile(`^ID +PROTO +STATE +INITIATOR +RESPONDER +APP +RULE +IN +AGE +TTL$`).MatchString(lines[0]) ||
		lines[4] != "Total sessions found: 3" {
		t.Fatalf("show sessions:\n%s", out)
	}
	for _, want := range []string{
		`(?m)^\d+ +udp +OPEN +198\.18\.0\.1:\d+->198\.18\.0\.204:7007 +10\.77\.0\.226:7->198\.18\.0\.1:\d+ +other +nat\.server\[1\] +outside +\S+ +\S+$`,
		`(?m)^\d+ +udp +OPEN +10\.77\.0\.5:\d+->198\.18\.0\.1:7 +198\.18\.0\.1:7->198\.18\.0\.204:\d+ +other +nat\.outbound\[0\] +inside `,
		`(?m)^\d+ +udp +OPEN +10\.77\.0\.5:\d+->198\.18\.0\.204:7007 +10\.77\.0\.226:7->198\.18\.0\.204:\d+ +other +nat\.server\[1\]/hairpin +inside `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("show sessions lacks %s:\n%s", want, out)
		}
	}

	// Every filter, through the CLI and the control socket.
	count := func(args ...string) int {
		t.Helper()
		var l control.SessionList
		if err := json.Unmarshal([]byte(fastnatShow(t, sock, append([]string{"sessions", "--json"}, args...)...)), &l); err != nil {
			t.Fatal(err)
		}
		return l.Matched
	}
	for _, f := range []struct {
		args []string
		want int
	}{
		{[]string{"--addr", testnet.HostAddr.String()}, 2},
		{[]string{"--addr", "198.18.0.0/24"}, 3},
		{[]string{"--port", "7007"}, 2},
		{[]string{"--proto", "udp"}, 3},
		{[]string{"--proto", "tcp"}, 0},
		{[]string{"--state", "open"}, 3},
		{[]string{"--state", "tcp_established"}, 0},
		{[]string{"--app", "other"}, 3},
		{[]string{"--rule", "nat.server[1]"}, 2},
		{[]string{"--rule", "hairpin"}, 1},
		{[]string{"--rule", "nat.outbound"}, 1},
		{[]string{"--rule", "nat.server[1]", "--addr", testnet.HostAddr.String()}, 1},
	} {
		if got := count(f.args...); got != f.want {
			t.Errorf("show sessions %v: %d sessions, want %d", f.args, got, f.want)
		}
	}
	if code, _, errOut := fastnatCLI(t, "show", "sessions", "--rule", "nat.nope", "--socket", sock); code != 2 || !strings.Contains(errOut, "nat.outbound[N]") {
		t.Errorf("a bad rule filter: exit %d: %s", code, errOut)
	}

	// The firewall's layout, and one JSON shape.
	if out := fastnatShow(t, sock, "sessions", "--verbose", "--rule", "nat.server[1]/hairpin"); !regexp.MustCompile(
		`(?m)^Initiator:\n  Source IP/port: 10\.77\.0\.5/\d+\n  Destination IP/port: 198\.18\.0\.204/7007\n  Protocol: UDP\(17\)\n  Inbound interface: inside\n` +
			`(?s:.*)^Rule: nat\.server\[1\]/hairpin\n^Start time: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  TTL: \S+\n`).MatchString(out) {
		t.Errorf("show sessions --verbose:\n%s", out)
	}
	var l control.SessionList
	if err := json.Unmarshal([]byte(fastnatShow(t, sock, "sessions", "--json", "--rule", "nat.outbound[0]")), &l); err != nil || len(l.Sessions) != 1 {
		t.Fatalf("%v: %+v", err, l)
	}
	s := l.Sessions[0]
	if s.Inside.Src.Addr() != testnet.HostAddr || s.Outside.Src.Addr() != testnet.PublicAddr || s.Inbound || s.Ingress != "inside" ||
		time.Since(s.Start) > time.Minute || s.Traffic.Initiator.Packets != 3 || s.Traffic.Responder.Packets != 3 {
		t.Errorf("session as JSON %+v", s)
	}

	// Clear the inside host's sessions: their ports and binding go back.
	code, out, errOut := fastnatCLI(t, "clear", "sessions", "--addr", testnet.HostAddr.String(), "--socket", sock)
	if code != 0 || out != "cleared 2 sessions\n" {
		t.Fatalf("clear sessions: exit %d: %s%s", code, out, errOut)
	}
	var st metrics.Snapshot
	if err := json.Unmarshal([]byte(fastnatShow(t, sock, "stats", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Pools {
		if p.UDP != 0 || p.TCP != 0 {
			t.Errorf("pool %s still has ports in use: %+v", p.Address, p)
		}
	}
	if st.Bindings != 0 || st.Table.Sessions != 1 || st.Table.Deletes != 2 {
		t.Errorf("after the clear: %d bindings, %d sessions, %d deleted", st.Bindings, st.Table.Sessions, st.Table.Deletes)
	}
	if code, _, errOut := fastnatCLI(t, "clear", "sessions", "--socket", sock); code != 2 || !strings.Contains(errOut, "--all") {
		t.Errorf("clear without a filter: exit %d: %s", code, errOut)
	}
	exchange(topo.Host, netip.AddrPortFrom(testnet.ClientAddr, 7))
	if n := count("--addr", testnet.HostAddr.String()); n != 1 {
		t.Errorf("after the host's next datagram: %d sessions, want 1", n)
	}
}
