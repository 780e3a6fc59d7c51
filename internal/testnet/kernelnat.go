package testnet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Forward is a static DNAT, Comware's "nat server": connections to Public
// are translated to Inside.
type Forward struct {
	Proto  string // "tcp" or "udp"
	Public netip.AddrPort
	Inside netip.AddrPort
}

// Outbound is a source NAT, Comware's "nat outbound": connections from
// Inside leaving by the outside link take the source address Pool.
type Outbound struct {
	Inside netip.Prefix
	Pool   netip.Addr
	// PoolLast, when valid, makes the pool the range Pool-PoolLast; the
	// router's outside link gets each of its addresses. The kernel then
	// picks an address per connection by a hash of both ends (nftables
	// without "persistent"), as a configuration written plainly does.
	PoolLast netip.Addr
}

// Addrs lists the pool's addresses.
func (o Outbound) Addrs() []netip.Addr {
	as := []netip.Addr{o.Pool}
	for a := o.Pool; o.PoolLast.IsValid() && a.Less(o.PoolLast); {
		a = a.Next()
		as = append(as, a)
	}
	return as
}

// KernelNATConfig is the Linux kernel's own NAT (nftables and conntrack)
// configured as the NAT device of the case: the baseline fastnat is
// compared with, and the proof that the harness itself works.
type KernelNATConfig struct {
	Servers  []Forward
	Outbound []Outbound
	// FTPHelperPorts are the TCP destination ports whose connections get
	// the kernel's FTP helper (nf_conntrack_ftp with nf_nat_ftp): the
	// kernel's equivalent of "port-mapping application ftp port P". Empty
	// reproduces the case: no ALG for FTP on a non-standard port.
	FTPHelperPorts []uint16
}

// DefaultKernelNAT is the case's configuration: the FTP server published
// as PublicAddr:FTPPublicPort, the inside network masqueraded behind
// PublicAddr, and, with helper, the FTP helper on FTPPublicPort.
func DefaultKernelNAT(helper bool) KernelNATConfig {
	c := KernelNATConfig{
		Servers: []Forward{{
			Proto:  "tcp",
			Public: netip.AddrPortFrom(PublicAddr, FTPPublicPort),
			Inside: netip.AddrPortFrom(ServerAddr, FTPInsidePort),
		}},
		Outbound: []Outbound{{Inside: InsideNet, Pool: PublicAddr}},
	}
	if helper {
		c.FTPHelperPorts = []uint16{FTPPublicPort}
	}
	return c
}

// KernelNATTable is the name of the nftables table KernelNAT loads.
const KernelNATTable = "fastnat_baseline"

// KernelNAT makes the router a kernel NAT: it adds PublicAddr to the
// outside link, turns ip_forward on and loads the ruleset of
// KernelNATRuleset (replacing an earlier one).
func (t *Topology) KernelNAT(ctx context.Context, cfg KernelNATConfig) error {
	if err := CheckTools("nft"); err != nil {
		return err
	}
	if err := t.AddPublicAddr(ctx); err != nil {
		return err
	}
	for _, o := range cfg.Outbound {
		for _, a := range o.Addrs() {
			if _, err := runHost(ctx, "ip", "-n", t.Router, "addr", "replace",
				netip.PrefixFrom(a, 32).String(), "dev", RouterOutsideLink); err != nil {
				return fmt.Errorf("add pool address: %w", err)
			}
		}
	}
	if err := t.SetForwarding(ctx, true); err != nil {
		return err
	}
	// Delete a previous table first, so a second call replaces rules
	// instead of adding to them; "add table" makes the delete safe when
	// there is none.
	script := "add table ip " + KernelNATTable + "\ndelete table ip " + KernelNATTable + "\n" +
		KernelNATRuleset(cfg)
	cmd := Command(ctx, t.Router, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load kernel nat ruleset: %w: %s\n%s", err, out, script)
	}
	return nil
}

// KernelNATRuleset renders cfg as an nftables ruleset for the router.
//
// Hook order in prerouting matters: conntrack (-200) creates the entry,
// then the "helpers" chain at mangle priority (-150) assigns the FTP
// helper while the destination port is still the public one, then DNAT
// (-100) translates. A helper chain at filter priority (0) would see the
// translated port instead. The forward chain is a stateful firewall, as on
// the case's device: new connections from outside pass only when a DNAT
// rule or a helper expectation made them; so an unrewritten 227 naming an
// inside address leads nowhere, as on the Internet.
func KernelNATRuleset(cfg KernelNATConfig) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("table ip %s {", KernelNATTable)
	if len(cfg.FTPHelperPorts) > 0 {
		p("\tct helper ftp {")
		p("\t\ttype \"ftp\" protocol tcp")
		p("\t\tl3proto ip")
		p("\t}")
		p("\tchain helpers {")
		p("\t\ttype filter hook prerouting priority mangle; policy accept;")
		p("\t\ttcp dport %s ct helper set \"ftp\"", portSet(cfg.FTPHelperPorts))
		p("\t}")
	}
	p("\tchain dstnat {")
	p("\t\ttype nat hook prerouting priority dstnat; policy accept;")
	for _, f := range cfg.Servers {
		p("\t\tiifname %q ip daddr %s %s dport %d dnat to %s",
			RouterOutsideLink, f.Public.Addr(), f.Proto, f.Public.Port(), f.Inside)
	}
	p("\t}")
	p("\tchain srcnat {")
	p("\t\ttype nat hook postrouting priority srcnat; policy accept;")
	for _, o := range cfg.Outbound {
		pool := o.Pool.String()
		if o.PoolLast.IsValid() {
			pool += "-" + o.PoolLast.String()
		}
		p("\t\toifname %q ip saddr %s snat to %s", RouterOutsideLink, o.Inside, pool)
	}
	p("\t}")
	p("\tchain forward {")
	p("\t\ttype filter hook forward priority filter; policy drop;")
	p("\t\tct state established,related accept")
	p("\t\tct status dnat accept")
	p("\t\tiifname %q oifname %q accept", RouterInsideLink, RouterOutsideLink)
	p("\t}")
	p("}")
	return b.String()
}

// portSet renders ports as an nftables value or anonymous set.
func portSet(ports []uint16) string {
	ps := slices.Clone(ports)
	slices.Sort(ps)
	ps = slices.Compact(ps)
	if len(ps) == 1 {
		return strconv.Itoa(int(ps[0]))
	}
	s := make([]string, len(ps))
	for i, x := range ps {
		s[i] = strconv.Itoa(int(x))
	}
	return "{ " + strings.Join(s, ", ") + " }"
}
