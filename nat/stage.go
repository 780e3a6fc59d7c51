package nat

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/prefetch"
	"github.com/fastnat/fastnat/packet"
)

// Look-ahead over a burst's creations. A creation waits for a chain of
// misses — the binding's slot and the port bitmap's word, then the public
// endpoint's slot and the reply key's bucket, known only once the port
// is — so one creation alone cannot overlap them. The burst's other
// misses can: StageCreations records which of its keys the lookup did
// not find, and each creation, as it starts, starts loading what the
// creation stageAhead places later will wait for, the second half of
// the chain predicted (stage). Loaded a few creations ahead, the lines
// are still in the first-level cache when they are used (all of a
// burst's at once were not, and measured no faster).
const (
	// maxStaged is how many creations of one burst are staged: a
	// default burst.
	maxStaged = 64
	// stageAhead is how many creations ahead the loads start.
	stageAhead = 4
)

// staging is an engine's look-ahead over the current burst's creations.
type staging struct {
	keys []packet.Tuple // the burst's keys (the worker's; valid for the burst)
	from Side
	// miss are the indexes in keys of the lookup's misses, n of them;
	// cur is the next one expected to be created, ahead the next one to
	// stage.
	miss        [maxStaged]uint16
	n, cur, ahd int
	// draw is the random draw stage made for each miss it staged (for
	// the allocation's start), and drawn whether it made one.
	draw  [maxStaged]uint32
	drawn [maxStaged]bool
	// current is the draw of the creation under way, if it has one.
	current   uint32
	hasDraw   bool
	predicted bool // allocate chose a port whose lines stage loaded
}

// StageCreations tells the engine which of a burst's keys the lookup
// missed (hits[i].Found false): the creations they will make, in order,
// each load what a later one waits for (see staging). It starts the
// first stageAhead. It takes no lock and writes nothing shared.
func (e *Engine) StageCreations(keys []packet.Tuple, hits []flowtable.Hit, from Side) {
	s := &e.stg
	s.keys, s.from, s.n, s.cur, s.ahd = keys, from, 0, 0, 0
	for i := range hits {
		if !hits[i].Found && s.n < maxStaged {
			s.miss[s.n] = uint16(i)
			s.n++
		}
	}
	if s.n == 0 {
		return
	}
	c := e.n.rules.Load()
	for s.ahd < s.n && s.ahd < stageAhead {
		e.stage(c, s.ahd)
		s.ahd++
	}
}

// advance is called by a creation of flow t: if t is one of the staged
// misses it reports true (its loads were started), takes its draw, and
// stages the miss stageAhead further on.
func (e *Engine) advance(c *compiled, t *packet.Tuple) bool {
	s := &e.stg
	s.hasDraw = false
	for j := s.cur; j < s.ahd; j++ {
		if s.keys[s.miss[j]] != *t {
			continue
		}
		s.cur = j + 1
		s.current, s.hasDraw = s.draw[j], s.drawn[j]
		for s.ahd < s.n && s.ahd < s.cur+stageAhead {
			e.stage(c, s.ahd)
			s.ahd++
		}
		return true
	}
	return false
}

// stage starts loading what the creation of staged miss j waits for: the
// new slot's lines and, for a flow from inside through a dynamic pool,
// the binding's slot, the bitmap words of the preserved port and of a
// random start drawn now (allocate uses it), and the public map's slot
// and reply key's bucket of the random start (a preserved port is
// loaded by snat once chosen). A wrong prediction costs a wasted load.
func (e *Engine) stage(c *compiled, j int) {
	s := &e.stg
	s.drawn[j] = false
	t := &s.keys[s.miss[j]]
	class, ok := portClass(t.Proto)
	if !ok {
		return
	}
	e.n.table.PrefetchInsert(*t)
	if s.from != Inside {
		return
	}
	e.n.bindings.prefetch(bindKey{addr: t.SrcAddr, port: t.SrcPort, class: uint8(class)})
	rule := c.outboundFor(t.SrcAddr)
	if rule == nil || rule.blocks != nil || rule.det != nil || len(rule.pool) == 0 {
		return
	}
	i := int(mix32(t.SrcAddr) % uint32(len(rule.pool)))
	spaces := rule.spaces[i].Load()
	if spaces == nil {
		return
	}
	space := &spaces[class]
	r := e.rng.Uint32()
	s.draw[j], s.drawn[j] = r, true
	start := e.start(rule, r)
	prefetch.Line(&space.bits[start>>6])
	if t.SrcPort >= rule.lo && t.SrcPort <= rule.hi {
		prefetch.Line(&space.bits[t.SrcPort>>6])
	}
	addr, port := rule.pool[i], uint16(start)
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
