package nat

import (
	"fmt"
	"net/netip"
	"sort"
)

// Deterministic is the deterministic mapping of one outbound rule (RFC
// 7422): every inside address of the rule has one public address and one
// range of ports on it, computed from the configuration alone, so that a
// public address and port name the inside host that used it without any
// per-session log, and the mapping can be inverted offline (`fastnat
// lookup`).
//
// The inside addresses are numbered k = 0, 1, ... in the order of the
// rule's prefixes and, within a prefix, by address. With P ports per host
// and a port range lo-hi, an address holds n = (hi-lo+1)/P ranges, and
//
//	host k  ->  pool[k / n], ports lo + (k mod n)·P  to  lo + (k mod n)·P + P - 1
//
// which fills the first pool address with consecutive hosts before the
// next one (as RFC 7422's examples and the det44 and Juniper
// implementations do). Reverse inverts it: pool address a and port p give
// k = a·n + (p-lo)/P. Ports past n·P at the top of the range, and ranges
// past the last host, belong to nobody.
type Deterministic struct {
	inside []prefix4 // in order
	starts []uint32  // starts[j]: the number of the first address of inside[j]
	hosts  uint32
	pool   []uint32
	index  map[uint32]uint32 // pool address → its position in pool
	lo     uint16
	per    uint16 // ports per host
	n      uint32 // ranges per pool address
}

// NewDeterministic builds the mapping of inside prefixes onto pool
// addresses with ports lo-hi, portsPerHost each. The prefixes must not
// overlap and the pool must hold a range for every inside address
// (config checks both with positions; this returns an error wrapping
// ErrRules).
func NewDeterministic(inside []netip.Prefix, pool []netip.Addr, lo, hi uint16, portsPerHost int) (*Deterministic, error) {
	span := int(hi) - int(lo) + 1
	if lo == 0 || span < 1 || portsPerHost < 1 || portsPerHost > span || len(pool) == 0 || len(inside) == 0 {
		return nil, fmt.Errorf("deterministic mapping of ports %d-%d, %d per host, on %d addresses: %w", lo, hi, portsPerHost, len(pool), ErrRules)
	}
	d := &Deterministic{lo: lo, per: uint16(portsPerHost), n: uint32(span / portsPerHost), index: make(map[uint32]uint32, len(pool))}
	var hosts uint64
	for _, p := range inside {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("deterministic mapping: %v is not IPv4: %w", p, ErrRules)
		}
		q := toPrefix4(p)
		for _, r := range d.inside {
			if r.contains(q.addr) || q.contains(r.addr) {
				return nil, fmt.Errorf("deterministic mapping: %v overlaps another inside prefix: %w", p, ErrRules)
			}
		}
		d.inside = append(d.inside, q)
		d.starts = append(d.starts, uint32(hosts))
		hosts += uint64(^q.mask) + 1
	}
	for i, a := range pool {
		if !a.Is4() {
			return nil, fmt.Errorf("deterministic mapping: pool address %v is not IPv4: %w", a, ErrRules)
		}
		if _, dup := d.index[addr4(a)]; dup {
			return nil, fmt.Errorf("deterministic mapping: pool address %v twice: %w", a, ErrRules)
		}
		d.index[addr4(a)] = uint32(i)
		d.pool = append(d.pool, addr4(a))
	}
	if hosts > uint64(len(pool))*uint64(d.n) {
		return nil, fmt.Errorf("deterministic mapping: %d inside addresses, but %d pool addresses hold %d ranges of %d ports: %w",
			hosts, len(pool), uint64(len(pool))*uint64(d.n), portsPerHost, ErrRules)
	}
	d.hosts = uint32(hosts)
	return d, nil
}

// Hosts returns the number of inside addresses the mapping covers.
func (d *Deterministic) Hosts() int { return int(d.hosts) }

// PortsPerHost returns the size of every host's range.
func (d *Deterministic) PortsPerHost() int { return int(d.per) }

// number returns inside address a's number k.
func (d *Deterministic) number(a uint32) (uint32, bool) {
	for j, p := range d.inside {
		if p.contains(a) {
			return d.starts[j] + (a - p.addr), true
		}
	}
	return 0, false
}

// address returns the inside address numbered k < d.hosts.
func (d *Deterministic) address(k uint32) uint32 {
	j := sort.Search(len(d.starts), func(j int) bool { return d.starts[j] > k }) - 1
	return d.inside[j].addr + (k - d.starts[j])
}

// Forward returns the public address and port range of inside address
// a; ok is false when a is not one of the rule's inside addresses.
func (d *Deterministic) Forward(a uint32) (pub uint32, first, last uint16, ok bool) {
	k, ok := d.number(a)
	if !ok {
		return 0, 0, 0, false
	}
	first = d.lo + uint16(k%d.n)*d.per
	return d.pool[k/d.n], first, first + d.per - 1, true
}

// Reverse returns the inside address whose range holds port on public
// address pub; ok is false when pub is not in the pool or no host owns
// the port.
func (d *Deterministic) Reverse(pub uint32, port uint16) (inside uint32, ok bool) {
	ai, ok := d.index[pub]
	if !ok || port < d.lo {
		return 0, false
	}
	r := uint32(port-d.lo) / uint32(d.per)
	if r >= d.n {
		return 0, false
	}
	k := uint64(ai)*uint64(d.n) + uint64(r)
	if k >= uint64(d.hosts) {
		return 0, false
	}
	return d.address(uint32(k)), true
}
