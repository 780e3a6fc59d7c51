package control

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/portmap"
)

// SessionFilter selects sessions, for `fastnat show sessions` and `fastnat
// clear sessions`. Every field set must match; the zero filter matches
// every session. Addresses, ports, protocols and applications are
// written as for EventFilter.
type SessionFilter struct {
	// Addr is an address or prefix one of the session's addresses lies
	// in: either tuple's source or destination, so the inside host, its
	// public address and the remote end all select it.
	Addr string `json:"addr,omitempty"`
	// Port is a port (or ICMP query identifier) of either tuple; 0: any.
	Port     int    `json:"port,omitempty"`
	Protocol string `json:"protocol,omitempty"` // "tcp", "udp", "icmp", or another name or number
	// State is a state as the views name it, with or without its
	// protocol ("established" and "tcp_established" alike), in any case.
	State string `json:"state,omitempty"`
	App   string `json:"app,omitempty"` // "ftp", "ftp-data", "other", ...
	// Rule selects by the rule that made the session: a rule
	// ("nat.server[1]", with every way it made sessions), a rule and way
	// ("nat.server[1]/hairpin"), every rule of a kind ("nat.outbound"), or
	// a way or mark alone ("hairpin", "alg", "removed").
	Rule string `json:"rule,omitempty"`
}

// sessionMatch is a compiled SessionFilter.
type sessionMatch struct {
	addr    netip.Prefix // invalid: any
	port    uint16       // 0: any
	proto   uint8        // 0: any
	app     int          // -1: any
	state   string       // the state that matches (upper case); "": any
	anyProt bool         // state is a word without a protocol: any protocol's
	stateOf string       // the filter as written, for its message
	rule    ruleMatch
}

// compile checks f and returns its matcher; its errors wrap ErrBadRequest.
func (f SessionFilter) compile() (sessionMatch, error) {
	m := sessionMatch{app: -1}
	var err error
	if f.Addr != "" {
		if m.addr, err = parsePrefix(f.Addr); err != nil {
			return m, err
		}
	}
	if m.port, err = parsePort(f.Port); err != nil {
		return m, err
	}
	if f.Protocol != "" {
		if m.proto, err = parseProtocol(f.Protocol); err != nil {
			return m, err
		}
	}
	if f.App != "" {
		a, err := appOf(f.App)
		if err != nil {
			return m, err
		}
		m.app = int(a)
	}
	if f.State != "" {
		if m.state, m.anyProt, err = parseState(f.State); err != nil {
			return m, err
		}
	}
	if f.Rule != "" {
		if m.rule, err = parseRuleMatch(f.Rule); err != nil {
			return m, err
		}
	}
	return m, nil
}

// keys reports whether s passes what the filter says of its keys and
// application.
func (m *sessionMatch) keys(s *flowtable.Session) bool {
	k0, k1 := &s.Key[flowtable.Orig], &s.Key[flowtable.Reply]
	if m.proto != 0 && k0.Proto != m.proto {
		return false
	}
	if m.app >= 0 && int(s.App) != m.app {
		return false
	}
	if m.port != 0 && k0.SrcPort != m.port && k0.DstPort != m.port && k1.SrcPort != m.port && k1.DstPort != m.port {
		return false
	}
	if m.addr.IsValid() && !m.in(k0.SrcAddr) && !m.in(k0.DstAddr) && !m.in(k1.SrcAddr) && !m.in(k1.DstAddr) {
		return false
	}
	return true
}

func (m *sessionMatch) in(a uint32) bool { return m.addr.Contains(nat.Addr(a)) }

// stateMatches reports whether a session in state name passes.
func (m *sessionMatch) stateMatches(name string) bool {
	if m.anyProt {
		p, ok := strings.CutSuffix(name, "_"+m.state)
		return ok && p != "" && !strings.Contains(p, "_")
	}
	return m.state == "" || name == m.state
}

// stateWords are the states the views name, without their protocol.
var stateWords = []string{"SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSED", "NONE", "OPEN", "READY", "REQUEST", "REPLY"}

// parseState reads a --state filter: a state with its protocol
// ("TCP_ESTABLISHED", "GRE_OPEN", "47_OPEN"), or a word without one
// ("ESTABLISHED", "OPEN"), which matches that state of every protocol
// (anyProt) — GRE, ESP and protocols without a name included.
func parseState(s string) (state string, anyProt bool, err error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if slices.Contains(stateWords, u) {
		return u, true, nil
	}
	for _, w := range stateWords {
		if p, ok := strings.CutSuffix(u, "_"+w); ok && p != "" && !strings.Contains(p, "_") {
			return u, false, nil
		}
	}
	return "", false, fmt.Errorf("%w: unknown state %q; known: %s, each with or without its protocol (tcp_established)",
		ErrBadRequest, s, strings.ToLower(strings.Join(stateWords, ", ")))
}

// ruleMatch is a compiled --rule filter.
type ruleMatch struct {
	set     bool
	kind    natlog.RuleKind // RuleNone: any
	index   int             // -1: any
	via     natlog.Via
	anyVia  bool
	removed bool // only rules a reload removed
}

var rulePattern = regexp.MustCompile(`^(nat\.outbound|nat\.server)(?:\[(\d+)\])?(?:/(hairpin|alg))?$`)

// parseRuleMatch reads a --rule filter (see SessionFilter.Rule).
func parseRuleMatch(s string) (ruleMatch, error) {
	r := ruleMatch{set: true, index: -1, anyVia: true}
	switch strings.ToLower(s) {
	case "hairpin":
		r.via, r.anyVia = natlog.ViaHairpin, false
		return r, nil
	case "alg":
		r.via, r.anyVia = natlog.ViaALG, false
		return r, nil
	case "removed":
		r.removed = true
		return r, nil
	}
	m := rulePattern.FindStringSubmatch(strings.ToLower(s))
	if m == nil {
		return r, fmt.Errorf("%w: rule %q; write nat.outbound[N] or nat.server[N] (optionally with /hairpin or /alg), nat.outbound, nat.server, hairpin, alg or removed",
			ErrBadRequest, s)
	}
	r.kind = natlog.RuleOutbound
	if m[1] == natlog.RuleServer.String() {
		r.kind = natlog.RuleServer
	}
	if m[2] != "" {
		n, err := strconv.ParseUint(m[2], 10, 16)
		if err != nil {
			return r, fmt.Errorf("%w: rule %q: index out of range", ErrBadRequest, s)
		}
		r.index = int(n)
	}
	switch m[3] {
	case "hairpin":
		r.via, r.anyVia = natlog.ViaHairpin, false
	case "alg":
		r.via, r.anyVia = natlog.ViaALG, false
	}
	return r, nil
}

// match reports whether a session made by ref passes.
func (r *ruleMatch) match(ref nat.RuleRef) bool {
	switch {
	case !r.set:
		return true
	case r.removed:
		return ref.Removed
	case ref.Removed || ref.Unknown && r.index >= 0:
		// A removed rule's index is another rule's now.
		return false
	case r.kind != natlog.RuleNone && ref.Kind != r.kind:
		return false
	case r.index >= 0 && int(ref.Index) != r.index:
		return false
	}
	return r.anyVia || ref.Via == r.via
}

// parsePrefix reads an address (a /32) or a prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || !a.Is4() {
			return p, fmt.Errorf("%w: %q is not an IPv4 address or prefix", ErrBadRequest, s)
		}
		p = netip.PrefixFrom(a, 32)
	}
	if !p.Addr().Is4() {
		return p, fmt.Errorf("%w: %q is not an IPv4 prefix", ErrBadRequest, s)
	}
	return p.Masked(), nil
}

// parsePort checks a port filter (0: any).
func parsePort(p int) (uint16, error) {
	if p < 0 || p > 65535 {
		return 0, fmt.Errorf("%w: port %d is out of range; allowed: 1 to 65535", ErrBadRequest, p)
	}
	return uint16(p), nil
}

// appNames lists every application a session may carry, for the --app
// filters: the mappable ones, "other" and "ftp-data".
func appNames() []string {
	var names []string
	for a := portmap.AppOther; a <= portmap.AppFTPData; a++ {
		names = append(names, a.String())
	}
	return names
}

// appOf returns the application called name (in any case), "other" and
// "ftp-data" included.
func appOf(name string) (portmap.App, error) {
	lower := strings.ToLower(name)
	for a := portmap.AppOther; a <= portmap.AppFTPData; a++ {
		if a.String() == lower {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown application %q; known: %s", ErrBadRequest, name, strings.Join(appNames(), ", "))
}
