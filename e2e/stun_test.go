package e2e

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fastnat/fastnat/internal/testnet"
)

// NAT behaviour discovery as operators and attackers run it: coturn's
// turnutils_natdiscovery (RFC 5780) against turnserver on the client's two
// addresses, and the classic RFC 3489 stun client against stund, from an
// inside host, through fastnat in both mapping modes and through the
// kernel's NAT on the same topology. The pool has four addresses, so
// paired pooling (RFC 4787 REQ-2) shows in the reflexive addresses, and
// the UDP timeout is 5 s on both NATs, so the tools' mapping lifetime
// test measures it.

const (
	stunPort        = 3478 // turnserver, and 3479
	classicSTUNPort = 3480 // stund, and 3481
	stunUDPTimeout  = 5    // seconds, both NATs
)

var (
	stunAlternate = netip.MustParseAddr("198.18.0.2") // the client's second address
	hostAddr2     = netip.MustParseAddr("10.77.0.6")  // the inside host's second address
	poolLast      = netip.MustParseAddr("198.18.0.207")
)

// stunVerdicts is what the tools concluded about one NAT.
type stunVerdicts struct {
	Mapping, Filtering             string // natdiscovery -m, -f
	PaddedMapping, PaddedFiltering string // the same with 1500 bytes of padding (fragmented requests)
	Hairpin                        bool   // natdiscovery -H
	Classic                        string // the stun client's verdict line
	PortPreserved                  bool   // the first mapping of a free port kept it
	Paired                         bool   // every mapping of the host on one public address
	NoOverloading                  bool   // two inside addresses on one port: two public endpoints
	AliveShort                     bool   // natdiscovery -t: the mapping answers after 2 s
	ExpiredLong                    bool   // ... and no longer 3 s past the UDP timeout
}

// A property is one line of the comparison: its name, how to read it and
// RFC 4787's recommendation, when it makes one.
type stunProperty struct {
	name  string
	get   func(stunVerdicts) string
	right string // "" when the RFC leaves the choice to the NAT
}

var stunProperties = []stunProperty{
	{"mapping (RFC 5780)", func(v stunVerdicts) string { return v.Mapping }, "Endpoint Independent"},
	{"filtering (RFC 5780)", func(v stunVerdicts) string { return v.Filtering }, ""},
	{"mapping, padded", func(v stunVerdicts) string { return v.PaddedMapping }, "Endpoint Independent"},
	{"filtering, padded", func(v stunVerdicts) string { return v.PaddedFiltering }, ""},
	{"hairpinning (RFC 5780)", func(v stunVerdicts) string { return yesNo(v.Hairpin) }, "yes"},
	{"classic (RFC 3489)", func(v stunVerdicts) string { return v.Classic }, ""},
	{"port preservation", func(v stunVerdicts) string { return yesNo(v.PortPreserved) }, ""},
	{"paired pooling", func(v stunVerdicts) string { return yesNo(v.Paired) }, "yes"},
	{"no port overloading", func(v stunVerdicts) string { return yesNo(v.NoOverloading) }, "yes"},
	{"mapping alive after 2 s", func(v stunVerdicts) string { return yesNo(v.AliveShort) }, "yes"},
	{"mapping gone after timeout", func(v stunVerdicts) string { return yesNo(v.ExpiredLong) }, "yes"},
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TestSTUNBehaviour runs the discovery tools through the kernel's NAT and
// through fastnat (endpoint-independent mapping, its default, and
// address-and-port-dependent), each on its own topology, in parallel.
// fastnat must be reported exactly as documented — the mapping
// configured, address-and-port-dependent filtering, hairpinning (the
// classic client's too: it sends to its own mapping), port preservation,
// paired pooling, no port overloading, the configured UDP timeout — and
// no worse than the kernel wherever the kernel does what RFC 4787
// recommends.
func TestSTUNBehaviour(t *testing.T) {
	requireFastnat(t)
	if err := testnet.CheckTools("turnserver", "turnutils_natdiscovery", "stund", "stun"); err != nil {
		t.Skipf("e2e: %v; install the Debian packages coturn stun-server stun-client (.ci/run does)", err)
	}
	const classicEIM = "Independent Mapping, Port Dependent Filter, preserves ports, will hairpin"
	all := stunVerdicts{Filtering: "Address and Port Dependent", PaddedFiltering: "Address and Port Dependent",
		Hairpin: true, PortPreserved: true, Paired: true, NoOverloading: true, AliveShort: true, ExpiredLong: true}
	eim, apdm := all, all
	eim.Mapping, eim.PaddedMapping, eim.Classic = "Endpoint Independent", "Endpoint Independent", classicEIM
	apdm.Mapping, apdm.PaddedMapping = "Address and Port Dependent", "Address and Port Dependent"
	apdm.Classic = "Dependent Mapping, preserves ports, will hairpin"
	nats := []struct {
		name string
		r    router
		// mapping is fastnat's nat.outbound mapping; "" for the kernel.
		mapping string
		want    *stunVerdicts
	}{
		{"kernel", kernelRouter, "", nil},
		{"fastnat", fastnatRouter, "endpoint-independent", &eim},
		{"fastnat-apdm", fastnatRouter, "address-and-port-dependent", &apdm},
	}
	var mu sync.Mutex
	got := map[string]stunVerdicts{}
	t.Run("nat", func(t *testing.T) {
		for _, n := range nats {
			t.Run(n.name, func(t *testing.T) {
				t.Parallel()
				v := stunDiscover(t, n.r, n.mapping)
				mu.Lock()
				got[n.name] = v
				mu.Unlock()
				if n.want != nil && v != *n.want {
					t.Errorf("the tools report\n%+v\nwant (as documented)\n%+v", v, *n.want)
				}
			})
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%-28s", "")
	for _, n := range nats {
		fmt.Fprintf(&b, " | %-34s", n.name)
	}
	for _, p := range stunProperties {
		fmt.Fprintf(&b, "\n%-28s", p.name)
		for _, n := range nats {
			fmt.Fprintf(&b, " | %-34s", p.get(got[n.name]))
		}
	}
	t.Logf("NAT behaviour as the tools report it:\n%s", b.String())
	k, f := got["kernel"], got["fastnat"]
	if _, ok := got["kernel"]; !ok || t.Failed() {
		return
	}
	for _, p := range stunProperties {
		if p.right != "" && p.get(k) == p.right && p.get(f) != p.right {
			t.Errorf("%s: the kernel's NAT gets %q right, fastnat reports %q", p.name, p.right, p.get(f))
		}
	}
}

// stunDiscover builds a topology with r as the NAT (fastnat with the
// given mapping), starts both STUN servers on the client's two addresses,
// and runs every discovery from the inside host.
func stunDiscover(t *testing.T, r router, mapping string) stunVerdicts {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	testnet.MustRun(t, topo.Client, "ip", "addr", "add", netip.PrefixFrom(stunAlternate, 24).String(), "dev", testnet.NodeLink)
	testnet.MustRun(t, topo.Host, "ip", "addr", "add", netip.PrefixFrom(hostAddr2, 24).String(), "dev", testnet.NodeLink)
	if mapping == "" {
		cfg := testnet.DefaultKernelNAT(false)
		cfg.Outbound[0].PoolLast = poolLast
		topo.MustKernelNAT(t, cfg)
		for _, k := range []string{"nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"} {
			if err := testnet.Sysctl(ctx, topo.Router, "net.netfilter."+k, fmt.Sprint(stunUDPTimeout)); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		dir := t.TempDir()
		cfg := fastnatConfig(false, nil, filepath.Join(dir, "fastnat.sock"))
		pool := fmt.Sprintf("pool = [%q]", testnet.PublicAddr.String())
		if !strings.Contains(cfg, pool) {
			t.Fatalf("no %s in the configuration:\n%s", pool, cfg)
		}
		cfg = strings.Replace(cfg, pool, fmt.Sprintf("pool = [\"%s-%s\"]\nmapping = %q", testnet.PublicAddr, poolLast, mapping), 1)
		cfg += fmt.Sprintf("\n[timeouts]\nudp = \"%ds\"\n", stunUDPTimeout)
		file := filepath.Join(dir, "fastnat.toml")
		writeFile(t, file, cfg)
		startFastnat(t, topo, file)
	}
	rfc5780, err := topo.StartSTUNServer(ctx, topo.Client, testnet.ClientAddr, stunAlternate, stunPort)
	if err != nil {
		t.Fatal(err)
	}
	classic, err := topo.StartClassicSTUNServer(ctx, topo.Client, testnet.ClientAddr, stunAlternate, classicSTUNPort)
	if err != nil {
		t.Fatal(err)
	}
	// Every run uses sockets of its own, so they all run at once: the
	// lifetime test's wait and the filtering tests' timeouts overlap.
	runs := map[string][]string{
		"mapping":          {"-m"},
		"filtering":        {"-f"},
		"padded mapping":   {"-m", "-P"},
		"padded filtering": {"-f", "-P"},
		"hairpinning":      {"-H"},
		// Collision (coturn's form): the host's two addresses on the
		// same port must not share a public endpoint.
		"collision": {"-c", "-L", testnet.HostAddr.String(), "-A", hostAddr2.String()},
		// Lifetime: a second socket asks the server to answer the first
		// socket's mapping (RESPONSE-PORT) after the wait.
		"short lifetime": {"-t", "-T", "2"},
		"long lifetime":  {"-t", "-T", fmt.Sprint(stunUDPTimeout + 3)},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	d := map[string]testnet.Discovery{}
	var errs []error
	var cl testnet.ClassicSTUN
	for name, args := range runs {
		wg.Go(func() {
			r, err := testnet.NATDiscovery(ctx, topo.Host, rfc5780.Addr(), args...)
			mu.Lock()
			defer mu.Unlock()
			d[name] = r
			errs = append(errs, err)
		})
	}
	wg.Go(func() {
		r, err := testnet.RunClassicSTUN(ctx, topo.Host, classic.Addr())
		mu.Lock()
		defer mu.Unlock()
		cl = r
		errs = append(errs, err)
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for name, args := range runs {
		r := d[name]
		t.Logf("natdiscovery %s: mapping %q, filtering %q, hairpin %v, %d timeouts, responses %v",
			strings.Join(args, " "), r.Mapping, r.Filtering, r.Hairpin, r.Timeouts, r.Responses)
	}
	t.Logf("stun: %s (mapped %v)", cl.Type, cl.Mapped)

	var v stunVerdicts
	v.Mapping, v.Filtering = d["mapping"].Mapping, d["filtering"].Filtering
	v.PaddedMapping, v.PaddedFiltering = d["padded mapping"].Mapping, d["padded filtering"].Filtering
	v.Hairpin = d["hairpinning"].Hairpin
	v.Classic = cl.Type
	if m := d["mapping"].Responses; len(m) > 0 {
		v.PortPreserved = m[0].Reflexive.Port() == m[0].Local.Port()
	}
	// Paired pooling: every mapping of the host's address, from any of
	// its ports to either server address, on one public address.
	var seen []netip.Addr
	for _, name := range []string{"mapping", "filtering", "padded mapping", "hairpinning", "short lifetime"} {
		for _, r := range d[name].Responses {
			seen = append(seen, r.Reflexive.Addr())
		}
	}
	for _, m := range cl.Mapped {
		seen = append(seen, m.Addr())
	}
	v.Paired = len(seen) > 1
	for _, a := range seen {
		v.Paired = v.Paired && a == seen[0]
	}
	c := d["collision"].Responses
	v.NoOverloading = len(c) == 2 && c[0].Reflexive != c[1].Reflexive && c[0].Local.Port() == c[1].Local.Port()
	v.AliveShort = d["short lifetime"].Timeouts == 0 && len(d["short lifetime"].Responses) == 2
	v.ExpiredLong = d["long lifetime"].Timeouts == 1
	return v
}
