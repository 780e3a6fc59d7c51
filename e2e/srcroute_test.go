package e2e

import (
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/fastnat/fastnat/internal/testnet"
)

// Source-routed packets (hping3 --lsrr, --ssrr) are dropped by both NATs:
// the kernel drops every packet with a loose or strict source route
// option while net.ipv4.conf.all.accept_source_route is 0, its default,
// and RFC 7126 §4.3–4.4 advise routers to. fastnat used to forward them
// with the option untouched: an inside host's echo request left with its
// route list (inside addresses included) for the client, and a client's
// datagram to a published port naming an inside address in its route
// reached the server. The same packets without the option pass, so the
// drop is the option's.

func TestFastnatSourceRoute(t *testing.T) {
	requireFastnat(t)
	requirePackage(t, "hping3", "hping3")
	hpingSourceRoute(t, fastnatRouter)
}

// TestKernelSourceRoute is the proof that hpingSourceRoute expects what a
// Linux NAT does.
func TestKernelSourceRoute(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "hping3", "hping3")
	hpingSourceRoute(t, kernelRouter)
}

func hpingSourceRoute(t *testing.T, r router) {
	ctx := testContext(t)
	topo, sock := routerTopology(t, r, testnet.Options{InsideHost: true}, "")
	// Each end counts what arrives: the client echo requests, the server
	// datagrams to the published sink.
	counted := map[string]func() int{
		topo.Client: arrivals(t, topo.Client, "icmp type echo-request"),
		topo.Server: arrivals(t, topo.Server, "udp dport "+strconv.Itoa(udpSinkPort)),
	}
	client, public := testnet.ClientAddr.String(), testnet.PublicAddr.String()
	sink := strconv.Itoa(udpSinkPort)
	for _, c := range []struct {
		what string
		ns   string   // where hping3 runs
		at   string   // where its packet is counted
		args []string // hping3's mode and destination
		opt  []string // the source route
	}{
		{"echo request, loose route via the router", topo.Host, topo.Client,
			[]string{"-1", client}, []string{"--lsrr", testnet.RouterOutsideAddr.String()}},
		{"echo request, strict route naming an inside address", topo.Host, topo.Client,
			[]string{"-1", client}, []string{"--ssrr", testnet.RouterInsideAddr.String()}},
		{"datagram to a published port, loose route naming the server", topo.Client, topo.Server,
			[]string{"-2", "-p", sink, public}, []string{"--lsrr", testnet.ServerAddr.String()}},
	} {
		before := counted[c.at]()
		run(t, ctx, true, c.ns, "hping3", slices.Concat([]string{"-c", "1", "-q"}, c.opt, c.args)...)
		if n := counted[c.at]() - before; n != 0 {
			t.Errorf("%s: %d arrived, want none (source routed)", c.what, n)
		}
		// The same without the option passes.
		run(t, ctx, true, c.ns, "hping3", slices.Concat([]string{"-c", "1", "-q"}, c.args)...)
		if n := counted[c.at]() - before; n != 1 {
			t.Errorf("%s without the option: %d arrived, want 1", c.what, n)
		}
	}
	if sock != "" {
		if drops, _ := fastnatStats(t, sock); drops["source_routed"] != 3 {
			t.Errorf("source_routed drops %d, want 3 (%v)", drops["source_routed"], drops)
		}
	}
}

// arrivals counts, with an nftables rule in namespace ns, the packets
// that arrive there matching rule (nft syntax), before anything else
// sees them; the function it returns reads the count. One per namespace.
func arrivals(t *testing.T, ns, rule string) func() int {
	t.Helper()
	testnet.MustRun(t, ns, "nft", "add table ip arrivals\n"+
		"add chain ip arrivals in { type filter hook prerouting priority -300; }\n"+
		"add rule ip arrivals in "+rule+" counter")
	return func() int {
		t.Helper()
		out := string(testnet.MustRun(t, ns, "nft", "list", "chain", "ip", "arrivals", "in"))
		m := regexp.MustCompile(`packets (\d+) `).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no counter in:\n%s", out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
}
