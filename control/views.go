package control

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/metrics"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// appNames lists every application a session may carry, for the --app
// filter: the mappable ones, "other" and "ftp-data".
func appNames() []string {
	var names []string
	for a := portmap.AppOther; a <= portmap.AppFTPData; a++ {
		names = append(names, a.String())
	}
	return names
}

// parseApp checks an --app filter and returns it in lower case.
func parseApp(name string) (string, error) {
	lower := strings.ToLower(name)
	for _, n := range appNames() {
		if n == lower {
			return n, nil
		}
	}
	return "", fmt.Errorf("%w: unknown application %q; known: %s", ErrBadRequest, name, strings.Join(appNames(), ", "))
}

// age returns now - then as a signed number of seconds (the table's clock
// wraps modulo 2^32).
func age(now, then flowtable.Time) int64 { return int64(int32(now - then)) }

func addrPort(a uint32, p uint16) netip.AddrPort { return netip.AddrPortFrom(nat.Addr(a), p) }

// ListSessions returns the sessions of t that match q, in slot order, at
// time now (the daemon's flow-table clock). It walks the whole table to
// count the matches even after q.Limit sessions were collected.
func ListSessions(t *flowtable.Table, now flowtable.Time, q SessionQuery) (SessionList, error) {
	app := ""
	if q.App != "" {
		var err error
		if app, err = parseApp(q.App); err != nil {
			return SessionList{}, err
		}
	}
	l := SessionList{Sessions: []Session{}}
	t.Range(func(id, gen uint32, s flowtable.Session) bool {
		name := portmap.App(s.App).String()
		if app != "" && name != app {
			return true
		}
		if q.Limit > 0 && len(l.Sessions) >= q.Limit {
			if t.Valid(id, gen) {
				l.Matched++
			}
			return true
		}
		if v, ok := sessionView(t, now, id, gen, s); ok {
			l.Sessions = append(l.Sessions, v)
			l.Matched++
		}
		return true
	})
	return l, nil
}

// sessionView is the view of session (id, gen) whose copy is s, with its
// state and counters read from t; ok is false when it ended or was
// reused while they were read.
func sessionView(t *flowtable.Table, now flowtable.Time, id, gen uint32, s flowtable.Session) (Session, bool) {
	k0, k1 := s.Key[flowtable.Orig], s.Key[flowtable.Reply]
	v := Session{
		ID: id, Protocol: metrics.ProtoName(k0.Proto), ProtoNum: k0.Proto, App: portmap.App(s.App).String(), Mapping: int(s.MapEntry),
		Initiator: Flow{Src: addrPort(k0.SrcAddr, k0.SrcPort), Dst: addrPort(k0.DstAddr, k0.DstPort)},
		Responder: Flow{Src: addrPort(k1.SrcAddr, k1.SrcPort), Dst: addrPort(k1.DstAddr, k1.DstPort)},
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
	v.Orig = Traffic{Packets: pkts[flowtable.Orig], Bytes: bytes[flowtable.Orig]}
	v.Reply = Traffic{Packets: pkts[flowtable.Reply], Bytes: bytes[flowtable.Reply]}
	v.State = stateName(k0.Proto, state, v.Reply.Packets > 0)
	v.Timeout = timeout
	v.Idle = max(age(now, last), 0)
	v.TTL = max(int64(timeout)-v.Idle, 0)
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
	p := strings.ToUpper(metrics.ProtoName(proto))
	if replied {
		return p + "_OPEN"
	}
	return p + "_READY"
}

// ListExpectations returns the live expectations of t at time now.
func ListExpectations(t *flowtable.Table, now flowtable.Time) []Expectation {
	out := []Expectation{}
	t.RangeExpectations(func(e flowtable.Expectation) bool {
		out = append(out, expectationView(e, now))
		return true
	})
	return out
}

func expectationView(e flowtable.Expectation, now flowtable.Time) Expectation {
	src := "any"
	if e.SrcAddr != 0 {
		src = nat.Addr(e.SrcAddr).String()
	}
	return Expectation{
		Protocol: metrics.ProtoName(e.Proto), Source: src,
		Dst:    addrPort(e.DstAddr, e.DstPort),
		To:     addrPort(e.Xlate.SrcAddr, e.Xlate.SrcPort),
		App:    portmap.App(e.App).String(),
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
