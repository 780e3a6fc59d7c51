package nat

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/prefetch"
	"github.com/fastnat/fastnat/packet"
)

// maxStaged is how many creations of one burst StageCreations prepares:
// a default burst.
const maxStaged = 64

// stagedDraws are the random draws StageCreations made for the pool
// allocations of a burst's creations, in order, each with the inside
// endpoint it was drawn for: allocate takes its endpoint's draw (and
// forgets the ones before it, whose creations did not allocate) instead
// of drawing, so that the port bitmap's word the draw picks was loaded
// ahead. A draw is a uniform random number whoever uses it, so a draw
// left over, or taken by a later creation of the same endpoint, changes
// nothing but which word was loaded.
type stagedDraws struct {
	n, next int
	ent     [maxStaged]stagedDraw
}

type stagedDraw struct {
	src   uint32
	sport uint16
	class uint8
	r     uint32
}

// find returns the index of the draw staged for inside endpoint (src,
// sport) of class and not yet taken, or -1.
func (s *stagedDraws) find(src uint32, sport uint16, class int) int {
	for i := s.next; i < s.n; i++ {
		if d := &s.ent[i]; d.src == src && d.sport == sport && d.class == uint8(class) {
			return i
		}
	}
	return -1
}

// take returns the draw staged for inside endpoint (src, sport) of class.
func (s *stagedDraws) take(src uint32, sport uint16, class int) (uint32, bool) {
	if i := s.find(src, sport, class); i >= 0 {
		s.next = i + 1
		return s.ent[i].r, true
	}
	return 0, false
}

// StageCreations prepares the creations a burst's lookup misses will
// make: for every key the lookup did not find (hits[i].Found false) it
// starts loading what the creation will wait for, so that the misses of
// all the burst's creations overlap instead of forming, creation by
// creation, the chain port bitmap → public endpoint → reply bucket. For a
// flow from inside through a dynamic pool that is, besides the new slot's
// lines and the binding's slot, the bitmap words of the two ports the
// allocation tries first — the preserved source port and the random
// start, drawn now (stagedDraws) — and for each of them the public map's
// slot and the reply key's index bucket the session would get. A
// prediction that turns out wrong costs a wasted load, nothing else: the
// creations themselves run as before (create). It takes no lock and
// writes nothing shared.
func (e *Engine) StageCreations(keys []packet.Tuple, hits []flowtable.Hit, from Side) {
	e.draws.n, e.draws.next = 0, 0
	c := e.n.rules.Load()
	for i := range hits {
		if !hits[i].Found {
			e.stage(c, &keys[i], from)
		}
	}
}

// stage is StageCreations for one key.
func (e *Engine) stage(c *compiled, t *packet.Tuple, from Side) {
	class, ok := portClass(t.Proto)
	if !ok {
		return
	}
	e.n.table.PrefetchInsert(*t)
	if from != Inside || c.public[t.DstAddr] {
		return
	}
	in := bindKey{addr: t.SrcAddr, port: t.SrcPort, class: uint8(class)}
	e.n.bindings.prefetch(in)
	rule := c.outboundFor(t.SrcAddr)
	if rule == nil || rule.blocks != nil || rule.det != nil || len(rule.pool) == 0 || e.draws.n == maxStaged {
		return
	}
	i := int(mix32(t.SrcAddr) % uint32(len(rule.pool)))
	spaces := rule.spaces[i].Load()
	if spaces == nil {
		return
	}
	space := &spaces[class]
	addr, lo, hi := rule.pool[i], rule.lo, rule.hi
	r := e.rng.Uint32()
	e.draws.ent[e.draws.n] = stagedDraw{src: t.SrcAddr, sport: t.SrcPort, class: uint8(class), r: r}
	e.draws.n++
	start := e.start(rule, r)
	prefetch.Line(&space.bits[start>>6])
	e.stageEndpoint(t, addr, uint16(start), class)
	if t.SrcPort >= lo && t.SrcPort <= hi {
		prefetch.Line(&space.bits[t.SrcPort>>6])
	}
}

// stageEndpoint starts loading what the insert of flow t translated to
// public source endpoint (addr, port) waits for: the public map's slot
// and the reply key's index bucket.
func (e *Engine) stageEndpoint(t *packet.Tuple, addr uint32, port uint16, class int) {
	e.n.public.prefetch(bindKey{addr: addr, port: port, class: uint8(class)})
	x := *t
	x.SrcAddr, x.SrcPort = addr, port
	if class == classICMP {
		x.DstPort = port
	}
	e.n.table.PrefetchKey(x.Reverse())
}

// start is where allocate's search for a random free port of rule
// begins, from random draw r: a uniform port of this worker's partition
// of the rule's range (RFC 6056 randomization; the partitions keep
// workers off each other's bitmap words).
func (e *Engine) start(rule *outboundRule, r uint32) uint32 {
	n := uint32(rule.hi) - uint32(rule.lo) + 1
	part := n / uint32(e.n.workers)
	start := uint32(rule.lo) + uint32(e.worker)*part
	return start + uint32(uint64(r)*uint64(part)>>32)
}
