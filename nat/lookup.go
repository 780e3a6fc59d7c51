package nat

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors of the rules' allocation modes and of Lookup.
var (
	// ErrRules is wrapped by errors about rules the engine cannot build.
	ErrRules = errors.New("invalid NAT rules")
	// ErrProducers: the event log has fewer rings than the NAT writes
	// (Producers).
	ErrProducers = errors.New("the event log has too few producer rings")
	// ErrNoRule: no outbound rule holds the address.
	ErrNoRule = errors.New("no outbound rule holds this address")
	// ErrDynamic: the rule holding the address maps dynamically, so only
	// the event log knows who used a port.
	ErrDynamic = errors.New("the rule maps dynamically; ask the event log")
	// ErrUnassigned: a deterministic rule's public address, but no inside
	// host owns the port.
	ErrUnassigned = errors.New("no inside host owns this port")
)

// Lookup inverts the outbound rules offline, from the configuration
// alone: which inside host a public address and port of a deterministic
// rule stand for, and which public address and ports an inside address
// has. It is what `fastnat lookup` asks.
type Lookup struct {
	rules []lookupRule
}

type lookupRule struct {
	o   Outbound
	det *Deterministic // nil for a dynamic rule
}

// Answer is what Lookup found.
type Answer struct {
	Rule   int        // index of the nat.outbound rule
	Inside netip.Addr // the inside host (invalid when the rule is dynamic)
	Public netip.Addr // its public address (for a dynamic rule asked by public address: that address)
	// First and Last are the host's port range; 0 for a dynamic rule.
	First, Last uint16
}

// NewLookup builds the deterministic mappings of rules.
func NewLookup(rules []Outbound) (*Lookup, error) {
	l := &Lookup{}
	for i, o := range rules {
		r := lookupRule{o: o}
		if o.Deterministic {
			d, err := NewDeterministic(o.Inside, o.Pool, o.PortLo, o.PortHi, o.PortsPerHost)
			if err != nil {
				return nil, fmt.Errorf("outbound rule %d: %w", i, err)
			}
			r.det = d
		}
		l.rules = append(l.rules, r)
	}
	return l, nil
}

// ByPublic returns the inside host that public endpoint ap stands for.
// A public address of a dynamic rule gives that rule and ErrDynamic; an
// address no rule has, ErrNoRule; a port of a deterministic address that
// no host owns, ErrUnassigned.
func (l *Lookup) ByPublic(ap netip.AddrPort) (Answer, error) {
	if !ap.Addr().Is4() {
		return Answer{}, ErrNoRule
	}
	a := addr4(ap.Addr())
	for i, r := range l.rules {
		in := false
		for _, p := range r.o.Pool {
			if p == ap.Addr() {
				in = true
				break
			}
		}
		if !in {
			continue
		}
		ans := Answer{Rule: i, Public: ap.Addr()}
		if r.det == nil {
			return ans, ErrDynamic
		}
		host, ok := r.det.Reverse(a, ap.Port())
		if !ok {
			return ans, ErrUnassigned
		}
		_, first, last, _ := r.det.Forward(host)
		ans.Inside, ans.First, ans.Last = Addr(host), first, last
		return ans, nil
	}
	return Answer{}, ErrNoRule
}

// ByInside returns the public address and port range of inside address
// a, by the first outbound rule whose prefixes hold it (as the dataplane
// chooses). A dynamic rule gives that rule and ErrDynamic.
func (l *Lookup) ByInside(a netip.Addr) (Answer, error) {
	if !a.Is4() {
		return Answer{}, ErrNoRule
	}
	for i, r := range l.rules {
		for _, p := range r.o.Inside {
			if !p.Contains(a) {
				continue
			}
			ans := Answer{Rule: i, Inside: a}
			if r.det == nil {
				return ans, ErrDynamic
			}
			pub, first, last, _ := r.det.Forward(addr4(a))
			ans.Public, ans.First, ans.Last = Addr(pub), first, last
			return ans, nil
		}
	}
	return Answer{}, ErrNoRule
}
