package control

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// age returns now - then as a signed number of seconds (the table's clock
// wraps modulo 2^32).
func age(now, then flowtable.Time) int64 { return int64(int32(now - then)) }

func addrPort(a uint32, p uint16) netip.AddrPort { return netip.AddrPortFrom(nat.Addr(a), p) }

func flowOf(t packet.Tuple) Flow {
	return Flow{Src: addrPort(t.SrcAddr, t.SrcPort), Dst: addrPort(t.DstAddr, t.DstPort)}
}

// Names tells the views what a session's numbers stand for: the rule its
// label names (the NAT's Rule), the interface its first packet came in on
// (the dataplane's interfaces, in the order of every worker's ports), and
// the wall-clock time of the flow table's clock 0. Nil functions leave
// rules and interfaces unnamed.
type Names struct {
	Rule    func(label uint16) nat.RuleRef
	Ingress func(index uint16) string
	Epoch   time.Time
}

func (n *Names) rule(label uint16) nat.RuleRef {
	if n.Rule == nil {
		return nat.RuleRef{}
	}
	return n.Rule(label)
}

func (n *Names) ingress(i uint16) string {
	if n.Ingress == nil {
		return fmt.Sprint(i)
	}
	return n.Ingress(i)
}

// ListSessions returns the sessions of t that match q, in slot order, at
// time now (the daemon's flow-table clock). It walks the whole table to
// count the matches even after q.Limit sessions were collected.
func ListSessions(t *flowtable.Table, now flowtable.Time, q SessionQuery, names Names) (SessionList, error) {
	m, err := q.Filter.compile()
	if err != nil {
		return SessionList{}, err
	}
	l := SessionList{Sessions: []Session{}}
	walkSessions(t, now, &m, names, func(v *Session, _, _ uint32) {
		if q.Limit == 0 || len(l.Sessions) < q.Limit {
			l.Sessions = append(l.Sessions, *v)
		}
		l.Matched++
	})
	return l, nil
}

// ClearSessions ends the sessions of t that f selects with end (the NAT's
// Delete, which releases what each held exactly once), and counts them.
func ClearSessions(t *flowtable.Table, now flowtable.Time, f SessionFilter, names Names, end func(id, gen uint32) bool) (ClearResult, error) {
	m, err := f.compile()
	if err != nil {
		return ClearResult{}, err
	}
	var r ClearResult
	walkSessions(t, now, &m, names, func(_ *Session, id, gen uint32) {
		r.Matched++
		if end(id, gen) {
			r.Cleared++
		}
	})
	return r, nil
}

// walkSessions calls fn with the view, id and generation of every live
// session m selects. What m can tell from the keys it checks first; the
// view is built only for those, and a session that ends while it is read
// is skipped.
func walkSessions(t *flowtable.Table, now flowtable.Time, m *sessionMatch, names Names, fn func(v *Session, id, gen uint32)) {
	rules := map[uint16]nat.RuleRef{} // a walk resolves each label once
	t.Range(func(id, gen uint32, s flowtable.Session) bool {
		if !m.keys(&s) {
			return true
		}
		ref, ok := rules[s.Rule]
		if !ok {
			ref = names.rule(s.Rule)
			rules[s.Rule] = ref
		}
		if !m.rule.match(ref) {
			return true
		}
		v, ok := sessionView(t, now, id, gen, s, ref, &names)
		if !ok || !m.stateMatches(v.State) {
			return true
		}
		fn(&v, id, gen)
		return true
	})
}

// sessionView is the view of session (id, gen), whose copy is s and whose
// rule is ref, with its state and counters read from t; ok is false when
// the session ended or was reused while they were read.
func sessionView(t *flowtable.Table, now flowtable.Time, id, gen uint32, s flowtable.Session, ref nat.RuleRef, names *Names) (Session, bool) {
	k0, k1 := s.Key[flowtable.Orig], s.Key[flowtable.Reply]
	in, out, inbound := nat.Tuples(&s)
	v := Session{
		ID: id, Protocol: packet.ProtoName(k0.Proto), ProtoNum: k0.Proto, App: portmap.App(s.App).String(), Mapping: int(s.MapEntry),
		Initiator: flowOf(k0), Responder: flowOf(k1), Inside: flowOf(in), Outside: flowOf(out), Inbound: inbound,
		Rule: ref.String(), Ingress: names.ingress(s.Ingress),
		// As the session's delete event will say: the table's clock, in
		// whole seconds since the epoch.
		Start: time.UnixMilli(names.Epoch.UnixMilli() + int64(s.Start)*1000).UTC(),
	}
	if s.ParentGen != 0 {
		p := s.Parent
		v.Parent = &p
	}
	state, timeout := t.State(id)
	pkts, bytes := t.Counters(id)
	last := t.LastSeen(id)
	if !t.Valid(id, gen) { // ended or reused while we read it
		return Session{}, false
	}
	v.Traffic = Counters{
		Initiator: Traffic{Packets: pkts[flowtable.Orig], Bytes: bytes[flowtable.Orig]},
		Responder: Traffic{Packets: pkts[flowtable.Reply], Bytes: bytes[flowtable.Reply]},
	}
	v.State = stateName(k0.Proto, state, v.Traffic.Responder.Packets > 0)
	v.Timeout = timeout
	v.Idle = max(age(now, last), 0)
	v.TTL = max(int64(timeout)-v.Idle, 0)
	v.Age = max(age(now, flowtable.Time(s.Start)), 0)
	return v, true
}

// stateName names a session's state the way the case's firewall does.
func stateName(proto, state uint8, replied bool) string {
	switch proto {
	case packet.ProtoTCP:
		n := nat.TCPStateName(state)
		if n == "-" {
			n = "NONE"
		}
		return "TCP_" + n
	case packet.ProtoICMP:
		if replied {
			return "ICMP_REPLY"
		}
		return "ICMP_REQUEST"
	}
	p := strings.ToUpper(packet.ProtoName(proto))
	if replied {
		return p + "_OPEN"
	}
	return p + "_READY"
}

// ListExpectations returns the live expectations of t at time now.
func ListExpectations(t *flowtable.Table, now flowtable.Time, names Names) []Expectation {
	out := []Expectation{}
	t.RangeExpectations(func(e flowtable.Expectation) bool {
		out = append(out, expectationView(t, e, now, &names))
		return true
	})
	return out
}

func expectationView(t *flowtable.Table, e flowtable.Expectation, now flowtable.Time, names *Names) Expectation {
	src := "any"
	if e.SrcAddr != 0 {
		src = nat.Addr(e.SrcAddr).String()
	}
	// The data session will be named by its control session's rule, the
	// ALG's way (nat makes its label so).
	ref := nat.RuleRef{Via: natlog.ViaALG}
	var ps flowtable.Session
	if t.Read(e.Parent, e.ParentGen, &ps) {
		ref = names.rule(ps.Rule)
		if ref.Kind != natlog.RuleNone {
			ref.Via = natlog.ViaALG
		}
	}
	return Expectation{
		Protocol: packet.ProtoName(e.Proto), Source: src,
		Dst:    addrPort(e.DstAddr, e.DstPort),
		To:     addrPort(e.Xlate.SrcAddr, e.Xlate.SrcPort),
		App:    portmap.App(e.App).String(),
		Rule:   ref.String(),
		Parent: e.Parent,
		TTL:    max(age(e.Expires, now), 0),
	}
}

// ListMappings returns the effective port-mapping table of cfg, with the
// FTP ALG's per-mapping counters from ftp (nil when the ALG is off).
// The ALG keys its counters by the mapping index of the configuration a
// session was created under; after a reload that reorders mappings, old
// sessions count under their old index.
func ListMappings(cfg *config.Config, ftp *alg.Stats) []Mapping {
	out := []Mapping{}
	for _, e := range cfg.PortMap.Entries() {
		m := Mapping{App: e.App.String(), Port: e.Port, Protocol: portmap.ProtoName(e.Proto), Scope: "any", Index: e.Mapping}
		if e.Scope.IsValid() {
			m.Scope = e.Scope.String()
		}
		if !e.Default() && e.Mapping < len(cfg.PortMappingLines) {
			m.Line = cfg.PortMappingLines[e.Mapping]
		}
		if ftp != nil && e.App == portmap.AppFTP {
			for _, ec := range ftp.Entries {
				if int(ec.Entry) == e.Mapping {
					m.ALGSessions, m.ALGRewritten = ec.Sessions, ec.Rewritten
				}
			}
		}
		out = append(out, m)
	}
	return out
}
