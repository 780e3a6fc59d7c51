package nat

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
)

// Fragments. Only the first fragment of an IPv4 datagram carries the
// transport header, so only it can be matched to a session. When it passes,
// the engine remembers the datagram — (source, destination, protocol,
// identification), RFC 791's reassembly key — with its session, and later
// fragments of the same datagram are translated (addresses, TTL, header
// checksum) by that entry. The NAT never reassembles: fragments pass one
// by one, as they came — to the FTP ALG, for a control session, which
// reassembles the segment to inspect it (alg/reasm.go).
//
// An entry lives until its datagram is complete, and no longer: each
// fragment that passes adds its byte range to the entry, and once the last
// fragment (More Fragments clear) has fixed the total and the ranges cover
// it without a gap, the entry is freed at once (FragStats.Completed). So a
// steady stream of fragmented datagrams needs one entry per datagram in
// flight, whatever the rate. A fragment that overlaps or repeats what
// already passed, or ranges too scattered to follow (more than
// fragExtents separate pieces), stop the tracking: the entry then stays
// until FragTimeout or eviction, as it would have without it.
//
// Memory is bounded per worker: FragDatagrams entries (about 80 bytes
// each), allocated with the Engine. When all are in use the oldest entry
// is evicted to make room (FragStats.Evicted), as the kernel evicts its
// oldest reassembly queue above ipfrag_high_thresh; an entry also expires
// FragTimeout seconds after it was created.
//
// Fragments that arrive before their first fragment get the verdict Hold:
// the engine records the datagram as pending, and the pipeline keeps the
// frame (within its own bound, oldest evicted first) until Released names
// the datagram, then runs it through Process again. The table is per
// worker because the NIC's RSS hashes every fragment of a datagram by
// addresses alone, so they all reach the same queue.

const (
	// FragDatagrams is how many fragmented datagrams one worker tracks
	// at once (in flight, or pending with early fragments held).
	FragDatagrams = 2048
	// FragTimeout is how many seconds a datagram's fragments may trail
	// its first (and early ones wait for it): RFC 791 suggests a 15 s
	// initial reassembly timer, Linux uses 30 s; a datagram that takes
	// longer is lost to its receiver anyway under load.
	FragTimeout = 10

	fragBuckets = 2 * FragDatagrams // power of two
	fragExtents = 4                 // separate byte ranges an entry follows
	maxReleased = 64                // released datagrams recorded between calls to Released
)

// FragKey identifies a fragmented datagram: RFC 791 reassembles by
// source, destination, protocol and identification.
type FragKey struct {
	Src, Dst uint32
	ID       uint16
	Proto    uint8
}

// FragKeyOf returns the datagram a parsed fragment belongs to.
func FragKeyOf(p *packet.Parsed) FragKey {
	return FragKey{Src: p.Tuple.SrcAddr, Dst: p.Tuple.DstAddr, ID: p.Frag.ID, Proto: p.Tuple.Proto}
}

func (k FragKey) bucket() int {
	return int(mix32(k.Src^mix32(k.Dst)^uint32(k.ID)<<8^uint32(k.Proto))) & (fragBuckets - 1)
}

// FragStats counts what a worker's fragment tracking did, in datagrams.
type FragStats struct {
	// Datagrams counts datagrams tracked: a first fragment passed, or an
	// early fragment was held for one.
	Datagrams uint64
	// Completed counts datagrams whose every fragment passed; their
	// entries were freed at once.
	Completed uint64
	// TimedOut counts entries freed incomplete FragTimeout seconds after
	// they were created (a fragment lost, or a first fragment that never
	// came).
	TimedOut uint64
	// Evicted counts entries evicted, oldest first, to make room for a
	// new datagram while all FragDatagrams were in use.
	Evicted uint64
	// Untracked counts datagrams whose completion could not be followed:
	// overlapping or repeated fragments, or too many separate pieces out
	// of order. Their entries stay until they time out or are evicted.
	Untracked uint64
}

// extent is a range of data bytes [lo, hi) that has passed.
type extent struct{ lo, hi uint32 }

// fragEntry is one datagram. Indices (older, newer, chain, and the
// table's heads) are entry index + 1, so 0 means none.
type fragEntry struct {
	key       FragKey
	session   uint32
	gen       uint32 // the session's generation: the entry dies with it
	dir       flowtable.Dir
	known     bool   // its first fragment passed: session and dir are set (or echo)
	echo      bool   // an echo request to a public address: fragments are answered, not forwarded
	from      Side   // the side an echo request's fragments come from
	untracked bool   // completion is no longer followed
	n         uint8  // extents in use, in order
	held      uint16 // early fragments held for it (a hint for Released)
	expires   flowtable.Time
	total     uint32 // data bytes of the datagram; 0 until its last fragment passed
	ext       [fragExtents]extent
	older     int32 // age list, by creation
	newer     int32
	chain     int32 // bucket chain, or free list
}

// fragTable is one worker's datagrams: a fixed array of entries, a hash
// index with chaining, a free list and an age list for expiry and
// eviction. Owned by one Engine; no locking. Its zero value is empty.
type fragTable struct {
	ents           [FragDatagrams]fragEntry
	buckets        [fragBuckets]int32
	used           int32 // entries [0, used) have been handed out at least once
	free           int32
	oldest, newest int32
	stats          FragStats
	released       [maxReleased]FragKey
	nreleased      int
	releaseAll     bool
}

func (f *fragTable) ent(i int32) *fragEntry { return &f.ents[i-1] }

// find returns the live entry of k (0: none), freeing it if it expired.
func (f *fragTable) find(k FragKey, now flowtable.Time) int32 {
	for i := f.buckets[k.bucket()]; i != 0; i = f.ent(i).chain {
		e := f.ent(i)
		if e.key != k {
			continue
		}
		if int32(e.expires-now) < 0 {
			f.stats.TimedOut++
			f.remove(i)
			return 0
		}
		return i
	}
	return 0
}

// add creates an entry for k, evicting the oldest if every entry is in
// use.
func (f *fragTable) add(k FragKey, now flowtable.Time) int32 {
	if f.free == 0 && f.used == FragDatagrams {
		f.stats.Evicted++
		f.remove(f.oldest)
	}
	var i int32
	if f.free != 0 {
		i = f.free
		f.free = f.ent(i).chain
	} else {
		f.used++
		i = f.used
	}
	b := &f.buckets[k.bucket()]
	*f.ent(i) = fragEntry{key: k, expires: now + FragTimeout, chain: *b, older: f.newest}
	*b = i
	if f.newest != 0 {
		f.ent(f.newest).newer = i
	} else {
		f.oldest = i
	}
	f.newest = i
	f.stats.Datagrams++
	return i
}

// remove unlinks entry i and puts it on the free list.
func (f *fragTable) remove(i int32) {
	e := f.ent(i)
	for p := &f.buckets[e.key.bucket()]; *p != 0; p = &f.ent(*p).chain {
		if *p == i {
			*p = e.chain
			break
		}
	}
	if e.older != 0 {
		f.ent(e.older).newer = e.newer
	} else {
		f.oldest = e.newer
	}
	if e.newer != 0 {
		f.ent(e.newer).older = e.older
	} else {
		f.newest = e.older
	}
	e.chain = f.free
	f.free = i
}

// expire frees a few entries past their timeout, oldest first.
func (f *fragTable) expire(now flowtable.Time) {
	for n := 0; n < 16 && f.oldest != 0 && int32(f.ent(f.oldest).expires-now) < 0; n++ {
		f.stats.TimedOut++
		f.remove(f.oldest)
	}
}

// release records that datagram k, which has early fragments held, can be
// translated now.
func (f *fragTable) release(k FragKey) {
	if f.nreleased == len(f.released) {
		f.releaseAll = true
		return
	}
	f.released[f.nreleased] = k
	f.nreleased++
}

// received records that data bytes [lo, hi) of the datagram passed, last
// when the fragment had More Fragments clear, and reports whether the
// datagram is now complete. An overlap, a second end, data past the end or
// a fifth separate piece stop the tracking (untracked, reported once
// through the returned stop).
func (e *fragEntry) received(lo, hi uint32, last bool) (complete, stop bool) {
	if e.untracked {
		return false, false
	}
	bad := false
	if last {
		bad = e.total != 0 || e.n > 0 && e.ext[e.n-1].hi > hi
		e.total = hi
	}
	if e.total != 0 && hi > e.total {
		bad = true
	}
	if !bad && lo < hi {
		bad = !e.insert(lo, hi)
	}
	if bad {
		e.untracked = true
		return false, true
	}
	return e.total != 0 && e.n == 1 && e.ext[0] == extent{0, e.total}, false
}

// insert adds [lo, hi) to the ordered extents, merging touching ones; it
// reports false on an overlap or when a new piece finds no room.
func (e *fragEntry) insert(lo, hi uint32) bool {
	n := int(e.n)
	j := 0
	for j < n && e.ext[j].hi < lo {
		j++
	}
	switch {
	case j < n && e.ext[j].lo < hi && e.ext[j].hi > lo:
		return false // overlap
	case j < n && e.ext[j].hi == lo:
		e.ext[j].hi = hi
		if j+1 < n {
			if e.ext[j+1].lo < hi {
				return false
			}
			if e.ext[j+1].lo == hi {
				e.ext[j].hi = e.ext[j+1].hi
				copy(e.ext[j+1:n], e.ext[j+2:n])
				e.n--
			}
		}
	case j < n && e.ext[j].lo == hi:
		e.ext[j].lo = lo
	default:
		if n == fragExtents {
			return false
		}
		copy(e.ext[j+1:n+1], e.ext[j:n])
		e.ext[j] = extent{lo, hi}
		e.n++
	}
	return true
}

// rememberFragment records a first fragment that passed for session id
// (generation gen) in direction dir, so that its datagram's other
// fragments follow it.
func (e *Engine) rememberFragment(p *packet.Parsed, id, gen uint32, dir flowtable.Dir, now flowtable.Time) {
	fe := e.rememberFirst(p, now)
	fe.session, fe.gen, fe.dir = id, gen, dir
}

// rememberEcho records the first fragment of an echo request to a public
// address, which arrived on side from and was answered (echoReply): the
// datagram's other fragments are answered the same way, so the sender
// reassembles the whole reply, as from a host that reassembled the
// request (RFC 792; the kernel's NAT answers from its own stack).
func (e *Engine) rememberEcho(p *packet.Parsed, from Side, now flowtable.Time) {
	fe := e.rememberFirst(p, now)
	fe.echo, fe.from = true, from
}

// rememberFirst records that the first fragment of p's datagram passed
// and returns the datagram's entry, for the caller to say what its other
// fragments follow.
func (e *Engine) rememberFirst(p *packet.Parsed, now flowtable.Time) *fragEntry {
	f := &e.frags
	k := FragKeyOf(p)
	i := f.find(k, now)
	if i != 0 && f.ent(i).known {
		// A second first fragment: the identification was reused (or
		// the fragment repeated). The new datagram replaces the old.
		f.remove(i)
		i = 0
	}
	if i == 0 {
		i = f.add(k, now)
	}
	fe := f.ent(i)
	fe.known = true
	if fe.held > 0 {
		f.release(k)
	}
	if _, stop := fe.received(0, uint32(p.End-p.L4), false); stop {
		f.stats.Untracked++
	}
	return fe
}

// fragment translates a non-first fragment by its datagram's entry, or
// holds it when the datagram's first fragment has not passed yet.
func (e *Engine) fragment(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, r *Result) {
	f := &e.frags
	k := FragKeyOf(p)
	i := f.find(k, now)
	if i == 0 {
		i = f.add(k, now)
	}
	fe := f.ent(i)
	if !fe.known {
		if fe.held < ^uint16(0) {
			fe.held++
		}
		r.Verdict = Hold
		return
	}
	if fe.echo {
		// Part of an echo request to a public address: answered, as
		// its first fragment was.
		if fe.from != from {
			r.Verdict = DropFragNoSession
			return
		}
		reflectIPv4(packet.IPv4(frame[p.L3:p.End]))
		r.Verdict, r.Out, r.Divert = Forward, from, false
	} else {
		h, ok := e.n.table.Hot(fe.session, fe.gen, fe.dir)
		if !ok || fromSide(h.Flags(), fe.dir) != from {
			r.Verdict = DropFragNoSession
			return
		}
		if frame[p.L3+8] <= 1 {
			r.Verdict = DropTTLExpired
			return
		}
		rewrite(frame, p, h)
		e.n.table.Touch(fe.session, fe.dir, p.End-p.L3, now)
		// A fragment of a control session goes to the ALG like its first
		// fragment, which reassembles the segment to inspect it.
		r.Verdict, r.Out, r.Session, r.Gen, r.Dir, r.Divert = Forward, toSide(h.Flags(), fe.dir), fe.session, fe.gen, fe.dir, h.Flags()&flagALG != 0
	}
	off := uint32(p.Frag.Offset)
	complete, stop := fe.received(off, off+uint32(p.End-p.L4), !p.Frag.More)
	switch {
	case complete:
		f.stats.Completed++
		f.remove(i)
	case stop:
		f.stats.Untracked++
	}
}

// Released returns the datagrams whose first fragment passed since the
// last call while early fragments of theirs were held (verdict Hold): run
// those fragments through Process again. all reports that more datagrams
// were released than recorded: retry every held fragment. The slice is
// the engine's own, valid until the next call into the engine.
func (e *Engine) Released() (keys []FragKey, all bool) {
	f := &e.frags
	keys, all = f.released[:f.nreleased], f.releaseAll
	f.nreleased, f.releaseAll = 0, false
	return keys, all
}

// FragStats returns the worker's fragment-tracking counters (read them on
// the worker's goroutine).
func (e *Engine) FragStats() FragStats { return e.frags.stats }
