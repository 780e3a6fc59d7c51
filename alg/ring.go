package alg

import (
	"fmt"
	"sync/atomic"

	"github.com/fastnat/fastnat/flowtable"
)

// Item is one frame travelling between a pipeline worker and the ALG.
type Item struct {
	Buf     []byte        // the whole frame; len = packet length, cap = frame size
	Handle  uint64        // the port's name for the buffer (pipeline.Frame.Handle)
	Session uint32        // the control session's id
	Gen     uint32        // and its generation (nat.Result.Gen)
	Dir     flowtable.Dir // the frame's direction in that session
	Port    uint8         // the worker's output port index, opaque to the ALG
	In      uint8         // the worker's port index the frame arrived on, opaque to the ALG
	MTU     uint16        // the output port's MTU: the largest IPv4 packet the ALG makes; 0: Config.MTU
	Verdict Verdict       // set by the ALG on the way back
	// FragSize, set by the ALG on a datagram it reassembled from
	// fragments, is the IPv4 length of the largest of them: the worker
	// fragments the datagram again to fit it (and the egress MTU), as
	// Linux refragments what it reassembled (frag_max_size).
	FragSize uint16
	// Back, set by the ALG beside a forwarded frame, is a second frame for
	// the first one's sender (the answer to a refused command, a reset):
	// Ethernet header (addresses to be filled in) and IPv4 packet, in the
	// spare capacity of Buf's frame. The worker copies it into a frame of
	// its own and sends it out of port In.
	Back []byte
}

// cacheLine pads the ring's indices apart so that producer and consumer
// do not share a cache line.
const cacheLine = 64

// Ring is a bounded lock-free single-producer/single-consumer queue of
// Items. Exactly one goroutine may call Push and exactly one Pop. The
// producer owns tail, the consumer head; each publishes its index with an
// atomic store after writing or reading the slots, which orders the slot
// accesses (Go memory model: a store happens before the load that
// observes it). Each side caches the other's index and reloads it only
// when the ring looks full (or empty), so a busy ring costs one shared
// cache-line transfer per batch, not per item.
type Ring struct {
	_         [cacheLine]byte
	head      atomic.Uint64 // next slot to read; written by the consumer
	tailCache uint64        // consumer's copy of tail
	_         [cacheLine - 16]byte
	tail      atomic.Uint64 // next slot to write; written by the producer
	headCache uint64        // producer's copy of head
	_         [cacheLine - 16]byte
	mask      uint64
	items     []Item
}

// NewRing returns a ring of size slots; size must be a power of two
// between 2 and 1<<20.
func NewRing(size int) (*Ring, error) {
	if size < 2 || size > 1<<20 || size&(size-1) != 0 {
		return nil, fmt.Errorf("ring size %d is not a power of two in 2-%d: %w", size, 1<<20, ErrConfig)
	}
	return &Ring{mask: uint64(size - 1), items: make([]Item, size)}, nil
}

// Cap returns the number of slots.
func (r *Ring) Cap() int { return len(r.items) }

// Len returns the number of items queued (a snapshot; exact only from the
// producer or the consumer goroutine when the other is idle).
func (r *Ring) Len() int { return int(r.tail.Load() - r.head.Load()) }

// Push copies as many of items as fit into the ring and returns how many;
// the caller keeps the rest. Producer only. It never blocks.
func (r *Ring) Push(items []Item) int {
	t := r.tail.Load()
	free := uint64(len(r.items)) - (t - r.headCache)
	if free < uint64(len(items)) {
		r.headCache = r.head.Load()
		free = uint64(len(r.items)) - (t - r.headCache)
	}
	n := min(uint64(len(items)), free)
	for i := uint64(0); i < n; i++ {
		r.items[(t+i)&r.mask] = items[i]
	}
	if n > 0 {
		r.tail.Store(t + n)
	}
	return int(n)
}

// Pop moves up to len(items) queued items into items and returns how
// many. Consumer only. It never blocks.
func (r *Ring) Pop(items []Item) int {
	h := r.head.Load()
	avail := r.tailCache - h
	if avail < uint64(len(items)) {
		r.tailCache = r.tail.Load()
		avail = r.tailCache - h
	}
	n := min(uint64(len(items)), avail)
	for i := uint64(0); i < n; i++ {
		s := &r.items[(h+i)&r.mask]
		items[i] = *s
		s.Buf, s.Back = nil, nil // the frame now belongs to the consumer
	}
	if n > 0 {
		r.head.Store(h + n)
	}
	return int(n)
}
