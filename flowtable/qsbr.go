package flowtable

import "sync/atomic"

// Grace periods (quiescent-state-based reclamation, as DPDK's RCU QSBR
// library does it) keep a freed slot from being reused while a worker
// may still write to it. The per-packet path stores into a session's hot
// line (Touch, SetState, SetTrack) after validating the session, and the
// two steps are not one atomic operation: without more, the session could
// expire and its slot be filled by a new session between them, and the
// store would land on the new one. So a worker brackets every poll with
// Enter and Leave, and a freed slot waits on its shard's free list,
// tagged with the grace token current when it was freed, until every
// worker that was inside a poll then has left it.
//
// Enter publishes the newest token in the worker's reader slot with a
// sequentially consistent store (one locked instruction per poll, not
// per packet), so that either the freeing writer's scan sees the worker
// inside with an older token, or the worker's loads come after the
// writer's unlinking and cannot find the slot. Leave stores 0: a worker
// between polls, asleep or stopped holds no session and delays nothing.
// Callers that never Enter (tests, the control socket) only read, and
// every read is validated — or they free, which needs no grace period
// (unpublish checks the generation under the shard locks, and nothing is
// reused before free). A goroutine that is not a worker and stores into a
// session (SetState) brackets the check and the store with EnterAside
// and LeaveAside.

// reader is one worker's grace-period slot, alone on its cache line.
type reader struct {
	token atomic.Uint64 // 0: outside a poll; else the token seen at Enter
	_     [56]byte
}

// Enter marks worker w (0 ≤ w < MaxWorkers) as inside a poll: sessions it
// validates from now until Leave keep their slots.
func (t *Table) Enter(w int) {
	if int32(w) >= t.nreaders.Load() {
		t.addReader(w)
	}
	t.readers[w].token.Store(t.token.Load())
}

// Leave marks worker w as outside any poll.
func (t *Table) Leave(w int) { t.readers[w].token.Store(0) }

// EnterAside is Enter for a goroutine that is not a worker but stores
// into a session it names by id and generation (the ALG's reset of a
// control connection, nat.ResetSession): between it and LeaveAside the
// session it validates keeps its slot, so that the store after the check
// never lands on the slot's next session. Such goroutines share one
// reader slot and take turns; keep the bracket short.
func (t *Table) EnterAside() {
	t.asideMu.Lock()
	t.aside.token.Store(t.token.Load())
}

// LeaveAside ends what EnterAside began.
func (t *Table) LeaveAside() {
	t.aside.token.Store(0)
	t.asideMu.Unlock()
}

// addReader raises the number of reader slots Reclaimable scans.
func (t *Table) addReader(w int) {
	for {
		n := t.nreaders.Load()
		if int32(w) < n || t.nreaders.CompareAndSwap(n, int32(w)+1) {
			return
		}
	}
}

// retire returns the grace token a slot freed now waits for.
func (t *Table) retire() uint64 { return t.token.Add(1) }

// reclaimable reports whether a slot that waits for token tok may be
// reused: every worker inside a poll entered it after tok was handed
// out. The answer is cached: most calls cost one load.
func (t *Table) reclaimable(tok uint64) bool {
	if tok <= t.safe.Load() {
		return true
	}
	// Read the token first: a worker that enters after this load sees
	// at least this token, so nothing it finds can be older.
	s := t.token.Load()
	for i := range t.nreaders.Load() {
		if v := t.readers[i].token.Load(); v != 0 && v < s {
			s = v
		}
	}
	if v := t.aside.token.Load(); v != 0 && v < s {
		s = v
	}
	for {
		old := t.safe.Load()
		if s <= old || t.safe.CompareAndSwap(old, s) {
			break
		}
	}
	return tok <= s
}
