package nat

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// Session flag bits (flowtable.Session.Flags and Hot.Flags belong to nat).
const (
	flagOrigFromInside uint8 = 1 << iota // Orig packets arrive on an inside interface
	flagOrigToInside                     // Orig packets leave by an inside interface
	flagALG                              // divert packets to the ALG
	flagHeld                             // hairpinned, Orig held until a Reply packet has passed (held)
	flagBinding                          // source NAT through an EIM binding of Key[Orig]'s source
	flagOwnSrcPort                       // owns pool port Key[Reply].Dst (per-session SNAT)
	flagOwnDstPort                       // owns pool port Key[Orig].Dst (ALG data expectation)
)

// NAT is the state shared by all workers: compiled rules, port pools,
// endpoint-independent bindings, the flow table. Safe for concurrent use.
type NAT struct {
	table    *flowtable.Table
	rules    atomic.Pointer[compiled]
	reg      registry // rule ids and port block pools, kept across reloads
	pools    pools
	bindings bindings
	public   publicMap // public endpoint → inside endpoint, for hairpinning
	pending  pendingPorts
	workers  int
	// ignored remembers SYNs ignored on connections believed live, so a
	// SYN/ACK that answers one can take the connection up again.
	ignored ignoredSYNs
	// The event log (LogTo): the hub whose rings the engines write, the
	// wall-clock time of the flow table's clock 0 in Unix ms, and the logs
	// of the two producers that are not workers — Delete (the control
	// socket's `clear sessions`) and ExpectData (the ALG's goroutine) —
	// each behind a mutex, since a ring has one producer at a time.
	hub      *natlog.Hub
	epochMS  int64
	clearLog lockedLog
	algLog   lockedLog
	// onEnd, when set, is called for every session that ends (expiry or
	// deletion by the engine) after its resources are released. Slow path.
	onEnd atomic.Pointer[func(id, gen uint32, s flowtable.Session)]
	// onExpectUsed, when set, is told the control session (id,
	// generation, port-mapping entry) whose expectation a new data
	// connection used.
	onExpectUsed atomic.Pointer[func(parent, gen uint32, entry int16)]
}

// The flags the per-packet path reads must be among the flow table's hot
// flags (a compile-time check: the index is out of range otherwise).
var _ = [1]struct{}{}[(flagOrigFromInside|flagOrigToInside|flagALG|flagHeld)&^flowtable.HotFlags]

// New compiles the rules and returns a NAT over table for the given number
// of workers (each worker gets one Engine).
func New(r Rules, table *flowtable.Table, workers int) (*NAT, error) {
	if workers < 1 {
		workers = 1
	}
	n := &NAT{table: table, workers: workers, epochMS: time.Now().UnixMilli()}
	n.reg.pools = &n.pools
	n.bindings.pub = &n.public
	if err := n.bindings.init(table.Capacity(), rand.Uint64()); err != nil {
		return nil, err
	}
	if err := n.public.init(table.Capacity(), rand.Uint64()); err != nil {
		return nil, err
	}
	// The maps' arrays are mapped memory: unmapped when the NAT is
	// dropped (the cleanup holds the mappings, not the NAT).
	runtime.AddCleanup(n, func(fs [2]func()) { fs[0](); fs[1]() }, [2]func(){n.bindings.mem.Freer(), n.public.mem.Freer()})
	c, err := compileIn(r, &n.reg)
	if err != nil {
		return nil, err
	}
	n.install(c)
	return n, nil
}

// install makes c the rules for new sessions.
func (n *NAT) install(c *compiled) {
	n.rules.Store(c)
	n.reg.ids.installed(c)
}

// LogTo makes the NAT record its events into hub: engine w (made after
// this call) into hub.Ring(w), Delete into hub.Ring(workers) and
// ExpectData into hub.Ring(workers+1), so the hub needs workers+2
// producers (ErrProducers otherwise). epoch is the wall-clock time of the
// flow table's clock 0 (Session.Start and the `now` Process is given are
// seconds since epoch), from which deleted sessions' start times are
// told.
func (n *NAT) LogTo(hub *natlog.Hub, epoch time.Time) error {
	if hub.Producers() < n.workers+2 {
		return fmt.Errorf("%w: %d workers need %d event rings, the hub has %d", ErrProducers, n.workers, n.workers+2, hub.Producers())
	}
	n.hub, n.epochMS = hub, epoch.UnixMilli()
	n.clearLog.log.ring = hub.Ring(n.workers)
	n.algLog.log.ring = hub.Ring(n.workers + 1)
	return nil
}

// Producers is the number of event rings a NAT of workers workers
// writes (LogTo).
func Producers(workers int) int { return max(workers, 1) + 2 }

// Reload replaces the rules for new sessions. Existing sessions keep the
// translation they were created with; ports they hold stay claimed.
func (n *NAT) Reload(r Rules) error {
	install, err := n.Prepare(r)
	if err != nil {
		return err
	}
	install()
	return nil
}

// Prepare validates and compiles r without changing anything; install
// then makes r the rules for new sessions, as Reload does, and cannot
// fail. A caller that changes more than the rules (a daemon's reload)
// prepares everything first and installs last.
func (n *NAT) Prepare(r Rules) (install func(), err error) {
	c, err := compileIn(r, &n.reg)
	if err != nil {
		return nil, err
	}
	return func() { n.install(c) }, nil
}

// Table returns the flow table the NAT creates sessions in.
func (n *NAT) Table() *flowtable.Table { return n.table }

// OnSessionEnd registers f to be told of every session that ends, with
// its id, the generation it lived with and a copy of it. The ALG uses it
// to forget control-connection state. f runs on the worker that reclaimed
// the session, before the slot can be reused: Table.State, Counters and
// LastSeen of id still read the ended session.
func (n *NAT) OnSessionEnd(f func(id, gen uint32, s flowtable.Session)) { n.onEnd.Store(&f) }

// OnExpectationUsed registers f to be told, with the control session's id,
// generation and port-mapping entry, whenever a data connection uses an
// expectation (the ALG's per-mapping and per-session statistics).
func (n *NAT) OnExpectationUsed(f func(parent, gen uint32, entry int16)) { n.onExpectUsed.Store(&f) }

// PoolUse reports the ports in use per public address.
func (n *NAT) PoolUse() []PoolUse { return n.pools.use() }

// BlockUse reports the port blocks of every port-block rule running now,
// in rule order.
func (n *NAT) BlockUse() []BlockUse {
	c := n.rules.Load()
	var out []BlockUse
	for i := range c.outbound {
		if b := c.outbound[i].blocks; b != nil {
			u := b.use()
			u.Rule = i
			out = append(out, u)
		}
	}
	return out
}

// Bindings reports the number of live endpoint-independent bindings.
func (n *NAT) Bindings() int { return n.bindings.count() }

// Memory reports the bytes the endpoint-independent bindings and the
// public-endpoint map hold: both are allocated by New for the flow
// table's capacity (epMap) and never grow.
func (n *NAT) Memory() int64 { return n.bindings.bytes() + n.public.bytes() }

// Engine is one worker's view of the NAT: not safe for concurrent use.
type Engine struct {
	n        *NAT
	worker   int
	rng      *rand.Rand
	frags    fragTable
	onExpire func(id, gen uint32, s flowtable.Session)
	// lastSweep is when worker 0 last looked for expired pending ports.
	lastSweep flowtable.Time
	// log is the worker's event ring (none without LogTo); wall the time
	// of the current poll in Unix ms (SetTime), the events' Time; ingress
	// the interface the current burst arrived on (SetIngress).
	log     eventLog
	wall    int64
	ingress uint16
	// madeBinding tells insert that the creation it finishes made a new
	// endpoint-independent binding (snat), whose public endpoint insert
	// adds to the public map.
	madeBinding bool
	// spare is a random draw below sparePart (0: none) that
	// prefetchClaim made for the next allocation's start (randomStart).
	spare, sparePart uint32
}

// Engine returns the engine of worker w (0 ≤ w < workers).
func (n *NAT) Engine(w int) *Engine {
	e := &Engine{n: n, worker: w, rng: rand.New(rand.NewPCG(rand.Uint64(), uint64(w))), wall: time.Now().UnixMilli()}
	if n.hub != nil {
		e.log.ring = n.hub.Ring(w)
	}
	e.onExpire = e.sessionEnded
	return e
}

// SetTime gives the engine the wall-clock time of the poll, in Unix
// milliseconds: the time of the events it records until the next call
// (the pipeline reads the clock once per poll; see Process's now).
func (e *Engine) SetTime(unixMS int64) { e.wall = unixMS }

// SetIngress tells the engine which interface the next packets arrive on
// (the caller's index of it): a session their first packet creates
// records it (flowtable.Session.Ingress). The pipeline calls it once per
// burst, since a burst comes from one port; the established path never
// reads it.
func (e *Engine) SetIngress(port uint16) { e.ingress = port }

// Result is the engine's decision for one packet. Process sets Verdict
// always and, for Forward, Out and Divert; Session, Gen and Dir when the
// packet belongs to a session (always when Divert). The other fields keep
// whatever they held, so the caller need not clear a Result it reuses.
type Result struct {
	Verdict Verdict
	Out     Side   // the side to send it on
	Session uint32 // the session it belongs to (when Verdict is Forward)
	// Gen is the generation of Session: whoever keeps the reference past
	// this packet (the ALG) reads the session through it, so that a slot
	// reused by another session is never taken for this one.
	Gen    uint32
	Dir    flowtable.Dir // its direction in that session
	Divert bool          // hand it to the ALG (after translation)
}

// Process translates one parsed frame that arrived on side from, in
// place. now is the burst's clock reading.
func (e *Engine) Process(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, r *Result) {
	if p.Frag.Offset > 0 {
		e.fragment(frame, p, from, now, r)
		return
	}
	if p.ICMPKind == packet.ICMPError {
		e.icmpError(frame, p, from, now, r)
		return
	}
	var h flowtable.Hit
	h.ID, h.Dir, h.Gen, h.Found = e.n.table.LookupGen(p.Tuple)
	e.ProcessLooked(frame, p, from, now, h, r)
}

// NeedsLookup reports whether the frame's flow is found by a flow-table
// lookup of p.Tuple: false for non-first fragments and ICMP errors, which
// Process resolves another way. The pipeline uses it to batch lookups.
func NeedsLookup(p *packet.Parsed) bool {
	return p.Frag.Offset == 0 && p.ICMPKind != packet.ICMPError
}

// ProcessLooked is Process for a frame whose lookup the caller already did
// (the pipeline looks up a whole burst first with LookupBatch).
func (e *Engine) ProcessLooked(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, h flowtable.Hit, r *Result) {
	// A session found by the lookup may have expired and its slot been
	// reused by another worker since: forward's snapshot says so, and then
	// the packet is a miss like any other (flowtable's rule for readers).
	if !h.Found || !e.forward(frame, p, from, now, h.ID, h.Gen, h.Dir, r) {
		e.create(frame, p, from, now, r)
	}
}

// forward is the fast path: translate a packet of session (id, gen). It
// reads the session only through one snapshot (Table.Hot), copied and
// then validated, so that everything it writes into the packet belongs
// to the session the lookup found. It returns false, having touched
// neither packet nor session, when that session has ended: a miss.
func (e *Engine) forward(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, id, gen uint32, dir flowtable.Dir, r *Result) bool {
	if p.Tuple.Proto == packet.ProtoTCP && p.Frag.Offset == 0 {
		return e.forwardTCP(frame, p, from, now, id, gen, dir, r)
	}
	if p.Tuple.Proto == packet.ProtoICMP && !icmpFits(p.ICMPKind, dir) {
		// Not this session's packet though its tuple is: create decides
		// (see icmpFits).
		return false
	}
	t := e.n.table
	h, ok := t.Hot(id, gen, dir)
	switch {
	case !ok:
		return false
	case fromSide(h.Flags(), dir) != from:
		// A packet claiming to belong to the session on the wrong side.
		r.Verdict = DropUnsolicited
	case h.Flags()&flagHeld != 0 && e.held(id, dir):
		r.Verdict = DropHairpinFiltered
	case frame[p.L3+8] <= 1:
		r.Verdict = DropTTLExpired
	default:
		rewrite(frame, p, h)
		if !t.TryTouch(id, dir, p.End-p.L3, now) {
			t.Touch(id, dir, p.End-p.L3, now)
		}
		if p.Frag.More {
			e.rememberFragment(p, id, gen, dir, now)
		}
		r.Verdict, r.Out, r.Session, r.Gen, r.Dir, r.Divert = Forward, toSide(h.Flags(), dir), id, gen, dir, h.Flags()&flagALG != 0
	}
	return true
}

// ForwardCommon is the established-flow fast path: ProcessLooked for a
// frame packet.ParseCommon accepted, whose tuple's lookup found hit, that
// needs nothing but its translation. That is a packet of a live session
// (hit still names it) arriving on the side the session expects it from,
// of a session neither held (hairpin filtering) nor diverted to the ALG,
// whose TTL is above 1 and which, for TCP, carries ACK and no SYN, FIN
// or RST, belongs to an ESTABLISHED connection whose sender's tracking
// has begun, lies in the receiver's window and acknowledges within the
// acknowledgment window, and carries no options but, perhaps, the
// Timestamps option behind two NOPs (no SACK blocks, which tcpStep
// reads) — so that the tracker's step is trackSeg and leaves the state
// as it is. For such a packet it does what ProcessLooked would —
// translates it, Touches the session, moves the sender's TCP tracking
// word — and returns the side the packet
// leaves by and its translated destination address. For every other
// packet it returns false having changed nothing, and the caller hands
// the frame to ProcessLooked, which decides as it always has (a
// differential test holds the two to the same frames and sessions).
// What it needs of the packet besides the session it reads from the
// headers, where ParseCommon checked them.
func (e *Engine) ForwardCommon(frame []byte, hit *flowtable.Hit, from Side, now flowtable.Time) (out Side, dst uint32, ok bool) {
	fs, hs := [1]packet.Frame{{Buf: frame}}, [1]flowtable.Hit{*hit}
	var fw [1]Forwarded
	if e.ForwardCommonBurst(fs[:], hs[:], from, now, fw[:]) == 0 {
		return 0, 0, false
	}
	return fw[0].Out, fw[0].Dst, true
}

// Forwarded is what ForwardCommonBurst tells of a frame it translated:
// the side it leaves by and its translated destination address.
type Forwarded struct {
	Dst uint32
	Out Side
}

// ForwardCommonBurst is ForwardCommon over a run of frames, in order,
// in one loop (a Go call costs its caller every register its loop
// keeps): hits[i] is frames[i]'s lookup. It stops at the first frame
// ForwardCommon would decline, or whose lookup missed, having changed
// nothing for it, and returns how many frames it translated, fwd[i]
// holding ForwardCommon's answer for each. hits and fwd must be at least
// as long as frames.
func (e *Engine) ForwardCommonBurst(frames []packet.Frame, hits []flowtable.Hit, from Side, now flowtable.Time, fwd []Forwarded) int {
	tb := e.n.table
	hits = hits[:len(frames)]
	fwd = fwd[:len(frames)]
	for i := range frames {
		hit := &hits[i]
		frame := frames[i].Buf
		if !hit.Found {
			return i
		}
		d := hit.Dir & 1
		hdr := (*packet.CommonHeaders)(frame)
		ip := packet.CommonIPv4(hdr)
		if ip.Protocol() != packet.ProtoTCP {
			h, live := tb.Hot(hit.ID, hit.Gen, d)
			f := h.Flags()
			if !live || fromSide(f, d) != from || f&(flagHeld|flagALG) != 0 || ip.TTL() <= 1 {
				return i
			}
			addrs, ports := h.XlateWords()
			packet.TranslateCommonIPv4(hdr, addrs, packet.Delta(h.L3Delta()))
			packet.TranslateCommonUDP(hdr, ports, packet.Delta(h.L4Delta()))
			if n := int(ip.TotalLength()); !tb.TryTouch(hit.ID, d, n, now) {
				tb.Touch(hit.ID, d, n, now)
			}
			fwd[i] = Forwarded{Dst: h.DstAddr(), Out: toSide(f, d)}
			continue
		}
		th := (*packet.CommonTCPHeaders)(frame)
		tcp := packet.CommonTCP(th)
		if tcp.Flags()&(packet.FlagSYN|packet.FlagFIN|packet.FlagRST|packet.FlagACK) != packet.FlagACK {
			return i
		}
		// Hot and then the tracking words, not HotTCP, so that both
		// inline: the words are the session's once Hot validated it in
		// this poll (Table.Track).
		h, live := tb.Hot(hit.ID, hit.Gen, d)
		f := h.Flags()
		if !live || h.State() != tcpEstablished || fromSide(f, d) != from || f&(flagHeld|flagALG) != 0 || ip.TTL() <= 1 {
			return i
		}
		s := tb.Track(hit.ID, d)
		if s&trInit == 0 {
			return i
		}
		n, hl := int(ip.TotalLength()), tcp.HeaderLen()
		if !packet.CommonTCPPlainOptions(frame, hl) {
			// SACK blocks (or options in a layout of their own), which
			// tcpStep reads for the acknowledgment check.
			return i
		}
		seq := tcp.Seq()
		next, in := trackSeg(s, tb.Track(hit.ID, d^1), seq, seq+uint32(n-packet.IPv4MinLen-hl), tcp.Ack(), uint32(tcp.Window()), false)
		if !in {
			return i
		}
		addrs, ports := h.XlateWords()
		packet.TranslateCommonIPv4(hdr, addrs, packet.Delta(h.L3Delta()))
		packet.TranslateCommonTCP(th, ports, packet.Delta(h.L4Delta()))
		if !tb.TryTouch(hit.ID, d, n, now) {
			tb.Touch(hit.ID, d, n, now)
		}
		if next != s {
			tb.SetTrack(hit.ID, hit.Gen, d, next)
		}
		fwd[i] = Forwarded{Dst: h.DstAddr(), Out: toSide(f, d)}
	}
	return len(frames)
}

// forwardTCP is forward for a TCP segment (a first fragment or whole):
// the tracker (tcpStep) decides before anything changes, and the state
// and tracking words it moved are stored after the translation. It is
// forward's twin rather than a branch in it so that other protocols
// carry none of the tracker's state.
func (e *Engine) forwardTCP(frame []byte, p *packet.Parsed, from Side, now flowtable.Time, id, gen uint32, dir flowtable.Dir, r *Result) bool {
	t := e.n.table
	h, state, track, ok := t.HotTCP(id, gen, dir)
	switch {
	case !ok:
		return false
	case fromSide(h.Flags(), dir) != from:
		r.Verdict = DropUnsolicited
		return true
	case h.Flags()&flagHeld != 0 && e.held(id, dir):
		r.Verdict = DropHairpinFiltered
		return true
	case frame[p.L3+8] <= 1:
		r.Verdict = DropTTLExpired
		return true
	case p.TCPFlags&(packet.FlagSYN|packet.FlagACK|packet.FlagRST) == packet.FlagSYN && tcpOver(state):
		// A new connection on the tuple of one that is over: a miss, so
		// that it gets a session of its own (create's reclaim ends this
		// one), as conntrack replaces a TIME_WAIT or CLOSE entry with a
		// new one. Reopened in place, it would inherit what is kept by
		// session — the FTP ALG's stream and corrections of the old
		// control connection, which moved every segment of the new one
		// to sequence numbers its receiver discards.
		return false
	}
	var g tcpSeg
	readSeg(frame, p, &g, h.Flags()&flagALG != 0)
	st, class, next, v := tcpStep(state, track, dir, &g)
	const synBits = packet.FlagSYN | packet.FlagACK | packet.FlagRST
	switch {
	case v == Forward:
		if dir == flowtable.Orig && g.flags&synBits == packet.FlagSYN && st == state && next == track {
			// A SYN on a connection believed live, passed unchanged:
			// its SYN/ACK may show the connection is new (ignoredSYNs).
			e.n.ignored.note(id, g.seq+1)
		}
	case v == DropTCPOutOfWindow && dir == flowtable.Reply && g.flags&synBits == packet.FlagSYN|packet.FlagACK &&
		h.Flags()&flagALG == 0 && e.n.ignored.take(id, g.ack):
		// Both endpoints opened a new connection on the tuple of one
		// whose end fastnat missed: track it from this SYN/ACK. (An ALG's
		// control connection is left out: the ALG's stream of the old
		// connection would carry over; it recovers by RST or timeout.)
		st, next = tcpSynRecv, resyncWords(&g)
		class = timeoutClass(st)
	default:
		r.Verdict = v
		return true
	}
	rewrite(frame, p, h)
	if !t.TryTouch(id, dir, p.End-p.L3, now) {
		t.Touch(id, dir, p.End-p.L3, now)
	}
	for d := range flowtable.Dir(2) {
		if next[d] != track[d] {
			t.SetTrack(id, gen, d, next[d])
		}
	}
	if st != state {
		t.SetState(id, gen, st, e.n.rules.Load().timeouts[class])
	}
	if g.flags&packet.FlagRST != 0 && (state&tcpStateMask == tcpSynSent || state&tcpStateMask == tcpSynRecv) {
		// A RST before the handshake completed: the connection never
		// was (a SYN to a closed port, a SYN scan's reset of the
		// SYN/ACK of an open one, a connect given up). The session ends
		// now rather than lingering as CLOSED for the transitory
		// timeout, so a port scan leaves nothing behind: conntrack
		// deletes a connection whose only answer is a RST, and keeps
		// one reset after its SYN/ACK for 10 s (CLOSE). The RST itself
		// is translated and leaves, past the ALG even for a control
		// connection: the ALG would find the session gone and drop it,
		// and has nothing to rewrite in a connection that carried no
		// data (its note of the handshake goes with the session's end).
		t.End(id, gen, e.onExpire)
		r.Verdict, r.Out, r.Session, r.Gen, r.Dir, r.Divert = Forward, toSide(h.Flags(), dir), id, gen, dir, false
		return true
	}
	if p.Frag.More {
		e.rememberFragment(p, id, gen, dir, now)
	}
	r.Verdict, r.Out, r.Session, r.Gen, r.Dir, r.Divert = Forward, toSide(h.Flags(), dir), id, gen, dir, h.Flags()&flagALG != 0
	return true
}

// icmpFits reports whether an ICMP message of kind k belongs in direction
// dir of the query session its tuple names: requests in the direction
// that opened it, replies in the other. A query session is keyed by its
// identifier alone, so without this an outside host sending a request to
// the public address with a live session's identifier (nping --icmp-id)
// reached the inside host, which answered it; and a type fastnat does
// not translate, whose tuple reads identifier 0 (router solicitation and
// advertisement), passed on a session of identifier 0. Conntrack keys
// ICMP by type as well, and matches neither. A packet that does not fit
// is a miss: the NAT's own address answers a ping, and the rest is
// dropped as when no session exists.
func icmpFits(k packet.ICMPKind, dir flowtable.Dir) bool {
	if dir == flowtable.Orig {
		return k == packet.ICMPQuery
	}
	return k == packet.ICMPQueryReply
}

// held reports whether a packet in direction dir of a hairpinned session
// (flagHeld) is one the target's filtering refuses: the session's first
// packet reached a mapping whose owner had not sent to the sender's
// public endpoint (create), so the Orig direction waits until the target
// has — its first Reply packet, which the sender's own filtering admits
// (the sender did send to it). Until then the Reply direction's packet
// counter is zero. It is off the common path: only hairpinned sessions
// carry the flag.
func (e *Engine) held(id uint32, dir flowtable.Dir) bool {
	if dir != flowtable.Orig {
		return false
	}
	pkts, _ := e.n.table.Counters(id)
	return pkts[flowtable.Reply] == 0
}

// fromSide is the side packets of direction dir of a session with these
// flags arrive on: Orig's from the inside when flagOrigFromInside is set,
// Reply's when flagOrigToInside is (bits 0 and 1, Inside being 0).
func fromSide(flags uint8, dir flowtable.Dir) Side {
	return Side(flags>>(dir&1)&1 ^ 1)
}

// toSide is the side they leave by: the other bit.
func toSide(flags uint8, dir flowtable.Dir) Side {
	return Side(flags>>(dir&1^1)&1 ^ 1)
}

// The bit arithmetic of fromSide and toSide.
var _ = [1]struct{}{}[flagOrigFromInside-1|flagOrigToInside-2|uint8(Inside)]

// rewrite applies a session's precomputed translation of one direction,
// from its snapshot h, to the packet: the translated tuple and the
// checksum deltas (packet.Parsed.Translate, which also decrements the
// TTL). Nothing is recomputed. The caller has checked that the TTL is
// above 1.
func rewrite(frame []byte, p *packet.Parsed, h flowtable.Hot) {
	addrs, ports := h.XlateWords()
	p.Translate(frame, addrs, ports, packet.Delta(h.L3Delta()), packet.Delta(h.L4Delta()))
}

// deltas precomputes the checksum changes of translating packets of
// direction dir of a session with keys k: from k[dir] to k[1-dir].Reverse().
// The IPv4 header's leaves out the TTL, which Translate adds: so each
// direction's deltas are the negation of the other's, which is how the
// flow table keeps them (one pair per session, see flowtable.Session).
func deltas(k *[2]packet.Tuple, dir flowtable.Dir) (l3, l4 packet.Delta) {
	from, to := k[dir], k[1-dir].Reverse()
	l3 = packet.Delta(0).Add32(from.SrcAddr, to.SrcAddr).Add32(from.DstAddr, to.DstAddr)
	switch from.Proto {
	case packet.ProtoICMP:
		// The identifier sits once in the ICMP header, which has no
		// pseudo-header.
		l4 = packet.Delta(0).Add16(from.SrcPort, to.SrcPort)
	default:
		l4 = packet.Delta(0).Add32(from.SrcAddr, to.SrcAddr).Add32(from.DstAddr, to.DstAddr).
			Add16(from.SrcPort, to.SrcPort).Add16(from.DstPort, to.DstPort)
	}
	return l3, l4
}

// Enter and Leave bracket each of the worker's polls: the sessions the
// engine validates in between keep their slots until Leave, so that its
// stores into them (counters, TCP tracking) never land on a slot's next
// session (the flow table's grace periods). Leave before sleeping.
func (e *Engine) Enter() { e.n.table.Enter(e.worker) }

// Leave ends what Enter began, and publishes the events the engine
// staged since (BatchEvents).
func (e *Engine) Leave() {
	e.n.table.Leave(e.worker)
	if e.log.staged && e.log.ring != nil {
		e.log.ring.Publish()
	}
}

// BatchEvents makes the engine stage its events and publish them at
// Leave, once a poll, instead of one by one: the event log's reader then
// pulls the ring's index line from the worker's core once a poll, not
// once an event. For a caller that brackets all its calls with Enter and
// Leave, as pipeline.Worker's Poll does.
func (e *Engine) BatchEvents() { e.log.staged = true }

// Slots is the number of session slots this engine's Age walks: its share
// of the table. A caller that ages by time sizes its budgets from it.
func (e *Engine) Slots() int { return e.n.table.Capacity() / e.n.workers }

// Age reclaims up to budget expired sessions of this worker's slice of the
// table, releasing their ports.
func (e *Engine) Age(now flowtable.Time, budget int) int {
	n := e.n.table.Expire(now, e.worker, e.n.workers, budget, e.onExpire)
	if e.worker == 0 && now != e.lastSweep {
		// Once a second is plenty for unused expectations' ports.
		e.lastSweep = now
		e.n.pending.expire(now, e.n, &e.log, e.wall)
	}
	e.frags.expire(now)
	return n
}

// sessionEnded releases what a session held. It runs before its slot is
// reused.
func (e *Engine) sessionEnded(id, gen uint32, s flowtable.Session) {
	e.n.release(id, gen, &s, &e.log, e.wall)
}

// release records the end of session (id, gen), a copy of which is s,
// and gives back what it held: its ports and binding, and a control
// session's expectations. It runs once per session, on whichever
// goroutine unlinked it from the table (expiry or Delete), before the
// slot can be reused, so the table's counters of id are still the
// session's; log is that goroutine's, now its time in Unix ms.
func (n *NAT) release(id, gen uint32, s *flowtable.Session, log *eventLog, now int64) {
	if log.on() {
		pkts, bytes := n.table.Counters(id)
		in, out, inbound := Tuples(s)
		ref := n.Rule(s.Rule)
		log.emit(&natlog.Event{Type: natlog.SessionDelete, Time: now, Start: n.epochMS + int64(s.Start)*1000,
			Inside: in, Outside: out, Packets: pkts, Bytes: bytes,
			RuleKind: ref.Kind, Via: ref.Via, Rule: ref.Index, App: s.App, Inbound: inbound})
	}
	n.releasePorts(s, log, now)
	if s.App == uint8(portmap.AppFTP) {
		n.table.RemoveExpectations(id, gen)
		n.pending.releaseParent(id, gen, n, log, now)
	}
	if f := n.onEnd.Load(); f != nil {
		(*f)(id, gen, *s)
	}
}

// Delete ends session (id, gen) now, as expiry would: it unlinks the
// session from the flow table, records its session-delete event and gives
// back what it held — public ports, its binding, its port block,
// expectations — exactly once: an expiry on a worker and Delete race for
// the session's generation under the table's shard locks, and only the
// one that unlinks it releases. It reports false when the session had
// ended already (its slot may hold another). Safe from any goroutine;
// Deletes run one at a time (their events share one ring).
func (n *NAT) Delete(id, gen uint32) bool {
	n.clearLog.mu.Lock()
	defer n.clearLog.mu.Unlock()
	now := time.Now().UnixMilli()
	// Expire, Delete and End of one session race for it under its
	// shards' locks: exactly one of them removes it and calls its
	// callback.
	return n.table.End(id, gen, func(id, gen uint32, s flowtable.Session) {
		n.release(id, gen, &s, &n.clearLog.log, now)
	})
}

// Tuples returns session s's flow on either side of the NAT, as events
// name it (natlog.SessionTuples): inside from the inside host, outside
// from the public endpoint that stands for it; inbound reports a session
// opened from outside.
func Tuples(s *flowtable.Session) (inside, outside packet.Tuple, inbound bool) {
	fromInside := s.Flags&flagOrigFromInside != 0
	inside, outside = natlog.SessionTuples(s.Key[flowtable.Orig], s.Key[flowtable.Reply], fromInside)
	return inside, outside, !fromInside
}

// releasePorts returns the public ports a session holds to their pools
// (to its host's port blocks, through releasePort), ending its binding
// when it was the binding's last session.
func (n *NAT) releasePorts(s *flowtable.Session, log *eventLog, now int64) {
	class, ok := portClass(s.Key[flowtable.Orig].Proto)
	if ok {
		switch {
		case s.Flags&flagBinding != 0:
			o := s.Key[flowtable.Orig]
			n.bindings.release(bindKey{addr: o.SrcAddr, port: o.SrcPort, class: uint8(class)}, func(k bindKey, b binding) {
				n.releasePort(b.pubAddr, b.pubPort, class, k.addr, log, now)
				if log.on() {
					ref := n.Rule(b.rule)
					log.emit(&natlog.Event{Type: natlog.BindingDelete, Time: now, Start: b.since, RuleKind: ref.Kind, Rule: ref.Index,
						Inside:  packet.Tuple{SrcAddr: k.addr, SrcPort: k.port, Proto: protoOfClass(class)},
						Outside: packet.Tuple{SrcAddr: b.pubAddr, SrcPort: b.pubPort, Proto: protoOfClass(class)}})
				}
			})
		case s.Flags&flagOwnSrcPort != 0:
			pub, in := ownMapping(s, class)
			n.public.remove(pub, in)
			n.releasePort(pub.addr, pub.port, class, in.addr, log, now)
		}
		if s.Flags&flagOwnDstPort != 0 {
			// An ALG data connection to the port an inside host announced:
			// Key[Reply]'s source is that host.
			k := s.Key[flowtable.Orig]
			n.releasePort(k.DstAddr, k.DstPort, class, s.Key[flowtable.Reply].SrcAddr, log, now)
		}
	}
}

// releasePort gives back public port of class on addr, which inside host
// held: to the host's port block if a port-block pool gave it, else to
// the address's port space.
func (n *NAT) releasePort(addr uint32, port uint16, class int, host uint32, log *eventLog, now int64) {
	if !n.reg.blocks.release(class, host, addr, port, log, now) {
		n.pools.space(addr, class).release(port)
	}
}

// pendingPorts remembers public ports claimed for expectations that have
// not been used yet, so that an expectation that expires unused gives its
// port back.
type pendingPorts struct {
	mu sync.Mutex
	m  map[pendingKey]pendingVal
}

type pendingKey struct {
	addr  uint32
	port  uint16
	class uint8
}

// pendingVal names the control session the port was claimed for by id
// and generation, so that the end of the slot's next session does not
// release it, and the inside host it stands for (whose port block may
// hold it).
type pendingVal struct {
	parent, gen uint32
	host        uint32
	expires     flowtable.Time
}

func (pp *pendingPorts) add(k pendingKey, parent, gen, host uint32, exp flowtable.Time) {
	pp.mu.Lock()
	if pp.m == nil {
		pp.m = make(map[pendingKey]pendingVal)
	}
	pp.m[k] = pendingVal{parent: parent, gen: gen, host: host, expires: exp}
	pp.mu.Unlock()
}

// take removes k, reporting whether it was pending (the port passes to the
// session the expectation created) and for which inside host.
func (pp *pendingPorts) take(k pendingKey) (host uint32, ok bool) {
	pp.mu.Lock()
	v, ok := pp.m[k]
	delete(pp.m, k)
	pp.mu.Unlock()
	return v.host, ok
}

func (pp *pendingPorts) expire(now flowtable.Time, n *NAT, log *eventLog, wall int64) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for k, v := range pp.m {
		if int32(now-v.expires) > 0 {
			delete(pp.m, k)
			n.releasePort(k.addr, k.port, int(k.class), v.host, log, wall)
		}
	}
}

func (pp *pendingPorts) releaseParent(parent, gen uint32, n *NAT, log *eventLog, wall int64) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	for k, v := range pp.m {
		if v.parent == parent && v.gen == gen {
			delete(pp.m, k)
			n.releasePort(k.addr, k.port, int(k.class), v.host, log, wall)
		}
	}
}

func (n *NAT) String() string {
	c := n.rules.Load()
	return fmt.Sprintf("nat: %d outbound, %d server rules, %d public addresses", len(c.outbound), len(c.servers), len(c.public))
}
