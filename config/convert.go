package config

import (
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/fastnat/fastnat/portmap"
)

// Limits of the values fastnat accepts.
const (
	MaxWorkers         = 1024
	MaxCPU             = 8191
	MaxQueue           = 1023
	MaxBatch           = 512
	MinFramesPerQueue  = 64
	MaxFramesPerQueue  = 1 << 20
	MaxFlows           = 1 << 28
	MaxPoolAddresses   = 1 << 16
	MaxExpectations    = 1024
	MaxTimeout         = 7 * 24 * time.Hour
	MaxICMPRateLimit   = time.Hour
	MaxICMPBurst       = 1000
	MinMSS             = 536   // RFC 9293 §3.7.1: the default every host accepts
	MaxMSS             = 65495 // the largest IPv4 packet less IPv4 and TCP headers
	maxInterfaceName   = 15    // IFNAMSIZ - 1
	maxSocketPathBytes = 107   // sizeof(sun_path) - 1
)

// converter turns the decoded raw values into a Config, collecting every
// problem with the position of the value at fault.
type converter struct {
	ix    *index
	errs  Errors
	warns Errors
}

func (c *converter) report(list *Errors, p Pos, format string, args ...any) {
	*list = append(*list, Error{File: c.ix.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

// errorf reports a problem with the value at path.
func (c *converter) errorf(path, format string, args ...any) {
	c.report(&c.errs, c.ix.at(path), path+": "+format, args...)
}

func (c *converter) warnf(path, format string, args ...any) {
	c.report(&c.warns, c.ix.at(path), path+": "+format, args...)
}

// missing reports a required key absent from table, at the table's header.
func (c *converter) missing(table, key, allowed string) {
	c.report(&c.errs, c.ix.keyAt(table), "%s: missing key %q; %s", table, key, allowed)
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return fmt.Sprintf("the integer %d", x)
	case float64:
		return fmt.Sprintf("the float %v", x)
	case bool:
		return fmt.Sprintf("the boolean %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	default:
		return "a date or time"
	}
}

func oneOf(names []string) string {
	q := make([]string, 0, len(names))
	for _, n := range names {
		if n != "" {
			q = append(q, strconv.Quote(n))
		}
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func (c *converter) str(path string, v any, want string) (string, bool) {
	s, ok := v.(string)
	if !ok {
		c.errorf(path, "want a string (%s), got %s", want, describe(v))
	}
	return s, ok
}

func (c *converter) integer(path string, v any, lo, hi int64) (int64, bool) {
	n, ok := v.(int64)
	if !ok {
		c.errorf(path, "want an integer from %d to %d, got %s", lo, hi, describe(v))
		return 0, false
	}
	if n < lo || n > hi {
		c.errorf(path, "%d is out of range; allowed: %d to %d", n, lo, hi)
		return 0, false
	}
	return n, true
}

func (c *converter) boolean(path string, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		c.errorf(path, "want true or false, got %s", describe(v))
	}
	return b, ok
}

// enum returns the index of v in names.
func (c *converter) enum(path string, v any, names []string) (int, bool) {
	s, ok := c.str(path, v, oneOf(names))
	if !ok {
		return 0, false
	}
	for i, n := range names {
		if n == s && n != "" {
			return i, true
		}
	}
	c.errorf(path, "%q is not allowed; allowed: %s", s, oneOf(names))
	return 0, false
}

func (c *converter) list(path string, v any, want string) ([]any, bool) {
	l, ok := v.([]any)
	if !ok {
		c.errorf(path, "want an array of %s, got %s", want, describe(v))
	}
	return l, ok
}

func (c *converter) duration(path string, v any, def time.Duration) time.Duration {
	if v == nil {
		return def
	}
	const want = `a duration such as "30s", "5m" or "2h4m"`
	s, ok := c.str(path, v, want)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.errorf(path, "%q is not a duration; want %s", s, want)
	case d < time.Second || d > MaxTimeout:
		c.errorf(path, "%s is out of range; allowed: 1s to %s", FormatDuration(d), FormatDuration(MaxTimeout))
	case d%time.Second != 0:
		c.errorf(path, "%s is not a whole number of seconds; timeouts count seconds", d)
	default:
		return d
	}
	return def
}

func (c *converter) convert(r *rawConfig) *Config {
	cfg := &Config{
		Dataplane: c.dataplane(&r.Dataplane),
		Flows:     Flows{Max: DefaultFlowsMax},
		Timeouts:  c.timeouts(&r.Timeouts),
		ALG:       c.alg(&r.ALG),
		ICMP:      c.icmp(&r.ICMP),
		TCP:       c.tcp(&r.TCP),
		Metrics:   c.metrics(&r.Metrics),
		Control:   c.control(&r.Control),
		Logging:   c.logging(&r.Logging),
	}
	cfg.Interfaces = c.interfaces(r.Interface)
	if r.Flows.Max != nil {
		if n, ok := c.integer("flows.max", r.Flows.Max, 1, MaxFlows); ok {
			cfg.Flows.Max = int(n)
		}
	}
	cfg.NAT.Outbound = c.outbound(r.NAT.Outbound)
	cfg.NAT.Server = c.servers(r.NAT.Server, cfg.NAT.Outbound)
	cfg.PortMappings, cfg.PortMappingLines = c.portMappings(r.PortMapping)
	if len(c.errs) == 0 {
		var ows []portmap.Overwrite
		cfg.PortMap, ows = portmap.Build(cfg.PortMappings)
		for _, o := range ows {
			c.warnf(element("port_mapping", o.New)+".application",
				"overwrites port_mapping[%d] (line %d): port %d, protocol %s, scope %s was %s and is now %s; the last mapping in the file wins",
				o.Old, cfg.PortMappingLines[o.Old], o.Port, portmap.ProtoName(o.Proto), scopeName(o.Scope), o.OldApp, o.NewApp)
		}
	}
	return cfg
}

func scopeName(p netip.Prefix) string {
	if !p.IsValid() {
		return "any destination"
	}
	return p.String()
}

func (c *converter) dataplane(r *rawDataplane) Dataplane {
	d := Dataplane{Batch: DefaultBatch, FramesPerQueue: DefaultFramesPerQueue, FrameSize: DefaultFrameSize}
	if r.Workers != nil {
		if n, ok := c.integer("dataplane.workers", r.Workers, 0, MaxWorkers); ok {
			d.Workers = int(n)
		}
	}
	if r.CPUs != nil {
		d.CPUs = c.uniqueInts("dataplane.cpus", r.CPUs, MaxCPU, "CPU numbers")
	}
	if r.Poll != nil {
		if i, ok := c.enum("dataplane.poll", r.Poll, pollNames); ok {
			d.Poll = PollMode(i)
		}
	}
	if r.Batch != nil {
		if n, ok := c.integer("dataplane.batch", r.Batch, 1, MaxBatch); ok {
			d.Batch = int(n)
		}
	}
	if r.FramesPerQueue != nil {
		if n, ok := c.integer("dataplane.frames_per_queue", r.FramesPerQueue, MinFramesPerQueue, MaxFramesPerQueue); ok {
			switch {
			case bits.OnesCount64(uint64(n)) != 1:
				c.errorf("dataplane.frames_per_queue", "%d is not a power of two; allowed: 64, 128, ... %d", n, MaxFramesPerQueue)
			case int(n) < 2*d.Batch:
				c.errorf("dataplane.frames_per_queue", "%d frames cannot hold two bursts of batch = %d; allowed: at least %d", n, d.Batch, 2*d.Batch)
			default:
				d.FramesPerQueue = int(n)
			}
		}
	}
	if r.FrameSize != nil {
		if n, ok := r.FrameSize.(int64); ok && (n == 2048 || n == 4096) {
			d.FrameSize = int(n)
		} else {
			c.errorf("dataplane.frame_size", "want 2048 or 4096 (bytes per UMEM frame), got %s", describe(r.FrameSize))
		}
	}
	if r.XDPMode != nil {
		if i, ok := c.enum("dataplane.xdp_mode", r.XDPMode, xdpNames); ok {
			d.XDPMode = XDPMode(i)
		}
	}
	return d
}

// uniqueInts converts an array of distinct integers from 0 to hi.
func (c *converter) uniqueInts(path string, v any, hi int64, what string) []int {
	l, ok := c.list(path, v, what)
	if !ok {
		return nil
	}
	if len(l) == 0 {
		c.errorf(path, "empty array; list at least one of the %s, or leave the key out", what)
		return nil
	}
	out := make([]int, 0, len(l))
	seen := make(map[int64]int)
	for i, x := range l {
		p := element(path, i)
		n, ok := c.integer(p, x, 0, hi)
		if !ok {
			continue
		}
		if j, dup := seen[n]; dup {
			c.errorf(p, "%d is listed twice (also at %s); each may appear once", n, element(path, j))
			continue
		}
		seen[n] = i
		out = append(out, int(n))
	}
	return out
}

func validIfName(s string) string {
	switch {
	case s == "":
		return "an interface name cannot be empty"
	case len(s) > maxInterfaceName:
		return fmt.Sprintf("%q is longer than %d bytes, the kernel's limit", s, maxInterfaceName)
	case s == "." || s == "..":
		return fmt.Sprintf("%q is not an interface name", s)
	case strings.ContainsAny(s, "/: \t\n\r\v\f"):
		return fmt.Sprintf("%q contains '/', ':' or white space, which interface names cannot", s)
	}
	return ""
}

func (c *converter) interfaces(rs []rawInterface) []Interface {
	if len(rs) == 0 {
		c.report(&c.errs, Pos{Line: 1, Col: 1},
			`no [[interface]] tables; at least one with role = "inside" and one with role = "outside" are required`)
		return nil
	}
	var out []Interface
	names := make(map[string]int)
	var haveRole [3]bool
	for i, r := range rs {
		p := element("interface", i)
		it := Interface{Line: c.ix.keyAt(p).Line}
		if r.Name == nil {
			c.missing(p, "name", "write the Linux interface name, such as name = \"eth0\"")
		} else if s, ok := c.str(p+".name", r.Name, "a Linux interface name"); ok {
			if msg := validIfName(s); msg != "" {
				c.errorf(p+".name", "%s", msg)
			} else if j, dup := names[s]; dup {
				c.errorf(p+".name", "interface %q is already defined at line %d; each interface may appear once", s, out[j].Line)
			}
			names[s] = len(out)
			it.Name = s
		}
		if r.Role == nil {
			c.missing(p, "role", `allowed: "inside" or "outside"`)
		} else if k, ok := c.enum(p+".role", r.Role, roleNames); ok {
			it.Role = Role(k)
			haveRole[k] = true
		}
		if r.Queues != nil {
			if s, isStr := r.Queues.(string); isStr {
				if s != "all" {
					c.errorf(p+".queues", `%q is not allowed; write "all" or an array of queue numbers such as [0, 1]`, s)
				}
			} else {
				it.Queues = c.uniqueInts(p+".queues", r.Queues, MaxQueue, `queue numbers (or the string "all")`)
			}
		}
		if r.Gateway != nil {
			if a, ok := c.unicast(p+".gateway", r.Gateway, "an IPv4 address such as \"198.18.0.254\""); ok {
				it.Gateway = a
			}
		}
		out = append(out, it)
	}
	if len(c.errs) == 0 {
		for _, role := range []Role{RoleInside, RoleOutside} {
			if !haveRole[role] {
				c.report(&c.errs, c.ix.keyAt("interface[0]"),
					"no interface has role = %q; at least one inside and one outside interface are required", role)
			}
		}
	}
	return out
}

// unicast parses an IPv4 address a host can have.
func (c *converter) unicast(path string, v any, want string) (netip.Addr, bool) {
	s, ok := c.str(path, v, want)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		c.errorf(path, "%q is not an IPv4 address; want %s", s, want)
		return netip.Addr{}, false
	}
	if why := unusable(a); why != "" {
		c.errorf(path, "%s is %s; want a unicast IPv4 address", a, why)
		return netip.Addr{}, false
	}
	return a, true
}

func unusable(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsLoopback():
		return "a loopback address"
	case a.IsMulticast():
		return "a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	case a.As4()[0] >= 240:
		return "a reserved (class E) address"
	}
	return ""
}

func (c *converter) timeouts(r *rawTimeouts) Timeouts {
	d := DefaultTimeouts
	t := Timeouts{
		TCPSyn:         c.duration("timeouts.tcp_syn", r.TCPSyn, d.TCPSyn),
		TCPEstablished: c.duration("timeouts.tcp_established", r.TCPEstablished, d.TCPEstablished),
		TCPTransitory:  c.duration("timeouts.tcp_transitory", r.TCPTransitory, d.TCPTransitory),
		TCPClosed:      c.duration("timeouts.tcp_closed", r.TCPClosed, d.TCPClosed),
		UDP:            c.duration("timeouts.udp", r.UDP, d.UDP),
		ICMP:           c.duration("timeouts.icmp", r.ICMP, d.ICMP),
		Other:          c.duration("timeouts.other", r.Other, d.Other),
		Expectation:    c.duration("timeouts.expectation", r.Expectation, d.Expectation),
	}
	minimums := []struct {
		path string
		got  time.Duration
		min  time.Duration
		rfc  string
	}{
		{"timeouts.tcp_established", t.TCPEstablished, 2*time.Hour + 4*time.Minute, "RFC 5382 REQ-5"},
		{"timeouts.tcp_transitory", t.TCPTransitory, 4 * time.Minute, "RFC 5382 REQ-5"},
		{"timeouts.udp", t.UDP, 2 * time.Minute, "RFC 4787 REQ-5"},
		{"timeouts.icmp", t.ICMP, 60 * time.Second, "RFC 5508 REQ-1"},
	}
	for _, m := range minimums {
		if m.got < m.min {
			c.warnf(m.path, "%s is below the %s minimum of %s; sessions may expire while still in use", FormatDuration(m.got), m.rfc, FormatDuration(m.min))
		}
	}
	return t
}

// prefix parses an IPv4 prefix; with hostOK a bare address means /32.
func (c *converter) prefix(path string, v any, hostOK bool) (netip.Prefix, bool) {
	want := `an IPv4 prefix such as "10.0.0.0/24"`
	if hostOK {
		want += ` or an address such as "10.0.0.1"`
	}
	s, ok := c.str(path, v, want)
	if !ok {
		return netip.Prefix{}, false
	}
	var p netip.Prefix
	var err error
	if hostOK && !strings.Contains(s, "/") {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		}
	} else {
		p, err = netip.ParsePrefix(s)
	}
	if err != nil || !p.Addr().Is4() {
		c.errorf(path, "%q is not %s", s, want)
		return netip.Prefix{}, false
	}
	if p != p.Masked() {
		c.errorf(path, "%q has host bits set; write the network, %s", s, p.Masked())
		return netip.Prefix{}, false
	}
	return p, true
}

func (c *converter) prefixes(path string, v any, hostOK bool) []netip.Prefix {
	l, ok := c.list(path, v, "IPv4 prefixes")
	if !ok {
		return nil
	}
	if len(l) == 0 {
		c.errorf(path, "empty array; list at least one IPv4 prefix")
		return nil
	}
	var out []netip.Prefix
	for i, x := range l {
		if p, ok := c.prefix(element(path, i), x, hostOK); ok {
			out = append(out, p)
		}
	}
	return out
}

func addrOf(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// poolEntry parses "a", "a-b" or "p/n" into a first and last address
// (host order). A prefix up to /30 leaves out its network and broadcast
// addresses.
func poolEntry(s string) (lo, hi uint32, err error) {
	const want = `want an address "198.18.0.1", a range "198.18.0.1-198.18.0.9" or a prefix "198.18.0.0/28"`
	if a, b, isRange := strings.Cut(s, "-"); isRange {
		x, err1 := netip.ParseAddr(strings.TrimSpace(a))
		y, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !x.Is4() || !y.Is4() {
			return 0, 0, fmt.Errorf("%q is not an IPv4 range; %s", s, want)
		}
		if y.Less(x) {
			return 0, 0, fmt.Errorf("range %q ends before it starts; write the lower address first", s)
		}
		return u32(x), u32(y), nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return 0, 0, fmt.Errorf("%q is not an IPv4 prefix; %s", s, want)
		}
		if p != p.Masked() {
			return 0, 0, fmt.Errorf("%q has host bits set; write the network, %s", s, p.Masked())
		}
		lo = u32(p.Addr())
		hi = lo | ^uint32(0)>>p.Bits()
		if p.Bits() == 0 {
			hi = ^uint32(0)
		}
		if p.Bits() <= 30 {
			lo, hi = lo+1, hi-1
		}
		return lo, hi, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, 0, fmt.Errorf("%q is not an IPv4 address; %s", s, want)
	}
	return u32(a), u32(a), nil
}

func (c *converter) pool(path string, v any) []netip.Addr {
	l, ok := c.list(path, v, "addresses, ranges or prefixes")
	if !ok {
		return nil
	}
	if len(l) == 0 {
		c.errorf(path, "empty pool; list at least one public address")
		return nil
	}
	var out []netip.Addr
	seen := make(map[uint32]int)
	for i, x := range l {
		p := element(path, i)
		s, ok := c.str(p, x, "an address, range or prefix")
		if !ok {
			continue
		}
		lo, hi, err := poolEntry(s)
		if err != nil {
			c.errorf(p, "%v", err)
			continue
		}
		if uint64(hi)-uint64(lo)+1 > uint64(MaxPoolAddresses-len(out)) {
			c.errorf(p, "the pool grows beyond %d addresses here; allowed: at most %d per outbound rule", MaxPoolAddresses, MaxPoolAddresses)
			return nil
		}
		for u := uint64(lo); u <= uint64(hi); u++ {
			a := addrOf(uint32(u))
			if why := unusable(a); why != "" {
				c.errorf(p, "%s is %s and cannot be a public address", a, why)
				break
			}
			if j, dup := seen[uint32(u)]; dup {
				c.errorf(p, "%s is already in the pool (%s); each address may appear once", a, element(path, j))
				break
			}
			seen[uint32(u)] = i
			out = append(out, a)
		}
	}
	return out
}

func (c *converter) ports(path string, v any) (PortRange, bool) {
	const want = `a range such as "1024-65535" (ports 1 to 65535)`
	switch x := v.(type) {
	case int64:
		if n, ok := c.integer(path, x, 1, 65535); ok {
			return PortRange{uint16(n), uint16(n)}, true
		}
		return PortRange{}, false
	case string:
		a, b, _ := strings.Cut(x, "-")
		if b == "" {
			b = a
		}
		lo, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
		hi, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
		switch {
		case err1 != nil || err2 != nil:
			c.errorf(path, "%q is not a port range; want %s", x, want)
		case lo < 1:
			c.errorf(path, "%q starts at port 0; allowed: ports 1 to 65535", x)
		case lo > hi:
			c.errorf(path, "%q ends before it starts; write the lower port first", x)
		default:
			return PortRange{uint16(lo), uint16(hi)}, true
		}
		return PortRange{}, false
	}
	c.errorf(path, "want %s, got %s", want, describe(v))
	return PortRange{}, false
}

func (c *converter) outbound(rs []rawOutbound) []Outbound {
	var out []Outbound
	for i, r := range rs {
		p := element("nat.outbound", i)
		o := Outbound{Ports: PortRange{DefaultPortLo, DefaultPortHi}, Line: c.ix.keyAt(p).Line}
		if r.Inside == nil {
			c.missing(p, "inside", `list the inside prefixes to translate, such as inside = ["10.0.0.0/24"]`)
		} else {
			o.Inside = c.prefixes(p+".inside", r.Inside, false)
		}
		if r.Pool == nil {
			c.missing(p, "pool", `list the public addresses, such as pool = ["198.18.0.1"]`)
		} else {
			o.Pool = c.pool(p+".pool", r.Pool)
		}
		if r.Ports != nil {
			if pr, ok := c.ports(p+".ports", r.Ports); ok {
				o.Ports = pr
			}
		}
		if r.Mapping != nil {
			if k, ok := c.enum(p+".mapping", r.Mapping, mappingNames); ok {
				o.Mapping = MappingMode(k)
			}
		}
		c.allocation(p, &r, &o)
		// A prefix an earlier rule covers never reaches this rule: the
		// first rule whose inside prefix holds the source applies.
		for k, q := range o.Inside {
			for j, prev := range out {
				for _, pp := range prev.Inside {
					if pp.Bits() <= q.Bits() && pp.Contains(q.Addr()) {
						c.warnf(element(p+".inside", k), "%s is covered by %s of %s (line %d), which comes first; this rule never applies to it",
							q, pp, element("nat.outbound", j), prev.Line)
					}
				}
			}
		}
		out = append(out, o)
	}
	c.exclusivePools(out)
	return out
}

// addrPort parses "a.b.c.d:port" with a unicast address and a port 1–65535.
func (c *converter) addrPort(path string, v any) (netip.AddrPort, bool) {
	const want = `an IPv4 address and port such as "198.18.0.204:9091"`
	s, ok := c.str(path, v, want)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil || !ap.Addr().Is4():
		c.errorf(path, "%q is not %s", s, want)
	case ap.Port() == 0:
		c.errorf(path, "%q has port 0; allowed: ports 1 to 65535", s)
	case unusable(ap.Addr()) != "":
		c.errorf(path, "%s is %s; want a unicast IPv4 address", ap.Addr(), unusable(ap.Addr()))
	default:
		return ap, true
	}
	return netip.AddrPort{}, false
}

func (c *converter) servers(rs []rawServer, outbound []Outbound) []Server {
	type key struct {
		proto uint8
		ap    netip.AddrPort
	}
	seen := make(map[key]int)
	var out []Server
	for i, r := range rs {
		p := element("nat.server", i)
		s := Server{Line: c.ix.keyAt(p).Line}
		ok := true
		if r.Protocol == nil {
			c.missing(p, "protocol", `allowed: "tcp" or "udp"`)
			ok = false
		} else if k, good := c.enum(p+".protocol", r.Protocol, []string{"tcp", "udp"}); good {
			s.Proto = []uint8{portmap.ProtoTCP, portmap.ProtoUDP}[k]
		} else {
			ok = false
		}
		if r.Public == nil {
			c.missing(p, "public", `write the public address and port, such as public = "198.18.0.204:9091"`)
			ok = false
		} else if ap, good := c.addrPort(p+".public", r.Public); good {
			s.Public = ap
		} else {
			ok = false
		}
		if r.Inside == nil {
			c.missing(p, "inside", `write the inside address and port, such as inside = "10.0.0.2:21"`)
		} else if ap, good := c.addrPort(p+".inside", r.Inside); good {
			s.Inside = ap
		}
		if ok {
			k := key{s.Proto, s.Public}
			if j, dup := seen[k]; dup {
				c.errorf(p+".public", "%s/%s is already published by %s (line %d); each public address, port and protocol may be used once",
					s.Public, portmap.ProtoName(s.Proto), element("nat.server", j), out[j].Line)
			}
			seen[k] = len(out)
			for j, o := range outbound {
				if !o.Ports.Contains(s.Public.Port()) {
					continue
				}
				for _, a := range o.Pool {
					if a == s.Public.Addr() {
						c.warnf(p+".public", "%s/%s lies in the port range %d-%d of the pool of %s (line %d); the server keeps that port, outbound sessions never get it",
							s.Public, portmap.ProtoName(s.Proto), o.Ports.Lo, o.Ports.Hi, element("nat.outbound", j), o.Line)
						break
					}
				}
			}
		}
		out = append(out, s)
	}
	return out
}

func (c *converter) portMappings(rs []rawPortMapping) ([]portmap.Mapping, []int) {
	var ms []portmap.Mapping
	var lines []int
	for i, r := range rs {
		p := element("port_mapping", i)
		m := portmap.Mapping{}
		if r.Application == nil {
			c.missing(p, "application", "allowed: "+strings.Join(portmap.Names(), ", "))
		} else if s, ok := c.str(p+".application", r.Application, "an application name such as \"ftp\""); ok {
			app, err := portmap.ParseApp(s)
			if err != nil {
				c.errorf(p+".application", "%v", err)
			}
			m.App = app
		}
		if r.Port == nil {
			c.missing(p, "port", "allowed: 0 to 65535")
		} else if n, ok := c.integer(p+".port", r.Port, 0, 65535); ok {
			m.Port = uint16(n)
		}
		if r.Protocol != nil {
			if s, ok := c.str(p+".protocol", r.Protocol, oneOf(portmap.ProtoNames())); ok {
				proto, err := portmap.ParseProto(s)
				if err != nil {
					c.errorf(p+".protocol", "%v (leave protocol out to match every protocol)", err)
				}
				m.Proto = proto
			}
		}
		if r.Hosts != nil {
			m.Hosts = c.prefixes(p+".hosts", r.Hosts, true)
		}
		for _, d := range portmap.Defaults() {
			if d.Port == m.Port && (m.Proto == portmap.ProtoAny || m.Proto == d.Proto) && d.App != m.App && m.App != portmap.AppOther {
				where := "every destination"
				if len(m.Hosts) > 0 {
					where = "destinations in hosts"
				}
				c.warnf(p+".port", "port %d/%s is %s's well-known port; for %s this mapping makes it %s instead",
					d.Port, portmap.ProtoName(d.Proto), d.App, where, m.App)
			}
		}
		ms = append(ms, m)
		lines = append(lines, c.ix.keyAt(p).Line)
	}
	return ms, lines
}

func (c *converter) alg(r *rawALG) ALG {
	f := FTPALG{Enabled: true, MaxExpectations: DefaultMaxExpectations}
	if r.FTP.Enabled != nil {
		f.Enabled, _ = c.boolean("alg.ftp.enabled", r.FTP.Enabled)
	}
	if r.FTP.AllowThirdParty != nil {
		f.AllowThirdParty, _ = c.boolean("alg.ftp.allow_third_party", r.FTP.AllowThirdParty)
	}
	if r.FTP.MaxExpectations != nil {
		if n, ok := c.integer("alg.ftp.max_expectations", r.FTP.MaxExpectations, 1, MaxExpectations); ok {
			f.MaxExpectations = int(n)
		}
	}
	return ALG{FTP: f}
}

func (c *converter) icmp(r *rawICMP) ICMP {
	i := ICMP{RateLimit: DefaultICMPRateLimit, Burst: DefaultICMPBurst}
	if r.RateLimit != nil {
		const want = `a duration such as "1s" or "250ms", or "0s" for no limit`
		if s, ok := c.str("icmp.rate_limit", r.RateLimit, want); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				c.errorf("icmp.rate_limit", "%q is not a duration; want %s", s, want)
			case d < 0 || d > MaxICMPRateLimit:
				c.errorf("icmp.rate_limit", "%s is out of range; allowed: 0s (no limit) to %s", FormatDuration(d), FormatDuration(MaxICMPRateLimit))
			case d%time.Millisecond != 0:
				c.errorf("icmp.rate_limit", "%s is not a whole number of milliseconds", d)
			default:
				i.RateLimit = d
			}
		}
	}
	if r.Burst != nil {
		if n, ok := c.integer("icmp.burst", r.Burst, 1, MaxICMPBurst); ok {
			i.Burst = int(n)
		}
	}
	return i
}

func (c *converter) tcp(r *rawTCP) TCP {
	if r.MSSClamp == nil {
		return TCP{}
	}
	if s, isStr := r.MSSClamp.(string); isStr {
		switch s {
		case "off":
			return TCP{}
		case "mtu":
			return TCP{MSSClamp: MSSClampMTU}
		}
		c.errorf("tcp.mss_clamp", `%q is not allowed; allowed: "off", "mtu" or a number of bytes from %d to %d`, s, MinMSS, MaxMSS)
		return TCP{}
	}
	if n, ok := r.MSSClamp.(int64); !ok {
		c.errorf("tcp.mss_clamp", `want "off", "mtu" or an integer from %d to %d, got %s`, MinMSS, MaxMSS, describe(r.MSSClamp))
	} else if n, ok := c.integer("tcp.mss_clamp", n, MinMSS, MaxMSS); ok {
		return TCP{MSSClamp: int(n)}
	}
	return TCP{}
}

func (c *converter) metrics(r *rawMetrics) Metrics {
	if r.Listen == nil {
		return Metrics{}
	}
	const want = `host:port such as "127.0.0.1:9300", or "" for no metrics`
	s, ok := c.str("metrics.listen", r.Listen, want)
	if !ok || s == "" {
		return Metrics{}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		c.errorf("metrics.listen", "%q is not %s", s, want)
		return Metrics{}
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		c.errorf("metrics.listen", "%q has no valid port; allowed: 1 to 65535", s)
		return Metrics{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil && host != "" && host != "localhost" {
		c.errorf("metrics.listen", "%q: the host must be an IP address, \"localhost\" or empty (every address)", s)
		return Metrics{}
	}
	if host == "" || a.IsUnspecified() {
		c.warnf("metrics.listen", "%q serves metrics on every address, the outside interfaces included; "+
			"listen on 127.0.0.1 or a management address, or firewall the port", s)
	}
	return Metrics{Listen: s}
}

func (c *converter) control(r *rawControl) Control {
	ctl := Control{Socket: DefaultSocket, Group: c.group(r.Group)}
	if r.Socket == nil {
		return ctl
	}
	s, ok := c.str("control.socket", r.Socket, `an absolute path such as "/run/fastnat.sock", or "" for no control socket`)
	switch {
	case !ok:
	case s != "" && !filepath.IsAbs(s):
		c.errorf("control.socket", "%q is not an absolute path; write one such as %q", s, DefaultSocket)
	case len(s) > maxSocketPathBytes:
		c.errorf("control.socket", "path is %d bytes long; a unix socket path may have at most %d", len(s), maxSocketPathBytes)
	default:
		ctl.Socket = s
	}
	return ctl
}

// groupName is a portable group name (POSIX, as useradd accepts it).
var groupName = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// group checks [control] group: a group name, or "" for none.
func (c *converter) group(v any) string {
	if v == nil {
		return ""
	}
	s, ok := c.str("control.group", v, `a group name such as "fastnat", or "" for root only`)
	if ok && s != "" && !groupName.MatchString(s) {
		c.errorf("control.group", "%q is not a group name; allowed: a lower-case letter or _, then up to 31 letters, digits, _ or -", s)
		return ""
	}
	return s
}
