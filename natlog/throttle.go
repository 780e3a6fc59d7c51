package natlog

import "sync/atomic"

// throttleSlots is the number of keys a Throttle tracks at once.
const throttleSlots = 256

// Throttle lets at most one event per key and second through, so that a
// pool that stays exhausted, or a host that keeps hitting its quota,
// logs once a second instead of once per refused packet. It belongs to
// one producer (a worker), like its Ring; it holds no pointers and never
// allocates. Keys live in a small direct-mapped table: two keys that
// share a slot and alternate are both let through, which errs on the side
// of logging.
type Throttle struct {
	slots      [throttleSlots]struct{ key, sec uint64 }
	suppressed atomic.Uint64 // written by the owner only
}

// ThrottleKey is the key of an event of type t about address addr (a
// public address, an inside host) and protocol or rule x.
func ThrottleKey(t Type, addr uint32, x uint16) uint64 {
	return uint64(t)<<56 | uint64(x)<<32 | uint64(addr)
}

// Allow reports whether an event with key may be logged at nowMS (Unix
// milliseconds); a refused one is counted as suppressed.
func (t *Throttle) Allow(key uint64, nowMS int64) bool {
	h := key * 0x9e3779b97f4a7c15
	s := &t.slots[h>>(64-8)]      // the top 8 bits: throttleSlots = 256
	sec := uint64(nowMS/1000) + 1 // never 0, so an empty slot never matches
	if s.key == key && s.sec == sec {
		t.suppressed.Store(t.suppressed.Load() + 1)
		return false
	}
	s.key, s.sec = key, sec
	return true
}

// Suppressed returns how many events Allow refused; any goroutine may
// call it.
func (t *Throttle) Suppressed() uint64 { return t.suppressed.Load() }
