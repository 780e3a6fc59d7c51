package flowtable

import (
	"fmt"
	"sync/atomic"
)

// Expire reclaims expired sessions incrementally. Worker w of n owns the
// slots [w*C/n, (w+1)*C/n) of the session array (C = capacity) and keeps a
// cursor in it; each call examines the next budget slots, wrapping around,
// so workers never contend for the same slots and no call sweeps the
// table. A session is expired when now - LastSeen >= its timeout. For each
// one reclaimed, Expire removes it from the index, calls onExpire (may be
// nil) outside any lock and only then recycles the slot, so onExpire may
// read the session and call any Table method. Worker 0 also drops up to
// budget expired expectations. It returns the number of sessions
// reclaimed.
//
// onExpire receives the session's id, the generation it lived with and a
// copy of it; the slot is still unused while onExpire runs, so State,
// Counters and LastSeen of id still read the ended session's values.
//
// A session expires at most C/(n*budget) calls after its deadline; choose
// budget so that this delay is acceptable (e.g. 64 slots per burst).
func (t *Table) Expire(now Time, worker, workers, budget int, onExpire func(id, gen uint32, s Session)) int {
	if workers < 1 || workers > MaxWorkers || worker < 0 || worker >= workers {
		panic(fmt.Sprintf("flowtable: Expire worker %d of %d", worker, workers))
	}
	c := uint64(len(t.hots))
	lo := uint32(c * uint64(worker) / uint64(workers))
	hi := uint32(c * uint64(worker+1) / uint64(workers))
	if worker == 0 {
		t.exp.expire(now, budget)
	}
	if lo == hi {
		return 0
	}
	cur := &t.cursors[worker].pos
	pos := cur.Load()
	if pos < lo || pos >= hi {
		pos = lo
	}
	n := 0
	for range budget {
		id := pos
		if pos++; pos == hi {
			pos = lo
		}
		e := &t.hots[id]
		m := atomic.LoadUint64(&e.meta)
		if m&liveBit == 0 || !expired(e, now) {
			continue
		}
		if t.unpublish(id, genOf(m), expiry, now, onExpire) {
			n++
		}
	}
	cur.Store(pos)
	return n
}
