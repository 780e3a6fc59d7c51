package nat

import (
	"encoding/binary"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/prefetch"
	"github.com/fastnat/fastnat/packet"
)

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
	epMap[bindKey]
}

// prefetch starts loading the slot where pub's entry would be (see
// bindings.prefetch).
func (pm *publicMap) prefetch(pub bindKey) {
	h := epHash(pm.seed, pub.word())
	sh := &pm.shards[epShardOf(h)]
	prefetch.Line(&sh.slots[epHome(h, len(sh.slots))].key)
}

// add records that public endpoint pub (its class set) maps to inside
// endpoint in. It reports false, having changed nothing, when pub's shard
// is full (see epMap).
func (pm *publicMap) add(pub, in bindKey) bool {
	w := pub.word()
	h := pm.hash(w)
	sh := pm.lock(h)
	i, ok := sh.find(h, w)
	switch {
	case ok:
		sh.slots[i].val = in
	case sh.full():
		sh.mu.Unlock()
		return false
	default:
		sh.put(i, w, in)
	}
	sh.mu.Unlock()
	return true
}

// remove forgets pub if it still maps to in.
func (pm *publicMap) remove(pub, in bindKey) {
	w := pub.word()
	h := pm.hash(w)
	sh := pm.lock(h)
	if i, ok := sh.find(h, w); ok && sh.slots[i].val == in {
		sh.remove(&pm.epMap, i)
	}
	sh.mu.Unlock()
}

// lookup returns the inside endpoint public endpoint pub maps to.
func (pm *publicMap) lookup(pub bindKey) (bindKey, bool) {
	w := pub.word()
	h := pm.hash(w)
	sh := pm.lock(h)
	i, ok := sh.find(h, w)
	in := sh.slots[i].val
	sh.mu.Unlock()
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

// reflect hairpins a packet an inside endpoint sent to its own
// endpoint-independent mapping (the classic STUN client's hairpin test
// does so, RFC 3489 §10.1): the packet goes back to the sender from that
// mapping (RFC 4787 REQ-9: the source is the sender's external mapping),
// which is its destination — so the translation is a swap of source and
// destination. Such a flow's two keys would be one and the same, which no
// session can hold; no session is made, and every packet of it is
// reflected on its own. Swapping leaves the TCP or UDP checksum as it was
// (the pseudo-header and the ports hold the same words in another order)
// and the IPv4 checksum changes by the TTL alone.
func reflect(frame []byte, p *packet.Parsed, r *Result) {
	ip := frame[p.L3:p.End]
	if ip[8] <= 1 {
		r.Verdict = DropTTLExpired
		return
	}
	var a [4]byte
	copy(a[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], a[:])
	packet.IPv4(ip).DecTTL()
	l4 := frame[p.L4:p.End]
	sport := binary.BigEndian.Uint16(l4[0:])
	binary.BigEndian.PutUint16(l4[0:], binary.BigEndian.Uint16(l4[2:]))
	binary.BigEndian.PutUint16(l4[2:], sport)
	r.Verdict, r.Out, r.Divert = Forward, Inside, false
}
