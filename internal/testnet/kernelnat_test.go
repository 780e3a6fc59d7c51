package testnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestKernelNATRuleset(t *testing.T) {
	cases := []struct {
		name    string
		cfg     KernelNATConfig
		want    []string
		notWant []string
	}{
		{"case with helper", DefaultKernelNAT(true), []string{
			`type "ftp" protocol tcp`,
			"type filter hook prerouting priority mangle; policy accept;",
			`tcp dport 9091 ct helper set "ftp"`,
			`iifname "outside" ip daddr 198.18.0.204 tcp dport 9091 dnat to 10.77.0.226:2021`,
			`oifname "outside" ip saddr 10.77.0.0/24 snat to 198.18.0.204`,
			"type filter hook forward priority filter; policy drop;",
			"ct status dnat accept",
		}, nil},
		{"case without helper", DefaultKernelNAT(false), []string{"dnat to 10.77.0.226:2021"}, []string{"ct helper"}},
		{"several helper ports", KernelNATConfig{FTPHelperPorts: []uint16{9091, 21, 9091}}, []string{`tcp dport { 21, 9091 } ct helper set "ftp"`}, nil},
		{"udp server", KernelNATConfig{Servers: []Forward{{"udp", netip.MustParseAddrPort("198.18.0.204:7007"), netip.MustParseAddrPort("10.77.0.226:7")}}},
			[]string{"ip daddr 198.18.0.204 udp dport 7007 dnat to 10.77.0.226:7"}, nil},
		{"pool range", KernelNATConfig{Outbound: []Outbound{{Inside: InsideNet, Pool: PublicAddr, PoolLast: netip.MustParseAddr("198.18.0.207")}}},
			[]string{`oifname "outside" ip saddr 10.77.0.0/24 snat to 198.18.0.204-198.18.0.207`}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := KernelNATRuleset(c.cfg)
			for _, w := range c.want {
				if !strings.Contains(rs, w) {
					t.Errorf("missing %q in\n%s", w, rs)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(rs, w) {
					t.Errorf("unexpected %q in\n%s", w, rs)
				}
			}
		})
	}
}

// nft itself accepts every ruleset KernelNATRuleset renders, and
// KernelNAT replaces rather than appends.
func TestKernelNATLoads(t *testing.T) {
	needRoot(t, "nft")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topo := MustNew(t, Options{})
	for _, cfg := range []KernelNATConfig{DefaultKernelNAT(true), DefaultKernelNAT(false), DefaultKernelNAT(true)} {
		if err := topo.KernelNAT(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	out, err := Run(ctx, topo.Router, "nft", "list", "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), "dnat to 10.77.0.226:2021"); n != 1 {
		t.Errorf("%d DNAT rules after three loads, want 1:\n%s", n, out)
	}
	if !strings.Contains(string(out), `ct helper set "ftp"`) {
		t.Errorf("helper rule missing:\n%s", out)
	}
	fwd, err := Run(ctx, topo.Router, "sysctl", "-n", "net.ipv4.ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward = %s", fwd)
	}
}
