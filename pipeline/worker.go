package pipeline

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/flowtable"
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
	maxBatch       = 256
	ageBudget      = 64                    // sessions examined per poll
	adaptiveSpins  = 2048                  // empty polls before an adaptive worker sleeps
	idleWait       = 10 * time.Millisecond // longest sleep on the Waker
	algWait        = 200 * time.Microsecond
	holdMax        = 64 // early fragments held per worker
	holdSeconds    = 2  // how long an early fragment may wait for its first
	arpMax         = 64 // frames waiting for neighbour resolution per worker
	arpSeconds     = 2  // how long a frame may wait for its next hop
	neighborSlots  = 256
	neighborMaxAge = 1 // seconds a cached next-hop MAC is trusted
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
	// the frame goes back to its port: parse failures, NAT drop verdicts
	// and the pipeline's own drops (not frames still held at Stop).
	// reason is the drop's counter name ("parse_bad_ip_checksum",
	// "nat_unsolicited", "tx_full", ...; see DropName). It runs on the
	// worker's goroutine with a frame the worker still owns, so it must
	// copy what it keeps and must not block. nil: no tap, one branch per
	// drop.
	DropTap func(frame []byte, reason string)
}

// Worker is a per-core poll loop: it owns one queue of every interface,
// and runs every frame it receives to completion (parse, look up or
// create the session, translate, rewrite L2, transmit) in bursts.
type Worker struct {
	cfg    Config
	ports  []Port
	macs   [][6]byte // each port's own MAC, read once
	sides  []nat.Side
	out    [2]int // port index per side
	engine *nat.Engine
	table  *flowtable.Table
	clock  func() flowtable.Time
	stop   atomic.Bool
	c      counts
	pub    Counters
	algOut []ALGItem
	// per-burst scratch, reused
	rx      []Frame
	parsed  []packet.Parsed
	results []nat.Result
	keys    []packet.Tuple
	hits    []flowtable.Hit
	lookIdx []int // frames of the burst whose flow is looked up, in order
	tx      [][]Frame
	drops   []Frame
	held    []heldFrame
	arp     []arpWait
	neigh   [neighborSlots]neighborEntry
	algIn   []ALGItem
}

type heldFrame struct {
	f     Frame
	port  int
	since flowtable.Time
}

// arpWait is a translated frame waiting for its next hop's MAC address,
// as the kernel queues packets on an unresolved neighbour: the first
// packet to a new host is sent once resolution completes, not dropped.
type arpWait struct {
	f     Frame
	port  int
	in    int // the port the frame arrived on
	dst   uint32
	since flowtable.Time
	alg   bool
	r     nat.Result
}

type neighborEntry struct {
	addr  uint32
	mac   [6]byte
	port  uint8
	ok    bool
	stamp flowtable.Time
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
	w := &Worker{cfg: cfg, engine: cfg.NAT, table: cfg.Table, out: [2]int{-1, -1}}
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
	w.clock = cfg.Clock
	if w.clock == nil {
		start := time.Now()
		w.clock = func() flowtable.Time { return flowtable.Time(time.Since(start) / time.Second) }
	}
	b := cfg.Batch
	w.rx = make([]Frame, b)
	w.parsed = make([]packet.Parsed, b)
	w.results = make([]nat.Result, b)
	w.keys = make([]packet.Tuple, b)
	w.hits = make([]flowtable.Hit, b)
	w.lookIdx = make([]int, b)
	w.tx = make([][]Frame, len(w.ports))
	for i := range w.tx {
		w.tx[i] = make([]Frame, 0, 2*b+holdMax)
	}
	w.drops = make([]Frame, 0, 2*b+holdMax)
	w.held = make([]heldFrame, 0, holdMax)
	w.arp = make([]arpWait, 0, arpMax)
	w.algOut = make([]ALGItem, 0, b)
	w.algIn = make([]ALGItem, b)
	return w
}

// Counters returns the worker's published counters.
func (w *Worker) Counters() *Counters { return &w.pub }

// Stop asks Run to return after the current poll.
func (w *Worker) Stop() { w.stop.Store(true) }

// Run is the worker's poll loop; it returns after Stop. Call it on a
// goroutine of its own (pinned to a core by the caller if wanted).
func (w *Worker) Run() {
	idle := 0
	for !w.stop.Load() {
		if w.Poll() > 0 {
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
				w.cfg.Waker.Wait(w.waitTime())
			}
		case PollInterrupt:
			w.cfg.Waker.Wait(w.waitTime())
		}
	}
	w.drain()
}

func (w *Worker) waitTime() time.Duration {
	if w.cfg.ALG != nil && w.cfg.ALG.inFlight.Load() > 0 || len(w.held) > 0 || len(w.arp) > 0 {
		return algWait
	}
	return idleWait
}

// Poll runs one round: a burst from every port, frames back from the ALG,
// transmission, and a slice of session aging. It returns the number of
// frames received. Run calls it in a loop; tests and benchmarks may call
// it directly.
func (w *Worker) Poll() int {
	now := w.clock()
	total := 0
	for pi, p := range w.ports {
		n := p.Receive(w.rx[:w.cfg.Batch])
		if n > 0 {
			w.burst(pi, w.rx[:n], now)
			total += n
		}
	}
	if w.engine.FragReleased {
		w.engine.FragReleased = false
		w.retryHeld(now)
	}
	if len(w.arp) > 0 {
		w.retryNeighbors(now)
	}
	if w.cfg.ALG != nil {
		w.fromALG(now)
	}
	w.flush()
	w.engine.Age(now, ageBudget)
	w.pub.publish(&w.c)
	return total
}

// burst processes frames received on port pi in three stages: parse them
// all, look up all their flows (LookupBatch overlaps the lookups' cache
// misses instead of stalling on each in turn), then translate and
// dispatch each.
func (w *Worker) burst(pi int, frames []Frame, now flowtable.Time) {
	from := w.sides[pi]
	nk := 0
	for i := range frames {
		w.c.rxPackets++
		w.c.rxBytes += uint64(len(frames[i].Buf))
		p := &w.parsed[i]
		res := packet.Parse(frames[i].Buf, p)
		w.c.parse[res]++
		w.results[i].Verdict = nat.Forward
		if res != packet.OK {
			w.results[i].Verdict = nat.NumVerdicts // marks a parse drop
			if w.cfg.DropTap != nil {
				w.cfg.DropTap(frames[i].Buf, parseDropNames[res])
			}
		} else if nat.NeedsLookup(p) {
			w.keys[nk] = p.Tuple
			w.lookIdx[nk] = i
			nk++
		}
	}
	w.table.LookupBatch(w.keys[:nk], w.hits[:nk])
	k := 0
	for i := range frames {
		f := frames[i]
		if w.results[i].Verdict == nat.NumVerdicts {
			w.drops = append(w.drops, f)
			continue
		}
		p, r := &w.parsed[i], &w.results[i]
		*r = nat.Result{}
		if k < nk && w.lookIdx[k] == i {
			h := &w.hits[k]
			k++
			w.engine.ProcessLooked(f.Buf, p, from, now, *h, r)
		} else {
			w.engine.Process(f.Buf, p, from, now, r)
		}
		w.dispatch(f, pi, p, r, now)
	}
	if len(w.drops) > 0 {
		w.ports[pi].Release(w.drops)
		w.drops = w.drops[:0]
	}
	if len(w.algOut) > 0 {
		w.toALG()
	}
}

// dispatch acts on the engine's verdict for one frame.
func (w *Worker) dispatch(f Frame, pi int, p *packet.Parsed, r *nat.Result, now flowtable.Time) {
	w.c.verdict[r.Verdict]++
	switch r.Verdict {
	case nat.Forward:
	case nat.Hold:
		if len(w.held) < holdMax {
			w.held = append(w.held, heldFrame{f: f, port: pi, since: now})
			w.c.held++
		} else {
			w.c.drop[DropHoldOverflow]++
			w.drop(f, dropNames[DropHoldOverflow])
		}
		return
	default:
		w.drop(f, verdictDropNames[r.Verdict])
		return
	}
	op := w.out[r.Out]
	dst := binary.BigEndian.Uint32(f.Buf[p.L3+16:])
	mac, ok := w.nextHop(op, dst, now)
	if !ok {
		if len(w.arp) < arpMax {
			w.arp = append(w.arp, arpWait{f: f, port: op, in: pi, dst: dst, since: now, r: *r})
		} else {
			w.c.drop[DropNoNeighbor]++
			w.drop(f, dropNames[DropNoNeighbor])
		}
		return
	}
	w.send(f, op, pi, mac, r)
}

// send addresses a translated frame to mac and queues it on port op, or
// hands it to the ALG first (in is the port it arrived on, where the
// ALG's answers to its sender go).
func (w *Worker) send(f Frame, op, in int, mac [6]byte, r *nat.Result) {
	copy(f.Buf[0:6], mac[:])
	copy(f.Buf[6:12], w.macs[op][:])
	if r.Divert && w.cfg.ALG != nil {
		w.algOut = append(w.algOut, ALGItem{Buf: f.Buf, Handle: f.Handle, Session: r.Session, Gen: r.Gen,
			Dir: r.Dir, Port: uint8(op), In: uint8(in)})
		return
	}
	w.tx[op] = append(w.tx[op], f)
}

// nextHop returns the MAC for dst on port op from a small per-worker
// cache, asking the port at most once a second per destination.
func (w *Worker) nextHop(op int, dst uint32, now flowtable.Time) ([6]byte, bool) {
	e := &w.neigh[(dst*0x9e3779b1)>>24]
	if e.ok && e.addr == dst && e.port == uint8(op) && now-e.stamp < neighborMaxAge {
		return e.mac, true
	}
	mac, ok := w.ports[op].NextHop(dst)
	*e = neighborEntry{addr: dst, mac: mac, port: uint8(op), ok: ok, stamp: now}
	return mac, ok
}

// retryNeighbors sends frames whose next hop has been resolved since, and
// drops those that waited too long.
func (w *Worker) retryNeighbors(now flowtable.Time) {
	keep := w.arp[:0]
	for i := range w.arp {
		a := w.arp[i]
		if mac, ok := w.ports[a.port].NextHop(a.dst); ok {
			w.neigh[(a.dst*0x9e3779b1)>>24] = neighborEntry{addr: a.dst, mac: mac, port: uint8(a.port), ok: true, stamp: now}
			w.send(a.f, a.port, a.in, mac, &a.r)
			continue
		}
		if now-a.since > arpSeconds {
			w.c.drop[DropNoNeighbor]++
			w.drop(a.f, dropNames[DropNoNeighbor])
			continue
		}
		keep = append(keep, a)
	}
	w.arp = keep
	if len(w.algOut) > 0 {
		w.toALG()
	}
	if len(w.drops) > 0 {
		w.ports[0].Release(w.drops)
		w.drops = w.drops[:0]
	}
}

// retryHeld runs held early fragments through the engine again, now that
// a first fragment has been seen; it drops those held too long.
func (w *Worker) retryHeld(now flowtable.Time) {
	keep := w.held[:0]
	for _, h := range w.held {
		var p packet.Parsed
		var r nat.Result
		if res := packet.Parse(h.f.Buf, &p); res != packet.OK {
			if w.cfg.DropTap != nil {
				w.cfg.DropTap(h.f.Buf, parseDropNames[res])
			}
			w.ports[h.port].Release([]Frame{h.f})
			continue
		}
		w.engine.Process(h.f.Buf, &p, w.sides[h.port], now, &r)
		if r.Verdict == nat.Hold {
			if now-h.since > holdSeconds {
				w.c.verdict[nat.DropFragNoSession]++
				w.drop(h.f, verdictDropNames[nat.DropFragNoSession])
			} else {
				keep = append(keep, h)
			}
			continue
		}
		w.dispatch(h.f, h.port, &p, &r, now)
	}
	w.held = keep
	if len(w.drops) > 0 {
		w.ports[0].Release(w.drops)
		w.drops = w.drops[:0]
	}
}

// drop queues f for release, showing it to the drop tap first.
func (w *Worker) drop(f Frame, reason string) {
	if w.cfg.DropTap != nil {
		w.cfg.DropTap(f.Buf, reason)
	}
	w.drops = append(w.drops, f)
}

// flush hands queued frames to the ports' tx rings and kicks them.
func (w *Worker) flush() {
	for pi, q := range w.tx {
		if len(q) > 0 {
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
		w.ports[pi].Flush()
	}
}

// drain releases what the worker still holds when it stops.
func (w *Worker) drain() {
	for _, h := range w.held {
		w.ports[h.port].Release([]Frame{h.f})
	}
	w.held = w.held[:0]
	for _, a := range w.arp {
		w.ports[a.port].Release([]Frame{a.f})
	}
	w.arp = w.arp[:0]
	w.flush()
	w.pub.publish(&w.c)
}
