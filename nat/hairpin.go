package nat

import "github.com/fastnat/fastnat/flowtable"

// Hairpinning (RFC 4787 REQ-9, RFC 5382 REQ-8): an inside host that sends
// to a public endpoint of the NAT reaches the inside endpoint mapped to
// it, with its own source translated to its own public mapping — never its
// private address — as if both hosts were on either side of the NAT.
//
// publicMap answers which inside endpoint a public endpoint is mapped to:
// an endpoint-independent binding's, or an address-and-port-dependent
// session's own port. Entries are added where those mappings begin and
// removed where they end, before the port returns to its pool, so that a
// port claimed again never meets a stale entry. It is read only when a
// session is created (slow path).
type publicMap struct {
	shardedMap[bindKey]
}

// add records that public endpoint pub (its class set) maps to inside
// endpoint in.
func (pm *publicMap) add(pub, in bindKey) {
	m, unlock := pm.lock(pub)
	m[pub] = in
	unlock()
}

// remove forgets pub if it still maps to in.
func (pm *publicMap) remove(pub, in bindKey) {
	m, unlock := pm.lock(pub)
	if m[pub] == in {
		delete(m, pub)
	}
	unlock()
}

// lookup returns the inside endpoint public endpoint pub maps to.
func (pm *publicMap) lookup(pub bindKey) (bindKey, bool) {
	m, unlock := pm.lock(pub)
	in, ok := m[pub]
	unlock()
	return in, ok
}

// ownMapping returns the public endpoint a session owns as its own source
// port (flagOwnSrcPort) and the inside endpoint it maps: Key[Reply]'s
// destination and Key[Orig]'s source.
func ownMapping(s *flowtable.Session, class int) (pub, in bindKey) {
	o, r := s.Key[flowtable.Orig], s.Key[flowtable.Reply]
	return bindKey{addr: r.DstAddr, port: r.DstPort, class: uint8(class)},
		bindKey{addr: o.SrcAddr, port: o.SrcPort, class: uint8(class)}
}
