package natlog

import (
	"fmt"
	"sync/atomic"
)

// cacheLine pads a ring's indices apart so that its producer and consumer
// do not write the same cache line.
const cacheLine = 64

// Ring limits.
const (
	MinRing = 64
	MaxRing = 1 << 22
)

// Ring is a bounded lock-free queue of Events with one producer and one
// consumer. A worker is the producer of its own ring: Push copies an
// event into the next slot and publishes it with one atomic store; when
// the ring is full it drops the event and counts it, and never waits. The
// consumer (the Hub) drains with Pop. A producer that calls often may
// Stage events and Publish them together instead.
//
// The producer owns tail and dropped, the consumer head; each caches the
// other's index and reloads it only when the ring looks full (or empty),
// so a busy ring costs one shared cache-line transfer per batch, not per
// event. The slots are a pointer-free array allocated once.
type Ring struct {
	_         [cacheLine]byte
	head      atomic.Uint64 // next slot to read; written by the consumer
	tailCache uint64        // consumer's copy of tail
	_         [cacheLine - 16]byte
	tail      atomic.Uint64 // next slot the consumer may not read yet; written by the producer
	headCache uint64        // producer's copy of head
	dropped   atomic.Uint64 // events Push could not queue; written by the producer
	staged    uint64        // next slot to write: tail plus what Stage wrote and Publish has not published
	_         [cacheLine - 32]byte
	mask      uint64
	slots     []Event
}

// NewRing returns a ring of size slots, a power of two from MinRing to
// MaxRing.
func NewRing(size int) (*Ring, error) {
	if size < MinRing || size > MaxRing || size&(size-1) != 0 {
		return nil, fmt.Errorf("event ring of %d slots: %w (a power of two from %d to %d)", size, ErrConfig, MinRing, MaxRing)
	}
	return &Ring{mask: uint64(size - 1), slots: make([]Event, size)}, nil
}

// Push queues a copy of *e and reports whether there was room; a full
// ring counts the event as dropped instead. Producer only; it never
// blocks and never allocates.
func (r *Ring) Push(e *Event) bool {
	ok := r.Stage(e)
	r.Publish()
	return ok
}

// Stage is Push without publishing: the copy waits, invisible to the
// consumer, until the producer's next Publish (or Push). A worker stages
// a poll's events and publishes them once at its end, so the index line
// the consumer reads moves between the cores once a poll, not once an
// event. Producer only.
func (r *Ring) Stage(e *Event) bool {
	t := r.staged
	if t-r.headCache > r.mask {
		r.headCache = r.head.Load()
		if t-r.headCache > r.mask {
			// One writer: a load and a store count exactly, without a
			// locked read-modify-write.
			r.dropped.Store(r.dropped.Load() + 1)
			return false
		}
	}
	r.slots[t&r.mask] = *e
	r.staged = t + 1
	return true
}

// Publish makes every staged event visible to the consumer. Producer
// only; it stores nothing when nothing was staged.
func (r *Ring) Publish() {
	if t := r.staged; t != r.tail.Load() {
		r.tail.Store(t)
	}
}

// Pop moves up to len(dst) queued events into dst, oldest first, and
// returns how many. Consumer only; it never blocks.
func (r *Ring) Pop(dst []Event) int {
	h := r.head.Load()
	if r.tailCache-h < uint64(len(dst)) {
		r.tailCache = r.tail.Load()
	}
	n := min(r.tailCache-h, uint64(len(dst)))
	for i := uint64(0); i < n; i++ {
		dst[i] = r.slots[(h+i)&r.mask]
	}
	if n > 0 {
		r.head.Store(h + n)
	}
	return int(n)
}

// Cap returns the number of slots.
func (r *Ring) Cap() int { return len(r.slots) }

// Len returns the number of events queued: a snapshot, exact only on the
// producer's or the consumer's goroutine while the other is idle.
func (r *Ring) Len() int { return int(r.tail.Load() - r.head.Load()) }

// RingStats counts what a ring's producer offered.
type RingStats struct {
	Queued  uint64 // events pushed into the ring since it was made
	Dropped uint64 // events refused because the ring was full
}

// Stats returns the ring's counters; any goroutine may call it.
func (r *Ring) Stats() RingStats {
	return RingStats{Queued: r.tail.Load(), Dropped: r.dropped.Load()}
}
