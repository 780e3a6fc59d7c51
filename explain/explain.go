package explain

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// ErrQuery is wrapped by errors about a connection that cannot be
// explained as given (a protocol fastnat does not know, a side that is
// neither inside nor outside).
var ErrQuery = errors.New("bad connection to explain")

// Query is a connection to explain: the protocol, source and destination
// of its first packet as it arrives at the NAT (a TCP SYN, a UDP
// datagram, an ICMP echo request), the side it arrives on ("inside",
// "outside", or "" or "auto" to infer it from the source), and its TTL
// as it arrives (nil: DefaultTTL).
type Query struct {
	Proto string         `json:"protocol"`
	Src   netip.AddrPort `json:"src"`
	Dst   netip.AddrPort `json:"dst"`
	From  string         `json:"from,omitempty"`
	TTL   *uint8         `json:"ttl,omitempty"`
}

// DefaultTTL is the TTL of a query that gives none: Linux's, enough to be
// forwarded.
const DefaultTTL = 64

// Report is how fastnat treats a connection, and why.
type Report struct {
	// Connection is the query, with the side it arrives on filled in.
	Connection Connection `json:"connection"`
	// Verdict is "translated"; "answered" when the NAT answers the
	// packet itself, as a host (ping to a public address); or why the
	// first packet is dropped (a NAT drop reason: "unsolicited",
	// "no_rule", "protocol", "martian", "directed_broadcast",
	// "ttl_expired").
	Verdict string `json:"verdict"`
	Why     string `json:"why,omitempty"` // a dropped packet's reason in words
	// Answer is what the NAT sends back instead of forwarding the packet,
	// nil for nothing.
	Answer *Answer `json:"answer,omitempty"`
	// Rules are the NAT rules that translate the connection: a nat.server
	// (destination), a nat.outbound (source), or both for hairpinning.
	Rules []Rule `json:"rules,omitempty"`
	// Translated is the connection after translation. A source port
	// chosen only when the connection starts is 0, with SourcePorts saying
	// from where.
	Translated  *Flow  `json:"translated,omitempty"`
	SourcePorts string `json:"source_ports,omitempty"`
	// Application is what the connection's ports classify it as.
	Application *Application `json:"application,omitempty"`
	// ALG says whether the FTP ALG inspects the connection.
	ALG ALG `json:"ftp_alg"`
	// Suggestion is the port mapping that would make the FTP ALG inspect
	// the connection, when no mapping matches a TCP connection to a port
	// a nat.server publishes (the case: FTP published on 9091).
	Suggestion *Suggestion `json:"suggestion,omitempty"`
}

// Connection is the explained connection.
type Connection struct {
	Protocol string         `json:"protocol"`
	Src      netip.AddrPort `json:"src"`
	Dst      netip.AddrPort `json:"dst"`
	From     string         `json:"arrives"`
	Inferred bool           `json:"arrival_inferred,omitempty"`
	TTL      uint8          `json:"ttl"`
}

// Answer is what the NAT sends back for a packet it does not forward.
type Answer struct {
	// Kind is "icmp_echo_reply", or the pipeline event that counts the
	// answer: "tcp_reset", "icmp_port_unreachable", "icmp_time_exceeded".
	Kind string `json:"kind"`
	// From is the answer's source: the public address the packet was
	// sent to; invalid for time exceeded, sent from the address of the
	// interface the packet arrived on.
	From netip.Addr `json:"from,omitzero"`
	Why  string     `json:"why"`
}

// Flow is a tuple after translation.
type Flow struct {
	Src netip.AddrPort `json:"src"`
	Dst netip.AddrPort `json:"dst"`
}

// Rule is one configuration entry, with where it is written.
type Rule struct {
	Kind  string `json:"kind"` // "nat.server", "nat.outbound", "port_mapping"
	Index int    `json:"index"`
	File  string `json:"file,omitempty"`
	Line  int    `json:"line,omitempty"`
	Text  string `json:"text"` // the rule in short
}

// Name is how configuration errors name the entry: "nat.server[0]".
func (r Rule) Name() string { return fmt.Sprintf("%s[%d]", r.Kind, r.Index) }

// Where is "FILE:LINE", or "" when unknown.
func (r Rule) Where() string {
	if r.File == "" || r.Line == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d", filepath.Base(r.File), r.Line)
}

// Application is the classification of a connection.
type Application struct {
	Name string `json:"name"`
	// By is the [[port_mapping]] that matched, nil for a built-in default
	// or no match.
	By *Rule `json:"port_mapping,omitempty"`
	// Default names the built-in default that matched ("ftp 21/tcp"); ""
	// with By nil means nothing matched.
	Default string `json:"default,omitempty"`
	// On is the port the match was on: "arriving" (the destination port
	// as the connection arrives) or "translated" (after NAT), "" when
	// nothing matched; Port is that port.
	On   string `json:"matched_on,omitempty"`
	Port uint16 `json:"port,omitempty"`
}

// ALG is whether the FTP ALG inspects a connection, and why (not).
type ALG struct {
	Inspected bool   `json:"inspected"`
	Why       string `json:"why"`
}

// Suggestion is a [[port_mapping]] to add.
type Suggestion struct {
	Why     string   `json:"why"`
	App     string   `json:"application"`
	Port    uint16   `json:"port"`
	Proto   string   `json:"protocol"`
	Hosts   []string `json:"hosts"`
	Comware string   `json:"comware"` // the same in the case's device's words
}

// TOML is the suggestion as a table to paste into the file.
func (s *Suggestion) TOML() string {
	return fmt.Sprintf("[[port_mapping]]\napplication = %q\nport = %d\nprotocol = %q\nhosts = [%q]\n",
		s.App, s.Port, s.Proto, s.Hosts[0])
}

// Connection explains q under cfg, whose NAT rules are rules (as the
// dataplane builds them from cfg: dataplane.NATRules). It needs nothing
// but the configuration; a running daemon adds what it knows of a live
// session (control.ExplainResult).
func Explain(cfg *config.Config, rules nat.Rules, q Query) (Report, error) {
	t, err := q.Tuple()
	if err != nil {
		return Report{}, err
	}
	proto := t.Proto
	var from nat.Side
	infer := false
	switch strings.ToLower(q.From) {
	case "inside":
		from = nat.Inside
	case "outside":
		from = nat.Outside
	case "", "auto":
		infer = true
	default:
		return Report{}, fmt.Errorf("%w: side %q; known: inside, outside, auto", ErrQuery, q.From)
	}
	ttl := uint8(DefaultTTL)
	if q.TTL != nil {
		ttl = *q.TTL
	}
	d, err := nat.Explain(rules, t, ttl, from, infer)
	if err != nil {
		return Report{}, err
	}
	r := Report{Connection: Connection{Protocol: packet.ProtoName(proto), Src: q.Src, Dst: q.Dst, From: sideName(d.From), Inferred: d.Inferred, TTL: ttl}}
	r.Answer = answer(d, q)
	if d.Verdict != nat.Forward || d.Response == nat.RespondEchoReply {
		r.Verdict, r.Why = d.Verdict.String(), dropWhy(d)
		if d.Verdict == nat.Forward {
			r.Verdict, r.Why = "answered", ""
		}
		r.ALG = ALG{Why: "the connection does not pass the NAT"}
		return r, nil
	}
	r.Verdict = "translated"
	if d.Server >= 0 {
		s := cfg.NAT.Server[d.Server]
		r.Rules = append(r.Rules, Rule{Kind: "nat.server", Index: d.Server, File: cfg.File, Line: s.Line,
			Text: fmt.Sprintf("%s %s -> %s", packet.ProtoName(s.Proto), s.Public, s.Inside)})
	}
	if d.Outbound >= 0 {
		o := cfg.NAT.Outbound[d.Outbound]
		inside := make([]string, len(o.Inside))
		for i, p := range o.Inside {
			inside[i] = p.String()
		}
		pool := o.Pool[0].String()
		if n := len(o.Pool); n > 1 {
			pool = fmt.Sprintf("%s (and %d more)", pool, n-1)
		}
		r.Rules = append(r.Rules, Rule{Kind: "nat.outbound", Index: d.Outbound, File: cfg.File, Line: o.Line,
			Text: fmt.Sprintf("%s -> pool %s, ports %d-%d, %s", strings.Join(inside, ","), pool, o.Ports.Lo, o.Ports.Hi, o.Mapping)})
		r.SourcePorts = fmt.Sprintf("%d-%d", d.PortLo, d.PortHi)
	}
	x := d.Translated
	r.Translated = &Flow{Src: netip.AddrPortFrom(nat.Addr(x.SrcAddr), x.SrcPort), Dst: netip.AddrPortFrom(nat.Addr(x.DstAddr), x.DstPort)}
	if proto == packet.ProtoICMP {
		r.ALG = ALG{Why: "ICMP has no application"}
		return r, nil
	}
	r.Application = application(cfg, d, t)
	r.ALG = algDecision(cfg, d)
	if d.App == portmap.AppOther && proto == packet.ProtoTCP && d.Server >= 0 {
		r.Suggestion = suggest(cfg, q)
	}
	return r, nil
}

// Tuple is the query's first packet as the flow table keys it.
func (q Query) Tuple() (packet.Tuple, error) {
	proto, ok := packet.ParseProtoName(q.Proto)
	if !ok || proto == portmap.ProtoAny {
		return packet.Tuple{}, fmt.Errorf("%w: protocol %q; known: %s or a number", ErrQuery, q.Proto, strings.Join(packet.ProtoNames(), ", "))
	}
	if !q.Src.Addr().Is4() || !q.Dst.Addr().Is4() {
		return packet.Tuple{}, fmt.Errorf("%w: %v -> %v: IPv4 addresses only", ErrQuery, q.Src, q.Dst)
	}
	t := packet.Tuple{SrcAddr: v4(q.Src.Addr()), DstAddr: v4(q.Dst.Addr()), SrcPort: q.Src.Port(), DstPort: q.Dst.Port(), Proto: proto}
	if nat.AddrOnly(proto) {
		t.SrcPort, t.DstPort = 0, 0 // no ports: the session is the addresses'
	}
	if proto == packet.ProtoICMP {
		t.DstPort = t.SrcPort // a query's identifier stands in both (packet.Tuple)
	}
	return t, nil
}

// application describes the classification of d, t being the arriving
// tuple.
func application(cfg *config.Config, d nat.Decision, t packet.Tuple) *Application {
	a := &Application{Name: d.App.String()}
	if d.App == portmap.AppOther {
		return a
	}
	a.On, a.Port = "arriving", t.DstPort
	if d.OnTranslated {
		a.On, a.Port = "translated", d.Translated.DstPort
	}
	if d.Entry < 0 {
		a.Default = fmt.Sprintf("%s %d/%s", d.App, a.Port, packet.ProtoName(t.Proto))
		return a
	}
	m := cfg.PortMappings[d.Entry]
	text := fmt.Sprintf("%s %d/%s", m.App, m.Port, portmap.ProtoName(m.Proto))
	if len(m.Hosts) > 0 {
		hs := make([]string, len(m.Hosts))
		for i, h := range m.Hosts {
			hs[i] = h.String()
		}
		text += " for " + strings.Join(hs, ",")
	}
	line := 0
	if d.Entry < len(cfg.PortMappingLines) {
		line = cfg.PortMappingLines[d.Entry]
	}
	a.By = &Rule{Kind: "port_mapping", Index: d.Entry, File: cfg.File, Line: line, Text: text}
	return a
}

func algDecision(cfg *config.Config, d nat.Decision) ALG {
	switch {
	case d.ALG:
		return ALG{Inspected: true, Why: "classified ftp: PORT, EPRT, 227 and 229 are rewritten and their data connections expected"}
	case d.App != portmap.AppFTP:
		return ALG{Why: "not classified ftp"}
	case !cfg.ALG.FTP.Enabled:
		return ALG{Why: "classified ftp, but the FTP ALG is off ([alg.ftp] enabled = false)"}
	}
	return ALG{Why: "classified ftp, but not TCP"}
}

// suggest is the mapping that makes an unclassified TCP connection to a
// published server FTP: its destination port as it arrives, for that
// destination only — the fix of the case (CASE.md: port-mapping
// application ftp port 9091). Only ftp has an ALG, so only an ftp mapping
// changes what the NAT does. It is made only for a nat.server's port,
// which the operator published and knows the server behind: a suggestion
// for every outbound connection to a port without a default (a web
// server on 8080, anything) would be noise, not a fix.
func suggest(cfg *config.Config, q Query) *Suggestion {
	why := fmt.Sprintf("if %s is an FTP server, the FTP ALG must see this connection to rewrite "+
		"its PORT, EPRT, 227 and 229 and to expect its data connections; this mapping makes it ftp", q.Dst)
	if !cfg.ALG.FTP.Enabled {
		why += " (and turn the FTP ALG on: [alg.ftp] enabled = true)"
	}
	return &Suggestion{
		Why: why, App: "ftp", Port: q.Dst.Port(), Proto: "tcp",
		Hosts:   []string{netip.PrefixFrom(q.Dst.Addr(), 32).String()},
		Comware: fmt.Sprintf("port-mapping application ftp port %d", q.Dst.Port()),
	}
}

// answer describes what the NAT sends back for d, nil for nothing.
func answer(d nat.Decision, q Query) *Answer {
	const closed = "nothing holds the port on the public address — no nat.server, and no mapping (a running NAT may hold one: " +
		"then the packet is dropped silently, or hairpinned from inside) — so it is closed, and the NAT answers as a host does"
	switch d.Response {
	case nat.RespondEchoReply:
		return &Answer{Kind: d.Response.String(), From: q.Dst.Addr(), Why: "the public address answers ping, as a host does, whatever the TTL"}
	case nat.RespondTCPReset:
		return &Answer{Kind: d.Response.String(), From: q.Dst.Addr(), Why: closed + ": a reset"}
	case nat.RespondPortUnreachable:
		return &Answer{Kind: d.Response.String(), From: q.Dst.Addr(), Why: closed + ": port unreachable (rate-limited with the other ICMP errors)"}
	case nat.RespondTimeExceeded:
		return &Answer{Kind: d.Response.String(),
			Why: "forwarding it would take its TTL to 0: time exceeded, from the address of the interface it arrived on (RFC 1812 §5.3.1; rate-limited with the other ICMP errors)"}
	}
	return nil
}

func dropWhy(d nat.Decision) string {
	switch d.Verdict {
	case nat.DropTTLExpired:
		return "its TTL runs out here, where it would be forwarded"
	case nat.DropUnsolicited:
		if d.From == nat.Inside {
			return "it is addressed to a public address of the NAT's own that no nat.server publishes (and no mapping or expectation a running NAT may have awaits it)"
		}
		return "it arrives outside and no nat.server publishes its destination (and no session or expectation a running NAT may have awaits it)"
	case nat.DropNoRule:
		return "it arrives inside and no nat.outbound rule holds its source"
	case nat.DropMartian:
		return "an address no host has is at one end (0/8, 127/8, multicast, 255.255.255.255), or its source is an address of the router's own (a public address, or an interface's): the kernel's routing drops such a packet too"
	case nat.DropBroadcast:
		return "its destination is the broadcast address of a prefix of one of the router's interfaces (a directed broadcast), which a router does not forward (the kernel's bc_forwarding 0)"
	case nat.DropProtocol:
		return "fastnat does not translate this protocol (AH's integrity check covers the addresses; SCTP, DCCP and UDP-Lite are not tracked)"
	}
	return d.Verdict.String()
}

func sideName(s nat.Side) string {
	if s == nat.Inside {
		return "inside"
	}
	return "outside"
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
