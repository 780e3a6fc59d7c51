package afxdp

import "sync/atomic"

// ringNeedWakeup is XDP_RING_NEED_WAKEUP, the bit the kernel sets in a
// ring's flags word when it will not look at the ring until woken.
const ringNeedWakeup = 1

// desc is one rx or tx descriptor, laid out as the kernel's struct xdp_desc.
type desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// ring is one single-producer single-consumer ring shared with the kernel:
// the producer and consumer indices live in memory the kernel also writes,
// so they are read and written only with atomic operations (acquire and
// release on every architecture Go supports). This side keeps cached copies
// of both, and reads the other side's index only when the cached view runs
// short, so a burst costs one shared load and one shared store.
//
// The side that produces (fill, tx) owns producer and caches consumer+size
// as cachedCons; the side that consumes (rx, completion) owns consumer and
// caches producer. Indices are free-running uint32s; slot i is i&mask.
type ring struct {
	producer *atomic.Uint32
	consumer *atomic.Uint32
	flags    *atomic.Uint32
	mask     uint32
	size     uint32

	cachedProd uint32
	cachedCons uint32
}

// initProducer prepares a ring this side produces into.
func (r *ring) initProducer() {
	r.cachedProd = r.producer.Load()
	r.cachedCons = r.consumer.Load() + r.size
}

// initConsumer prepares a ring this side consumes from.
func (r *ring) initConsumer() {
	r.cachedProd = r.producer.Load()
	r.cachedCons = r.consumer.Load()
}

// free returns the number of slots a producer may fill, reading the
// kernel's consumer index only if fewer than n are known to be free.
func (r *ring) free(n uint32) uint32 {
	f := r.cachedCons - r.cachedProd
	if f >= n {
		return f
	}
	r.cachedCons = r.consumer.Load() + r.size
	return r.cachedCons - r.cachedProd
}

// submit publishes n produced slots to the kernel.
func (r *ring) submit(n uint32) {
	r.cachedProd += n
	r.producer.Store(r.cachedProd)
}

// pending returns how many produced slots the kernel has not consumed yet.
func (r *ring) pending() uint32 {
	return r.cachedProd - r.consumer.Load()
}

// avail returns up to n slots a consumer may read, reading the kernel's
// producer index only if fewer than n are known to be ready.
func (r *ring) avail(n uint32) uint32 {
	a := r.cachedProd - r.cachedCons
	if a < n {
		r.cachedProd = r.producer.Load()
		a = r.cachedProd - r.cachedCons
	}
	return min(a, n)
}

// release returns n consumed slots to the kernel.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	r.consumer.Store(r.cachedCons)
}

// needWakeup reports whether the kernel asked to be woken for this ring.
func (r *ring) needWakeup() bool {
	return r.flags.Load()&ringNeedWakeup != 0
}
