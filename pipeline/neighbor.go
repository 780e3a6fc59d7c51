package pipeline

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// Next hops. A worker asks its port for a destination's next hop at most
// once a second (a small per-worker cache of resolved MACs). When the
// neighbour is not resolved yet, the frame waits, as the kernel queues
// packets on an INCOMPLETE neighbour: in a queue per neighbour (the next
// hop, not the destination, so that every destination behind one gateway
// shares it), bounded in bytes like the kernel's unres_qlen_bytes
// (212,992) — a frame counts its length plus neighFrameCost, standing for
// the kernel's per-skb overhead, so 200 back-to-back small datagrams to a
// fresh host fit, as they do through the kernel; above the bound the
// oldest frame goes (the kernel does the same). All queues together hold
// at most waitMax frames per worker (an eighth of the frame space; early
// fragments have another eighth), so unresolved neighbours can never take
// the frames the worker needs to receive. When the neighbour resolves,
// the queue is sent in order; when it has not after neighWaitSeconds (the
// kernel's 3 probes a second apart), every frame in it is answered with
// ICMP host unreachable, and when the port says there is no route at all,
// at once with net unreachable.

const (
	neighborSlots    = 256
	neighborMaxAge   = 1      // seconds a cached next-hop MAC is trusted
	neighQueues      = 64     // neighbours a worker can wait for at once
	neighQueueBytes  = 212992 // per neighbour, as Linux's unres_qlen_bytes
	neighFrameCost   = 256    // bytes a waiting frame counts besides its length
	neighWaitSeconds = 3      // how long frames wait for resolution
)

type neighborEntry struct {
	// key is hopKey(addr, port) while the entry holds addr's resolved
	// next hop on port, and 0 while it holds none: the per-packet check
	// is one comparison of it and one of the stamp.
	key   uint64
	stamp flowtable.Time
	// hdr is the Ethernet addresses a frame to addr through port gets:
	// the next hop's MAC, then the port's own.
	hdr [12]byte
}

// setNeighbor caches dst's next hop mac on port op.
func (w *Worker) setNeighbor(dst uint32, op int, mac [6]byte, ok bool, now flowtable.Time) {
	e := &w.neigh[neighborSlot(dst)]
	*e = neighborEntry{stamp: now}
	if ok {
		e.key = hopKey(dst, op)
	}
	copy(e.hdr[:6], mac[:])
	copy(e.hdr[6:], w.macs[op][:])
}

// neighQueue is the frames waiting for one neighbour, oldest first.
// Indices into neighWait.waits are index + 1; 0 means none.
type neighQueue struct {
	dst        uint32 // a destination it serves, to ask NextHop with
	hop        uint32
	port       uint8
	head, tail int32
	bytes      int
	since      flowtable.Time
}

// waitFrame is a translated frame waiting for its next hop.
type waitFrame struct {
	f      Frame
	next   int32
	in     uint8 // the port it arrived on: where an ICMP error goes
	answer bool  // a first fragment whose sender may get an ICMP error
	dst    uint32
	orig   packet.Tuple // as its sender wrote it
	r      nat.Result
}

// neighWait is a worker's waiting frames: fixed storage, a free list, and
// the queues. Owned by the worker.
type neighWait struct {
	queues [neighQueues]neighQueue
	live   int // queues in use (head != 0)
	waits  []waitFrame
	used   int32
	free   int32
	frames int
}

func (n *neighWait) at(i int32) *waitFrame { return &n.waits[i-1] }

// neighborSlot is dst's entry in the worker's next-hop cache.
func neighborSlot(dst uint32) uint32 { return (dst * 0x9e3779b1) >> 24 }

// hopKey is neighborEntry.key for dst's next hop on port op (never 0).
func hopKey(dst uint32, op int) uint64 { return uint64(dst)<<32 | uint64(uint8(op))<<8 | 1 }

// nextHop returns the MAC for dst on port op from the worker's cache, or
// asks the port.
func (w *Worker) nextHop(op int, dst uint32, now flowtable.Time) Hop {
	if e := w.cachedHop(op, dst, now); e != nil {
		return Hop{State: HopResolved, MAC: [6]byte(e.hdr[:6])}
	}
	h := w.ports[op].NextHop(dst)
	w.setNeighbor(dst, op, h.MAC, h.State == HopResolved, now)
	return h
}

// route sends a translated frame on port op towards its destination dst:
// at once when the next hop is known, after resolution when it is not, and
// answers net unreachable when there is no route. p is the packet as it
// was parsed before translation (nil for a fragment fastnat made, which is
// never answered); in is the port it arrived on.
func (w *Worker) route(f Frame, in, op int, dst uint32, p *packet.Parsed, r *nat.Result, now flowtable.Time) {
	h := w.nextHop(op, dst, now)
	switch h.State {
	case HopResolved:
		if w.nq.live > 0 {
			// Frames already waiting for this neighbour go first.
			w.releaseQueue(op, h)
		}
		w.send(f, op, in, h.MAC, r)
	case HopPending:
		w.wait(f, in, op, dst, h.Addr, p, r, now)
	default:
		w.c.drop[DropNetUnreachable]++
		w.tap(f, dropNames[DropNetUnreachable])
		if p == nil {
			w.drops = append(w.drops, f)
			return
		}
		restore(f.Buf, p, p.Tuple)
		w.answer(f, in, p, icmpNetUnreachable, 0)
	}
}

// wait queues a frame for neighbour hop on port op.
func (w *Worker) wait(f Frame, in, op int, dst, hop uint32, p *packet.Parsed, r *nat.Result, now flowtable.Time) {
	n := &w.nq
	q := w.queueFor(op, hop)
	if q == nil {
		q = w.freeQueue()
	}
	if q == nil || n.frames == w.waitMax {
		w.c.drop[DropWaitFull]++
		w.drop(f, dropNames[DropWaitFull])
		return
	}
	cost := len(f.Buf) + neighFrameCost
	for q.head != 0 && q.bytes+cost > neighQueueBytes {
		old := w.dequeue(q)
		w.c.drop[DropNeighQueueFull]++
		w.drop(old.f, dropNames[DropNeighQueueFull])
	}
	if q.head == 0 {
		*q = neighQueue{dst: dst, hop: hop, port: uint8(op), since: now}
		n.live++
	}
	var i int32
	if n.free != 0 {
		i = n.free
		n.free = n.at(i).next
	} else {
		n.used++
		i = n.used
	}
	wf := n.at(i)
	*wf = waitFrame{f: f, in: uint8(in), dst: dst, r: *r}
	if p != nil {
		wf.answer, wf.orig = true, p.Tuple
	}
	if q.tail != 0 {
		n.at(q.tail).next = i
	} else {
		q.head = i
	}
	q.tail = i
	q.bytes += cost
	n.frames++
	w.c.event[EventNeighWaited]++
}

// freeQueue returns a queue not in use, or nil.
func (w *Worker) freeQueue() *neighQueue {
	for i := range w.nq.queues {
		if w.nq.queues[i].head == 0 {
			return &w.nq.queues[i]
		}
	}
	return nil
}

// queueFor returns the live queue of neighbour hop on port op, or nil.
func (w *Worker) queueFor(op int, hop uint32) *neighQueue {
	for i := range w.nq.queues {
		q := &w.nq.queues[i]
		if q.head != 0 && q.hop == hop && q.port == uint8(op) {
			return q
		}
	}
	return nil
}

// dequeue takes the oldest frame of q (which must not be empty) and frees
// its slot; a queue left empty is closed.
func (w *Worker) dequeue(q *neighQueue) waitFrame {
	n := &w.nq
	i := q.head
	wf := *n.at(i)
	q.head = wf.next
	if q.head == 0 {
		q.tail = 0
		n.live--
	}
	q.bytes -= len(wf.f.Buf) + neighFrameCost
	n.at(i).next = n.free
	n.free = i
	n.frames--
	return wf
}

// releaseQueue sends the frames waiting for the resolved neighbour h on
// port op, if any.
func (w *Worker) releaseQueue(op int, h Hop) {
	q := w.queueFor(op, h.Addr)
	for q != nil && q.head != 0 {
		wf := w.dequeue(q)
		w.send(wf.f, op, int(wf.in), h.MAC, &wf.r)
	}
}

// retryNeighbors asks the ports once per poll about every neighbour frames
// wait for: a resolved one gets its queue sent, one that has not resolved
// in neighWaitSeconds (or has lost its route) gets its senders answered
// with ICMP host (or net) unreachable.
func (w *Worker) retryNeighbors(now flowtable.Time) {
	for i := range w.nq.queues {
		q := &w.nq.queues[i]
		if q.head == 0 {
			continue
		}
		h := w.ports[q.port].NextHop(q.dst)
		switch {
		case h.State == HopResolved:
			w.setNeighbor(q.dst, int(q.port), h.MAC, true, now)
			for q.head != 0 {
				wf := w.dequeue(q)
				w.send(wf.f, int(q.port), int(wf.in), h.MAC, &wf.r)
			}
		case h.State == HopNoRoute:
			for q.head != 0 {
				w.unreachable(w.dequeue(q), DropNetUnreachable, icmpNetUnreachable)
			}
		case now-q.since >= neighWaitSeconds:
			for q.head != 0 {
				w.unreachable(w.dequeue(q), DropHostUnreachable, icmpHostUnreachable)
			}
		}
	}
	w.releaseDrops()
	if len(w.algOut) > 0 {
		w.toALG()
	}
}

// unreachable drops a frame that waited in vain and answers its sender.
func (w *Worker) unreachable(wf waitFrame, reason DropReason, why icmpReason) {
	w.c.drop[reason]++
	w.tap(wf.f, dropNames[reason])
	if !wf.answer {
		w.drops = append(w.drops, wf.f)
		return
	}
	var p packet.Parsed
	if packet.Parse(wf.f.Buf, &p) != packet.OK {
		w.drops = append(w.drops, wf.f)
		return
	}
	restore(wf.f.Buf, &p, wf.orig)
	w.answer(wf.f, int(wf.in), &p, why, 0)
}

// drainNeighbors releases every waiting frame (the worker stops).
func (w *Worker) drainNeighbors() {
	for i := range w.nq.queues {
		q := &w.nq.queues[i]
		for q.head != 0 {
			wf := w.dequeue(q)
			w.ports[wf.in].Release([]Frame{wf.f})
		}
	}
}

// l3Of returns where the IPv4 header of an Ethernet frame starts (after
// at most one 802.1Q tag, as Parse reads it).
func l3Of(frame []byte) int {
	if packet.Ethernet(frame).EtherType() == packet.EtherTypeVLAN {
		return packet.EthernetLen + packet.VLANLen
	}
	return packet.EthernetLen
}
