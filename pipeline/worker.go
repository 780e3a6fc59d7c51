package pipeline

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/stages"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// PollMode is how a worker waits for frames.
type PollMode uint8

// Poll modes.
const (
	// PollBusy spins on the rx rings forever: lowest latency, one core
	// fully used per worker.
	PollBusy PollMode = iota
	// PollAdaptive spins while traffic flows and, after a short idle spell,
	// sleeps on the ports' Waker until frames arrive.
	PollAdaptive
	// PollInterrupt sleeps on the Waker whenever a poll finds nothing.
	PollInterrupt
)

const (
	maxBatch = 256
	// agePeriod is how long a worker takes to walk its slice of the flow
	// table once, looking for expired sessions: the longest a session
	// outlives its timeout. The walk is spread over the polls by elapsed
	// time, at most ageMax slots a busy poll (a poll after a long stall
	// catches up over the next ones); a poll that received nothing walks
	// all it owes, so a worker that sleeps idleWait between polls keeps
	// the period.
	agePeriod = time.Second
	ageMax    = 4096
	// publishEvery is how often a busy worker publishes its counters; an
	// idle one publishes on its first empty poll.
	publishEvery  = time.Millisecond
	adaptiveSpins = 2048 // empty polls before an adaptive worker sleeps
	// idleWait is the longest sleep on the Waker, which wakes the worker
	// as soon as frames arrive: it only paces what an idle worker does by
	// the clock (aging, the ALG's timers, the watchdog's progress). Each
	// wakeup of a sleeping worker costs the process a few thread switches,
	// so at 10 ms an idle worker cost 2 % of a core, at 50 ms about 0.5 %
	// (TestIdleCPU in e2e).
	idleWait = 50 * time.Millisecond
	algWait  = 200 * time.Microsecond
	// DefaultFrames is the frame space a worker assumes when
	// Config.Frames is 0: the daemon's default of 8192 frames per queue
	// on two interfaces.
	DefaultFrames = 16384
	minWait       = 16 // frames a worker may always hold or queue, whatever its frame space
)

// PortSpec is one port of a worker and the side of the NAT it faces.
type PortSpec struct {
	Port Port
	Side nat.Side
}

// Config is a worker's setup.
type Config struct {
	ID    int
	Ports []PortSpec // at least one inside and one outside; the first of each side carries its traffic out
	Waker Waker      // required for PollAdaptive and PollInterrupt
	Poll  PollMode
	Batch int // frames per rx burst (default 64)
	NAT   *nat.Engine
	Table *flowtable.Table
	ALG   *ALGLink // nil: no ALG; ALG sessions are forwarded uninspected
	// Clock returns the coarse time for a burst; nil uses whole seconds
	// since the worker started.
	Clock func() flowtable.Time
	// DropTap, when set, sees every frame the worker drops, just before
	// the frame goes back to its port (or, for a drop answered with an
	// ICMP error, before the frame becomes the error): parse failures,
	// NAT drop verdicts and the pipeline's own drops (not frames still
	// held at Stop). reason is the drop's counter name
	// ("parse_bad_ip_checksum", "nat_unsolicited", "tx_full", ...; see
	// DropName). It runs on the worker's goroutine with a frame the
	// worker still owns, so it must copy what it keeps and must not
	// block. nil: no tap, one branch per drop.
	DropTap func(frame []byte, reason string)
	// Frames is the size of the frame space the worker's ports share
	// (AF_XDP: frames per queue × interfaces; a MemPool: its frames); 0
	// means DefaultFrames. An eighth of it may hold early fragments and
	// another eighth frames waiting for their next hop, so that waiting
	// frames never take those the worker needs to receive.
	Frames int
	// Router is the router behaviour (ICMP error rate, MSS clamping)
	// shared by all workers; nil: DefaultRouterConfig.
	Router *Policy
	// OnBadChecksum, when set, is called on the worker's goroutine the
	// first time a packet that would create a session arrives on a port
	// with a wrong TCP or UDP checksum (nat's bad_l4_checksum): the sign
	// of a peer transmitting with checksum offload, which the daemon
	// logs with the fix. Once per port and worker.
	OnBadChecksum func(port Port)
}

// Worker is a per-core poll loop: it owns one queue of every interface,
// and runs every frame it receives to completion (parse, look up or
// create the session, translate, rewrite L2, transmit) in bursts.
type Worker struct {
	cfg   Config
	ports []Port
	macs  [][6]byte // each port's own MAC, read once
	sides []nat.Side
	out   [2]int // port index per side
	// egress is, per side, what the fast path needs of the port frames
	// leave by on that side (out): indexed by a side, it needs no bounds
	// check.
	egress [2]egressPort
	engine *nat.Engine
	table  *flowtable.Table
	clock  func() flowtable.Time
	nanos  func() int64 // monotonic nanoseconds, for the ICMP rate limit
	// startMS is the wall-clock time of nanos' 0, in Unix ms: a poll's
	// wall-clock time, which the NAT's events carry, is read from the
	// monotonic clock.
	startMS int64
	stop    atomic.Bool
	c       counts
	pubbed  counts // what pub holds
	pub     Counters
	// time-driven work: nanos() at the last publication and aging, the
	// clock at the last aging, and the aging budget earned not yet spent
	lastPub, lastAge int64
	pubEvery         int64 // publishEvery in ns (tests set 0: every poll)
	ageNow           flowtable.Time
	ageCredit        float64
	dirty            bool // counts changed since the last publication
	algOut           []ALGItem
	// per poll
	mtu []int         // each port's MTU
	rc  *RouterConfig // the Policy's current one
	// per-burst scratch, reused
	rx       []Frame
	parsed   []packet.Parsed
	results  []nat.Result
	keys     []packet.Tuple
	hits     []flowtable.Hit
	common   []bool  // per frame of the burst: of the common shape (packet.ParseCommonBurst)
	kind     []uint8 // per frame of the burst not of the common shape: what Parse found (parseRest)
	fwd      []nat.Forwarded
	tx       [][]Frame
	drops    []Frame
	fragBuf  []Frame // frames allocated for fragments
	frags    []Frame // the fragments of one packet, first included
	released []nat.FragKey
	algIn    []ALGItem
	// state kept across polls
	held    holdRing
	nq      neighWait
	waitMax int // frames all neighbour queues may hold together
	neigh   [neighborSlots]neighborEntry
	lim     icmpLimiter
	ipID    uint16 // Identification of the ICMP errors the worker sends
	badSum  []bool // per port: OnBadChecksum called
	busy    busyMeter
	// general sends every frame down the general path, as before the
	// established-flow fast path: the oracle the tests hold it to.
	general bool
}

// egressPort is a port frames leave by, as the fast path sees it.
type egressPort struct {
	port     int      // its index
	maxFrame int      // its MTU plus the Ethernet header (refresh)
	tx       *[]Frame // its transmit queue, &Worker.tx[port]
}

// NewWorker builds a worker; it panics on a broken Config (a programming
// error, not an operator's).
func NewWorker(cfg Config) *Worker {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Batch > maxBatch {
		cfg.Batch = maxBatch
	}
	w := &Worker{cfg: cfg, engine: cfg.NAT, table: cfg.Table, out: [2]int{-1, -1}, pubEvery: int64(publishEvery)}
	// Every engine call is inside Poll's Enter and Leave: the engine's
	// events are published once a poll.
	if cfg.NAT != nil {
		cfg.NAT.BatchEvents()
	}
	for i, ps := range cfg.Ports {
		w.ports = append(w.ports, ps.Port)
		w.macs = append(w.macs, ps.Port.MAC())
		w.sides = append(w.sides, ps.Side)
		if w.out[ps.Side] < 0 {
			w.out[ps.Side] = i
		}
	}
	if w.out[nat.Inside] < 0 || w.out[nat.Outside] < 0 {
		panic("pipeline: a worker needs an inside and an outside port")
	}
	if cfg.Poll != PollBusy && cfg.Waker == nil {
		panic("pipeline: adaptive and interrupt polling need a Waker")
	}
	start := time.Now()
	w.clock = cfg.Clock // nil: whole seconds of nanos
	w.nanos = func() int64 { return int64(time.Since(start)) + 1 }
	w.startMS = start.UnixMilli()
	if cfg.Frames <= 0 {
		cfg.Frames = DefaultFrames
		w.cfg.Frames = cfg.Frames
	}
	// An eighth of the frame space each for early fragments (a power of
	// two, for the ring) and for frames waiting for a neighbour.
	holdMax := minWait
	for holdMax*2 <= cfg.Frames/8 {
		holdMax *= 2
	}
	w.waitMax = max(minWait, cfg.Frames/8)
	b := cfg.Batch
	w.rx = make([]Frame, b)
	w.parsed = make([]packet.Parsed, b)
	w.results = make([]nat.Result, b)
	w.keys = make([]packet.Tuple, b)
	w.hits = make([]flowtable.Hit, b)
	w.kind = make([]uint8, b)
	w.common = make([]bool, b)
	w.fwd = make([]nat.Forwarded, b)
	w.tx = make([][]Frame, len(w.ports))
	for i := range w.tx {
		w.tx[i] = make([]Frame, 0, 4*b)
	}
	for s, op := range w.out {
		w.egress[s] = egressPort{port: op, tx: &w.tx[op]}
	}
	w.drops = make([]Frame, 0, 4*b)
	w.fragBuf = make([]Frame, maxFragments)
	w.frags = make([]Frame, 0, maxFragments)
	w.released = make([]nat.FragKey, 0, 64)
	w.held.slots = make([]heldFrame, holdMax)
	w.nq.waits = make([]waitFrame, w.waitMax)
	w.algOut = make([]ALGItem, 0, b)
	w.algIn = make([]ALGItem, b)
	w.mtu = make([]int, len(w.ports))
	w.badSum = make([]bool, len(w.ports))
	w.refresh()
	return w
}

// refresh reads what may change between polls: each port's MTU and the
// router configuration.
func (w *Worker) refresh() {
	for i, p := range w.ports {
		w.mtu[i] = p.MTU()
	}
	for s := range w.egress {
		e := &w.egress[s]
		e.maxFrame = w.mtu[e.port] + packet.EthernetLen
	}
	w.rc = &DefaultRouterConfig
	if w.cfg.Router != nil {
		if c := w.cfg.Router.Get(); c != nil {
			w.rc = c
		}
	}
}

// Counters returns the worker's published counters.
func (w *Worker) Counters() *Counters { return &w.pub }

// Stop asks Run to return after the current poll.
func (w *Worker) Stop() { w.stop.Store(true) }

// Run is the worker's poll loop; it returns after Stop. Call it on a
// goroutine of its own (pinned to a core by the caller if wanted).
func (w *Worker) Run() {
	idle := 0
	w.busy.start()
	for !w.stop.Load() {
		n := w.Poll()
		w.busy.mark(n > 0)
		if n > 0 {
			idle = 0
			continue
		}
		idle++
		switch w.cfg.Poll {
		case PollBusy:
			if idle&1023 == 0 {
				runtime.Gosched()
			}
		case PollAdaptive:
			if idle >= adaptiveSpins {
				w.sleep()
			}
		case PollInterrupt:
			w.sleep()
		}
	}
	w.busy.publish()
	w.drain()
}

// sleep sleeps on the Waker until frames arrive or waitTime passes; the
// sleep is idle time.
func (w *Worker) sleep() {
	w.busy.publish()
	w.cfg.Waker.Wait(w.waitTime())
	w.busy.start()
}

func (w *Worker) waitTime() time.Duration {
	if w.cfg.ALG != nil && w.cfg.ALG.inFlight.Load() > 0 || w.held.live > 0 || w.nq.live > 0 {
		return algWait
	}
	return idleWait
}

// Poll runs one round: a burst from every port, frames back from the ALG,
// transmission, and as much session aging as the time since the last
// poll calls for. It returns the number of frames received. Run calls it
// in a loop; tests and benchmarks may call it directly.
func (w *Worker) Poll() int {
	t := w.nanos()
	now := flowtable.Time(t / int64(time.Second))
	if w.clock != nil {
		now = w.clock()
	}
	w.engine.SetTime(w.startMS + t/int64(time.Millisecond))
	w.refresh()
	w.engine.Enter()
	total := 0
	for pi, p := range w.ports {
		stages.Mark(stages.Receive)
		n := p.Receive(w.rx[:w.cfg.Batch])
		stages.Mark(stages.Other)
		if n > 0 {
			w.burst(pi, w.rx[:n], now)
			total += n
		}
	}
	if keys, all := w.engine.Released(); len(keys) > 0 || all {
		w.released = append(w.released[:0], keys...)
		w.retryHeld(w.released, all, now)
	}
	if w.held.live > 0 {
		w.expireHeld(now)
	}
	if w.nq.live > 0 {
		w.retryNeighbors(now)
	}
	if w.cfg.ALG != nil {
		w.fromALG(now)
	}
	stages.Mark(stages.Flush)
	w.flush()
	stages.Mark(stages.Age)
	w.age(t, now, total > 0)
	w.engine.Leave()
	stages.Mark(stages.Publish)
	if total > 0 {
		w.dirty = true
	}
	if t-w.lastPub >= w.pubEvery || total == 0 && w.dirty {
		w.publish(t)
	}
	stages.EndRound(total)
	return total
}

// age walks the next part of the worker's slice of the flow table: the
// share of agePeriod that passed since the last call, so that the slice
// is walked once a period whatever the load. A clock that jumped by more
// than a second (a stalled worker, or a test's clock) walks the whole
// slice at once.
func (w *Worker) age(t int64, now flowtable.Time, busy bool) {
	slots := w.engine.Slots()
	budget := 0
	if w.lastAge == 0 || int32(now-w.ageNow) > 1 {
		budget = slots
	} else {
		w.ageCredit += float64(t-w.lastAge) * float64(slots) / float64(agePeriod)
		limit := float64(slots)
		if busy {
			limit = ageMax
		}
		budget = int(min(w.ageCredit, limit))
		w.ageCredit -= float64(budget)
	}
	w.lastAge, w.ageNow = t, now
	if budget > 0 {
		w.engine.Age(now, budget)
	}
}

// publish makes the worker's counts visible through Counters.
func (w *Worker) publish(t int64) {
	w.countFrags()
	w.pub.publish(&w.c, &w.pubbed)
	w.lastPub, w.dirty = t, false
}

// countFrags copies the engine's fragment counters into the worker's.
func (w *Worker) countFrags() {
	st := w.engine.FragStats()
	w.c.event[EventFragDatagrams] = st.Datagrams
	w.c.event[EventFragCompleted] = st.Completed
	w.c.event[EventFragTimedOut] = st.TimedOut
	w.c.event[EventFragEvicted] = st.Evicted
	w.c.event[EventFragUntracked] = st.Untracked
}

// Kinds of frames in a burst, as parsing sorts them.
const (
	kindDrop       uint8 = iota // parse failed: dropped, counted
	kindLookup                  // its flow is found by a flow-table lookup of its tuple
	kindOther                   // a non-first fragment or an ICMP error (nat.NeedsLookup)
	kindBadOptions              // malformed IP options or a source route (badOptions): never seen by the NAT
)

// burst processes frames received on port pi in three stages: parse them
// all, look up all their flows (LookupBatch overlaps the lookups' cache
// misses instead of stalling on each in turn), then translate and
// dispatch each, in order.
//
// The frames of the common shape (packet.ParseCommonBurst, one loop over
// the burst without calls) are parsed only as far as the
// established-flow path needs; the translation of each run of them
// (nat.Engine.ForwardCommonBurst) and their transmission to cached next
// hops (queueCommon) are tried first, each of them checking before it
// changes anything, and a frame either declines takes the general path
// from where it stands, its Parsed filled in as Parse would have: so
// every frame gets exactly what the general path gives it.
func (w *Worker) burst(pi int, frames []Frame, now flowtable.Time) {
	from := w.sides[pi]
	w.engine.SetIngress(uint16(pi))
	stages.Mark(stages.Parse)
	kind := w.kind[:len(frames)]
	keys := w.keys[:len(frames)]
	// The common shape first: the keys of these frames are keys[:nc],
	// in arrival order.
	common := w.common[:len(frames)]
	nc, rxBytes := 0, uint64(0)
	if !w.general {
		nc, rxBytes = packet.ParseCommonBurst(frames, keys, common)
	} else {
		for i := range frames {
			rxBytes += uint64(len(frames[i].Buf))
			common[i] = false
		}
	}
	w.c.parse[packet.OK] += uint64(nc)
	w.c.rxPackets += uint64(len(frames))
	w.c.rxBytes += rxBytes
	// The rest through Parse: the keys of those looked up follow.
	nk := nc
	if nc < len(frames) {
		nk = w.parseRest(frames, common, kind, keys, nc)
	}
	w.table.LookupBatch(keys[:nk], w.hits[:nk])
	stages.Mark(stages.Process)
	hits := w.hits[:nk]
	kc, kl := 0, nc // the next common key, the next other key
	for i := 0; i < len(frames); {
		var p *packet.Parsed
		var r *nat.Result
		if common[i] {
			// The run of common frames from i: the engine translates
			// them in one call, up to the first it declines, and the
			// loop below queues them, calling nothing in the common
			// case.
			j := len(frames)
			if nc < len(frames) {
				for j = i + 1; j < len(frames) && common[j]; j++ {
				}
			}
			run, rh := frames[i:j], hits[kc:kc+j-i]
			m := w.engine.ForwardCommonBurst(run, rh, from, now, w.fwd)
			w.queueCommon(run[:m], rh[:m], keys[kc:kc+m], pi, now)
			i, kc = i+m, kc+m
			if i == j {
				continue
			}
			// Declined (or a miss): the general path, from the tuple.
			f := &frames[i]
			p, r = &w.parsed[i], &w.results[i]
			p.SetCommon(f.Buf, keys[kc])
			w.engine.ProcessLooked(f.Buf, p, from, now, hits[kc], r)
			kc++
		} else {
			switch kind[i] {
			case kindDrop:
				w.drops = append(w.drops, frames[i])
				i++
				continue
			case kindBadOptions:
				w.refuseOptions(frames[i], pi, &w.parsed[i])
				i++
				continue
			case kindLookup:
				p, r = &w.parsed[i], &w.results[i]
				w.engine.ProcessLooked(frames[i].Buf, p, from, now, hits[kl], r)
				kl++
			default:
				p, r = &w.parsed[i], &w.results[i]
				w.engine.Process(frames[i].Buf, p, from, now, r)
			}
		}
		stages.Mark(stages.Dispatch)
		w.dispatch(frames[i], pi, p, r, now)
		stages.Mark(stages.Process)
		i++
	}
	w.releaseDrops()
	if len(w.algOut) > 0 {
		w.toALG()
	}
	stages.Mark(stages.Other)
}

// queueCommon queues the frames ForwardCommonBurst translated (hits and
// keys are theirs, w.fwd what it answered): each to its cached next hop
// when it fits the egress MTU, and through dispatch's other cases when
// not. queueCached queues them while that needs no call; what it stops
// at is done here.
func (w *Worker) queueCommon(frames []Frame, hits []flowtable.Hit, keys []packet.Tuple, pi int, now flowtable.Time) {
	fwd := w.fwd[:len(frames)]
	for k := 0; ; k++ {
		k += w.queueCached(frames[k:], fwd[k:], now)
		if k >= len(frames) {
			return
		}
		f, fw := &frames[k], &fwd[k]
		eg := &w.egress[fw.Out&1]
		if e := w.cachedHop(eg.port, fw.Dst, now); e != nil && len(f.Buf) <= eg.maxFrame {
			// Its queue is full.
			w.flushPort(eg.port)
			*(*[12]byte)(f.Buf) = e.hdr
			*eg.tx = append(*eg.tx, *f)
			w.c.verdict[nat.Forward]++
			continue
		}
		// Translated, but it does not leave the common way: dispatch's
		// other cases.
		h := &hits[k]
		var p packet.Parsed
		p.SetCommon(f.Buf, keys[k])
		r := nat.Result{Verdict: nat.Forward, Out: fw.Out, Session: h.ID, Gen: h.Gen, Dir: h.Dir}
		w.dispatchSlow(*f, pi, &p, &r, now)
	}
}

// queueCached queues translated frames (fwd[k] says where frame k goes)
// to their cached next hops, and returns at the first that would need a
// call — its next hop is not cached, it may not fit the egress MTU, or
// its queue is full — or at the end: the number it queued. It calls
// nothing, so that the loop's state stays in registers.
func (w *Worker) queueCached(frames []Frame, fwd []nat.Forwarded, now flowtable.Time) int {
	fwd = fwd[:len(frames)]
	for k := range frames {
		f := &frames[k]
		eg := &w.egress[fwd[k].Out&1]
		// The frame's length bounds the packet's (only Ethernet padding
		// makes it longer, and a packet near any MTU has none): one
		// that fails this takes dispatchSlow's exact check.
		e := w.cachedHop(eg.port, fwd[k].Dst, now)
		if e == nil || len(f.Buf) > eg.maxFrame || len(*eg.tx) == cap(*eg.tx) {
			w.c.verdict[nat.Forward] += uint64(k)
			return k
		}
		*(*[12]byte)(f.Buf) = e.hdr
		*eg.tx = append(*eg.tx, *f) // enqueue, inlined
	}
	w.c.verdict[nat.Forward] += uint64(len(frames))
	return len(frames)
}

// parseRest parses with Parse the frames of a burst that
// ParseCommonBurst left (common[i] false), sorting them into kinds; the
// keys of those to be looked up go to keys[nk:], in arrival order. It
// returns the new number of keys.
func (w *Worker) parseRest(frames []Frame, common []bool, kind []uint8, keys []packet.Tuple, nk int) int {
	for i := range frames {
		if common[i] {
			continue
		}
		buf, p := frames[i].Buf, &w.parsed[i]
		res := packet.Parse(buf, p)
		w.c.parse[res]++
		switch {
		case res != packet.OK:
			kind[i] = kindDrop
			if w.cfg.DropTap != nil {
				w.cfg.DropTap(buf, parseDropNames[res])
			}
		case buf[p.L3] != 0x45 && badOptions(p.IPv4(buf)):
			// As the kernel checks options on receipt (ip_rcv_options),
			// before routing or NAT decide anything.
			kind[i] = kindBadOptions
		case nat.NeedsLookup(p):
			kind[i] = kindLookup
			keys[nk] = p.Tuple
			nk++
		default:
			kind[i] = kindOther
		}
	}
	return nk
}

// dispatch acts on the engine's verdict for one frame received on port
// pi; p is the frame as parsed before translation. The common case — a
// translated frame that fits, is no SYN to clamp, is not for the ALG and
// whose next hop is cached — is queued here; everything else takes
// dispatchSlow.
func (w *Worker) dispatch(f Frame, pi int, p *packet.Parsed, r *nat.Result, now flowtable.Time) {
	// A header with options (rare) takes dispatchSlow, which fills
	// them in (forwardOptions).
	if r.Verdict == nat.Forward && !r.Divert && p.TCPFlags&packet.FlagSYN == 0 && f.Buf[p.L3] == 0x45 {
		op := w.out[r.Out&1]
		if ip := (*[packet.IPv4MinLen]byte)(f.Buf[p.L3:]); p.End-p.L3 <= w.mtu[op] {
			if e := w.cachedHop(op, binary.BigEndian.Uint32(ip[16:]), now); e != nil {
				w.c.verdict[nat.Forward]++
				*(*[12]byte)(f.Buf) = e.hdr
				if len(w.tx[op]) == cap(w.tx[op]) {
					w.flushPort(op)
				}
				w.tx[op] = append(w.tx[op], f) // enqueue, inlined
				return
			}
		}
	}
	w.dispatchSlow(f, pi, p, r, now)
}

// cachedHop returns the worker's next-hop cache entry for destination
// dst on port op, or nil when the cache does not know it (or no longer
// trusts it): then the port is asked (nextHop).
func (w *Worker) cachedHop(op int, dst uint32, now flowtable.Time) *neighborEntry {
	if e := &w.neigh[neighborSlot(dst)]; e.key == hopKey(dst, op) && now-e.stamp < neighborMaxAge {
		return e
	}
	return nil
}

// dispatchSlow is dispatch for every frame but the common case.
func (w *Worker) dispatchSlow(f Frame, pi int, p *packet.Parsed, r *nat.Result, now flowtable.Time) {
	w.c.verdict[r.Verdict]++
	switch r.Verdict {
	case nat.Forward:
	case nat.Hold:
		w.hold(f, pi, p, now)
		return
	case nat.DropTTLExpired:
		// RFC 1812 §5.3.1: time exceeded, about the packet untouched
		// (the engine checks the TTL before translating).
		w.tap(f, verdictDropNames[r.Verdict])
		w.answer(f, pi, p, icmpTimeExceeded, 0)
		return
	case nat.DropUnsolicited, nat.DropTCPNoSYN:
		// To a closed port of a public address (a segment that is not a
		// SYN starts no flow, and no session has it): answered as a host
		// answers.
		if w.engine.ClosedPort(p) {
			w.tap(f, verdictDropNames[r.Verdict])
			if p.Tuple.Proto == packet.ProtoTCP {
				w.reset(f, pi, p)
			} else {
				w.answer(f, pi, p, icmpPortUnreachable, 0)
			}
			return
		}
		w.drop(f, verdictDropNames[r.Verdict])
		return
	case nat.DropBadL4Checksum:
		if !w.badSum[pi] && w.cfg.OnBadChecksum != nil {
			w.badSum[pi] = true
			w.cfg.OnBadChecksum(w.ports[pi])
		}
		w.drop(f, verdictDropNames[r.Verdict])
		return
	default:
		w.drop(f, verdictDropNames[r.Verdict])
		return
	}
	op := w.out[r.Out]
	if p.End-p.L3 > w.mtu[op] {
		w.tooBig(f, pi, op, p, r, now)
		return
	}
	if p.TCPFlags&packet.FlagSYN != 0 && w.rc.MSSClamp != 0 {
		w.clampMSS(f, p, pi, op)
	}
	dst := p.IPv4(f.Buf).DstAddr()
	if f.Buf[p.L3] != 0x45 && !ownEchoReply(f.Buf, p) {
		w.forwardOptions(f, p, pi, op, dst)
	}
	if e := w.cachedHop(op, dst, now); e != nil {
		w.send(f, op, pi, [6]byte(e.hdr[:6]), r)
		return
	}
	w.route(f, pi, op, dst, p, r, now)
}

// tooBig handles a translated packet larger than port op's MTU: with
// Don't Fragment it is answered with fragmentation needed carrying the
// MTU (RFC 1191), quoting the packet as its sender wrote it; without, it
// is fragmented (RFC 791) and each fragment sent. A frame for the ALG goes
// to it whole: what the ALG returns is fragmented then (fromALG).
func (w *Worker) tooBig(f Frame, pi, op int, p *packet.Parsed, r *nat.Result, now flowtable.Time) {
	mtu := w.mtu[op]
	if p.IPv4(f.Buf).Flags()&packet.IPv4DontFragment != 0 {
		w.c.drop[DropMTUExceeded]++
		w.tap(f, dropNames[DropMTUExceeded])
		restore(f.Buf, p, p.Tuple)
		w.answer(f, pi, p, icmpFragNeeded, uint32(mtu))
		return
	}
	dst := p.IPv4(f.Buf).DstAddr()
	if r.Divert && w.cfg.ALG != nil {
		w.route(f, pi, op, dst, p, r, now)
		return
	}
	if !w.split(f, p.L3, mtu) {
		return
	}
	// The first fragment keeps the packet's header and may be answered;
	// the others never are (RFC 1812 §4.3.2.7).
	first := *p
	first.End, first.Frag.More = p.L3+int(p.IPv4(w.frags[0].Buf).TotalLength()), true
	for i, g := range w.frags {
		q := &first
		if i > 0 {
			q = nil
		}
		w.route(g, pi, op, dst, q, r, now)
	}
}

// clampMSS lowers the MSS option of a SYN or SYN-ACK crossing from port
// pi to port op (RouterConfig.MSSClamp).
func (w *Worker) clampMSS(f Frame, p *packet.Parsed, pi, op int) {
	mss := w.rc.MSSClamp
	if mss == MSSClampMTU {
		mss = min(w.mtu[pi], w.mtu[op]) - packet.IPv4MinLen - packet.TCPMinLen
	}
	if mss <= 0 || mss > 0xffff {
		return
	}
	if old := p.TCP(f.Buf).ClampMSS(uint16(mss)); int(old) > mss {
		w.c.event[EventMSSClamped]++
	}
}

// send addresses a translated frame to mac and queues it on port op, or
// hands it to the ALG first (in is the port it arrived on, where the
// ALG's answers to its sender go).
func (w *Worker) send(f Frame, op, in int, mac [6]byte, r *nat.Result) {
	copy(f.Buf[0:6], mac[:])
	copy(f.Buf[6:12], w.macs[op][:])
	if r.Divert && w.cfg.ALG != nil {
		w.algOut = append(w.algOut, ALGItem{Buf: f.Buf, Handle: f.Handle, Session: r.Session, Gen: r.Gen, Dir: r.Dir,
			Port: uint8(op), In: uint8(in), MTU: uint16(min(w.mtu[op], 0xffff))})
		if len(w.algOut) == cap(w.algOut) {
			w.toALG()
		}
		return
	}
	q := w.tx[op]
	if len(q) == cap(q) {
		w.flushPort(op)
		q = w.tx[op]
	}
	w.tx[op] = append(q, f)
}

// enqueue queues an addressed frame for transmission on port op, handing
// the queue to the port first when it is full.
func (w *Worker) enqueue(op int, f Frame) {
	if len(w.tx[op]) == cap(w.tx[op]) {
		w.flushPort(op)
	}
	w.tx[op] = append(w.tx[op], f)
}

// emit queues a frame the ALG returned on port op, fragmenting it first
// if it exceeds the port's MTU, or fragSize when that is smaller: a
// datagram the ALG reassembled leaves in fragments no larger than those
// it came in (alg.Item.FragSize).
func (w *Worker) emit(f Frame, op, fragSize int) {
	mtu := w.mtu[op]
	if fragSize > 0 {
		mtu = min(mtu, fragSize)
	}
	if len(f.Buf) <= mtu+packet.EthernetLen {
		w.enqueue(op, f)
		return
	}
	l3 := l3Of(f.Buf)
	ip := packet.IPv4(f.Buf[l3:])
	if len(f.Buf)-l3 < packet.IPv4MinLen || int(ip.TotalLength()) <= mtu {
		w.enqueue(op, f)
		return
	}
	if ip.Flags()&packet.IPv4DontFragment != 0 {
		w.c.drop[DropMTUExceeded]++
		w.drop(f, dropNames[DropMTUExceeded])
		return
	}
	if w.split(f, l3, mtu) {
		for _, g := range w.frags {
			w.enqueue(op, g)
		}
	}
}

// drop queues f for release, showing it to the drop tap first.
func (w *Worker) drop(f Frame, reason string) {
	w.tap(f, reason)
	w.drops = append(w.drops, f)
}

// tap shows a dropped frame to the drop tap, if there is one.
func (w *Worker) tap(f Frame, reason string) {
	if w.cfg.DropTap != nil {
		w.cfg.DropTap(f.Buf, reason)
	}
}

// releaseDrops gives the frames dropped so far back to the frame space.
func (w *Worker) releaseDrops() {
	if len(w.drops) > 0 {
		w.ports[0].Release(w.drops)
		w.drops = w.drops[:0]
	}
}

// flush hands queued frames to the ports' tx rings and kicks them.
func (w *Worker) flush() {
	for pi := range w.tx {
		w.flushPort(pi)
		w.ports[pi].Flush()
	}
}

// flushPort hands port pi's queued frames to its tx ring.
func (w *Worker) flushPort(pi int) {
	q := w.tx[pi]
	if len(q) == 0 {
		return
	}
	n := w.ports[pi].Transmit(q)
	for _, f := range q[:n] {
		w.c.txBytes += uint64(len(f.Buf))
	}
	w.c.txPackets += uint64(n)
	if n < len(q) {
		w.c.drop[DropTxFull] += uint64(len(q) - n)
		if w.cfg.DropTap != nil {
			for _, f := range q[n:] {
				w.cfg.DropTap(f.Buf, dropNames[DropTxFull])
			}
		}
		w.ports[pi].Release(q[n:])
	}
	w.tx[pi] = q[:0]
}

// drain releases what the worker still holds when it stops.
func (w *Worker) drain() {
	w.drainHeld()
	w.drainNeighbors()
	w.releaseDrops()
	w.flush()
	w.publish(w.nanos())
}
