package nat

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// Fragments. Only the first fragment of an IPv4 datagram carries the
// transport header, so only it can be matched to a session. When it passes,
// the engine remembers (source, destination, protocol, IP ID) → session in
// a small per-worker table, and later fragments of the same datagram are
// translated (addresses, TTL, header checksum) by that entry. Fragments
// that arrive before their first fragment get the verdict Hold: the
// pipeline keeps a bounded number of them briefly and retries them when a
// first fragment is remembered (Engine.FragReleased), dropping the rest
// with DropFragNoSession. The table is per worker because the NIC's RSS
// hashes every fragment of a datagram by addresses alone, so they all
// reach the same queue.

const (
	fragSlots   = 1024 // power of two
	fragProbe   = 8
	fragTimeout = 10 // seconds a datagram's fragments may trail its first
)

type fragKey struct {
	src, dst uint32
	id       uint16
	proto    uint8
}

type fragEntry struct {
	key     fragKey
	session uint32
	gen     uint32 // the session's generation: the entry dies with it
	dir     flowtable.Dir
	live    bool
	expires flowtable.Time
}

type fragTable struct {
	slots [fragSlots]fragEntry
	next  int // expiry scan position
}

func fragKeyOf(p *packet.Parsed) fragKey {
	return fragKey{src: p.Tuple.SrcAddr, dst: p.Tuple.DstAddr, id: p.Frag.ID, proto: p.Tuple.Proto}
}

func (k fragKey) slot() int {
	return int(mix32(k.src^mix32(k.dst)^uint32(k.id)<<8^uint32(k.proto))) & (fragSlots - 1)
}

func (f *fragTable) lookup(k fragKey, now flowtable.Time) *fragEntry {
	i := k.slot()
	for n := 0; n < fragProbe; n++ {
		e := &f.slots[(i+n)&(fragSlots-1)]
		if e.live && e.key == k && int32(e.expires-now) >= 0 {
			return e
		}
	}
	return nil
}

func (f *fragTable) insert(k fragKey, id, gen uint32, dir flowtable.Dir, now flowtable.Time) bool {
	i := k.slot()
	for n := 0; n < fragProbe; n++ {
		e := &f.slots[(i+n)&(fragSlots-1)]
		if !e.live || e.key == k || int32(e.expires-now) < 0 {
			*e = fragEntry{key: k, session: id, gen: gen, dir: dir, live: true, expires: now + fragTimeout}
			return true
		}
	}
	return false
}

// expire clears a few stale entries per call.
func (f *fragTable) expire(now flowtable.Time) {
	for n := 0; n < 16; n++ {
		e := &f.slots[f.next]
		if e.live && int32(e.expires-now) < 0 {
			e.live = false
		}
		f.next = (f.next + 1) & (fragSlots - 1)
	}
}

// rememberFragment records a first fragment's datagram for its followers.
func (e *Engine) rememberFragment(frame []byte, p *packet.Parsed, id, gen uint32, dir flowtable.Dir, now flowtable.Time) {
	if e.frags.insert(fragKeyOf(p), id, gen, dir, now) {
		e.FragReleased = true
	}
}

// fragment translates a non-first fragment by its datagram's entry.
func (e *Engine) fragment(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, r *Result) {
	fe := e.frags.lookup(fragKeyOf(p), now)
	if fe == nil {
		r.Verdict = Hold
		return
	}
	var h flowtable.Hot
	if !e.n.table.Hot(fe.session, fe.gen, fe.dir, &h) || fromSide(h.Flags, fe.dir) != from {
		r.Verdict = DropFragNoSession
		return
	}
	if v := rewrite(frame, p, &h, fe.dir); v != Forward {
		r.Verdict = v
		return
	}
	e.n.table.Touch(fe.session, fe.dir, p.End-p.L3, now)
	r.Verdict, r.Out, r.Session, r.Gen, r.Dir, r.Divert = Forward, toSide(h.Flags, fe.dir), fe.session, fe.gen, fe.dir, false
}
