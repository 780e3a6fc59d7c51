package pipeline

import (
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// Early fragments: a non-first fragment that arrives before its datagram's
// first fragment gets the verdict Hold. The worker keeps it in a ring of
// holdMax frames, oldest first (an eighth of the frame space, so held
// fragments never starve reception), for up to nat.FragTimeout seconds;
// when the ring is full the oldest is dropped to make room
// (frag_held_evicted), and one that waited the whole timeout is dropped as
// frag_held_expired. When the engine reports a datagram Released (its
// first fragment passed), the worker runs that datagram's held fragments
// through the engine again and sends them.

type heldFrame struct {
	f     Frame
	key   nat.FragKey
	port  uint8
	live  bool
	since flowtable.Time
}

// holdRing is the worker's held fragments. Slots between head and tail
// that are no longer live were released out of order.
type holdRing struct {
	slots      []heldFrame // a power of two of them
	head, tail uint32      // positions, modulo len(slots)
	live       int
}

func (h *holdRing) at(pos uint32) *heldFrame { return &h.slots[pos&uint32(len(h.slots)-1)] }

// hold keeps an early fragment received on port pi.
func (w *Worker) hold(f Frame, pi int, p *packet.Parsed, now flowtable.Time) {
	h := &w.held
	h.trim()
	if h.tail-h.head == uint32(len(h.slots)) {
		old := h.at(h.head)
		h.head++
		h.live--
		w.c.drop[DropFragHeldEvicted]++
		w.drop(old.f, dropNames[DropFragHeldEvicted])
		h.trim()
	}
	*h.at(h.tail) = heldFrame{f: f, key: nat.FragKeyOf(p), port: uint8(pi), live: true, since: now}
	h.tail++
	h.live++
	w.c.held++
}

// trim advances head past slots already released.
func (h *holdRing) trim() {
	for h.head != h.tail && !h.at(h.head).live {
		h.head++
	}
}

// retryHeld runs the held fragments of the released datagrams (every one
// when all) through the engine again; those still held stay.
func (w *Worker) retryHeld(keys []nat.FragKey, all bool, now flowtable.Time) {
	h := &w.held
	for pos := h.head; pos != h.tail; pos++ {
		hf := h.at(pos)
		if !hf.live || !all && !released(keys, hf.key) {
			continue
		}
		var p packet.Parsed
		var r nat.Result
		if res := packet.Parse(hf.f.Buf, &p); res != packet.OK {
			hf.live = false
			h.live--
			w.c.parse[res]++
			w.drop(hf.f, parseDropNames[res])
			continue
		}
		w.engine.SetIngress(uint16(hf.port))
		w.engine.Process(hf.f.Buf, &p, w.sides[hf.port], now, &r)
		if r.Verdict == nat.Hold {
			continue
		}
		hf.live = false
		h.live--
		w.dispatch(hf.f, int(hf.port), &p, &r, now)
	}
	h.trim()
	w.releaseDrops()
	if len(w.algOut) > 0 {
		w.toALG()
	}
}

func released(keys []nat.FragKey, k nat.FragKey) bool {
	for i := range keys {
		if keys[i] == k {
			return true
		}
	}
	return false
}

// expireHeld drops held fragments that waited nat.FragTimeout seconds.
func (w *Worker) expireHeld(now flowtable.Time) {
	h := &w.held
	for h.head != h.tail {
		hf := h.at(h.head)
		if hf.live {
			if now-hf.since <= nat.FragTimeout {
				break
			}
			hf.live = false
			h.live--
			w.c.drop[DropFragHeldExpired]++
			w.drop(hf.f, dropNames[DropFragHeldExpired])
		}
		h.head++
	}
	w.releaseDrops()
}

// drainHeld releases every held frame (the worker stops).
func (w *Worker) drainHeld() {
	h := &w.held
	for ; h.head != h.tail; h.head++ {
		if hf := h.at(h.head); hf.live {
			hf.live = false
			w.ports[hf.port].Release([]Frame{hf.f})
		}
	}
	h.live = 0
}
