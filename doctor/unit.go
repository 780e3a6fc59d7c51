package doctor

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strings"
)

// unitDirs are where systemd looks for a system unit and its drop-ins,
// most important first (systemd.unit(5), "Unit File Load Path").
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// unitName is the service the package installs.
const unitName = "fastnat.service"

// IPFilter is a unit's IPAddressAllow= and IPAddressDeny=, as systemd
// applies them to the service's own IP sockets (systemd.resource-control(5)):
// a peer an entry of Allow matches is allowed, else one Deny matches is
// refused, else allowed.
type IPFilter struct {
	Allow, Deny []netip.Prefix
	// AllowText is what the Allow lines said, for messages.
	AllowText []string
}

// ipFilterWords are the symbolic names IPAddressAllow= and IPAddressDeny=
// accept.
var ipFilterWords = map[string][]netip.Prefix{
	"any":        {netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
	"localhost":  {netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
	"link-local": {netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/64")},
	"multicast":  {netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("ff00::/8")},
}

// Filters reports whether the unit filters IP addresses at all.
func (f IPFilter) Filters() bool { return len(f.Deny) > 0 }

// Allows reports whether the service may talk to a.
func (f IPFilter) Allows(a netip.Addr) bool {
	a = a.Unmap()
	in := func(ps []netip.Prefix) bool {
		return slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	return in(f.Allow) || !in(f.Deny)
}

// OnlyLocal reports whether the allow list admits no address beyond this
// host's loopback.
func (f IPFilter) OnlyLocal() bool {
	for _, p := range f.Allow {
		if !p.Addr().IsLoopback() || p.Bits() < 8 {
			return false
		}
	}
	return true
}

// ParseIPFilter reads the [Service] IPAddressAllow= and IPAddressDeny=
// lines of a unit file and then its drop-ins, in order: an empty
// assignment resets the list, as in systemd.
func ParseIPFilter(files ...string) (IPFilter, error) {
	var f IPFilter
	for _, text := range files {
		section := ""
		for n, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			if line[0] == '[' {
				section = line
				continue
			}
			key, val, ok := strings.Cut(line, "=")
			if !ok || section != "[Service]" {
				continue
			}
			key, val = strings.TrimSpace(key), strings.TrimSpace(val)
			var list *[]netip.Prefix
			switch key {
			case "IPAddressAllow":
				list = &f.Allow
				if val == "" {
					f.AllowText = nil
				} else {
					f.AllowText = append(f.AllowText, strings.Fields(val)...)
				}
			case "IPAddressDeny":
				list = &f.Deny
			default:
				continue
			}
			if val == "" {
				*list = nil
				continue
			}
			for _, w := range strings.Fields(val) {
				if ps, ok := ipFilterWords[w]; ok {
					*list = append(*list, ps...)
					continue
				}
				p, err := netip.ParsePrefix(w)
				if err != nil {
					a, aerr := netip.ParseAddr(w)
					if aerr != nil {
						return IPFilter{}, fmt.Errorf("line %d: %s=%s: %q is not an address or prefix", n+1, key, val, w)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				*list = append(*list, p.Masked())
			}
		}
	}
	return f, nil
}

// installedUnit returns the installed fastnat.service and its drop-ins
// (each file's path and text, unit first), or nothing if there is none.
func (d *doctor) installedUnit() (paths, texts []string) {
	for _, dir := range unitDirs {
		if b, err := d.sys.ReadFile(path.Join(dir, unitName)); err == nil {
			paths, texts = append(paths, path.Join(dir, unitName)), append(texts, string(b))
			break
		}
	}
	if paths == nil {
		return nil, nil
	}
	// A drop-in of one name in a more important directory hides the
	// others; all are applied in the order of their names.
	dropins := map[string]string{}
	for _, dir := range unitDirs {
		names, _ := d.sys.ReadDir(path.Join(dir, unitName+".d"))
		for _, n := range names {
			if _, seen := dropins[n]; !seen && strings.HasSuffix(n, ".conf") {
				dropins[n] = path.Join(dir, unitName+".d", n)
			}
		}
	}
	names := make([]string, 0, len(dropins))
	for n := range dropins {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if b, err := d.sys.ReadFile(dropins[n]); err == nil {
			paths, texts = append(paths, dropins[n]), append(texts, string(b))
		}
	}
	return paths, texts
}

// dropinFix is how an operator allows more addresses.
const dropinFix = "systemctl edit fastnat   (a drop-in such as /usr/share/fastnat/systemd/ip-allow.conf)\n" +
	"add: IPAddressAllow=%s"

// checkUnit checks that the installed unit's IP address filter lets the
// event log reach its collectors and Prometheus reach the metrics.
func (d *doctor) checkUnit() {
	paths, texts := d.installedUnit()
	if paths == nil {
		return // not run by systemd, or not installed yet
	}
	f, err := ParseIPFilter(texts...)
	if err != nil {
		d.add("unit", "", Warn, "", "%s: %v", strings.Join(paths, ", "), err)
		return
	}
	if !f.Filters() {
		d.add("unit", "", OK, "", "%s sets no IPAddressDeny=: collectors and Prometheus are reachable", paths[0])
		return
	}
	type peer struct{ what, addr string }
	var blocked []peer
	for _, x := range d.cfg.Logging.IPFIX {
		if !f.Allows(x.Collector.Addr()) {
			blocked = append(blocked, peer{fmt.Sprintf("[[logging.ipfix]] collector %s (line %d)", x.Collector, x.Line), x.Collector.Addr().String()})
		}
	}
	for _, s := range d.cfg.Logging.Syslog {
		ap, err := netip.ParseAddrPort(s.Address)
		if err == nil && !f.Allows(ap.Addr()) {
			blocked = append(blocked, peer{fmt.Sprintf("[[logging.syslog]] %s %s (line %d)", s.Transport, s.Address, s.Line), ap.Addr().String()})
		}
	}
	for _, b := range blocked {
		d.add("unit", "", Warn, fmt.Sprintf(dropinFix, b.addr),
			"%s: the unit's IPAddressDeny= refuses it, and the events sent there are lost", b.what)
	}
	if l := d.cfg.Metrics.Listen; l != "" && !metricsLocal(l) && f.OnlyLocal() {
		d.add("unit", "", Warn, fmt.Sprintf(dropinFix, "PROMETHEUS-ADDRESS"),
			"[metrics] listen = %q, but the unit allows IP peers on this host only (IPAddressAllow=%s): scrapes from elsewhere are refused",
			l, strings.Join(f.AllowText, " "))
		blocked = append(blocked, peer{})
	}
	if len(blocked) == 0 {
		d.add("unit", "", OK, "", "the unit's IP address filter allows the collectors and the metrics endpoint's peers (IPAddressAllow=%s)",
			strings.Join(f.AllowText, " "))
	}
}

// metricsLocal reports whether a [metrics] listen address serves this host
// only.
func metricsLocal(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
