package flowtable

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/fastnat/fastnat/internal/hugepage"
)

// ErrConfig is wrapped by New for a Config it cannot honour.
var ErrConfig = errors.New("invalid flow table config")

// Limits of a Config.
const (
	MaxSessions     = 1<<31 - 1 // ids are 31 bits: an index entry is id<<1 | dir
	MaxShards       = 1 << 12
	MaxExpectations = 1 << 24
	// DefaultShards is the shard count for a large table; smaller tables
	// get fewer so that every shard holds at least minShardSessions.
	DefaultShards    = 256
	minShardSessions = 4096
	// MaxWorkers is the largest worker count Expire and Enter accept:
	// the configuration's limit (config.MaxWorkers), so that any
	// dataplane.workers the config allows has a cursor and a reader slot
	// (64 bytes each, 128 KiB a table in all).
	MaxWorkers = 1024
)

// designLoad is the share of index lanes in use when the table holds
// MaxSessions sessions (both keys of each). At this load 96.6 % of the
// keys of a full table sit in their home bucket and 0.8 % lie past the
// second bucket after it (at 0.85: 93 % and 2.6 %, with 0.75 % five or
// more buckets out), which is what LookupBatch's second round and its
// full lookups pay for: 0.75 measured 5-8 % faster batched lookups at 10M
// sessions than 0.85, for 1.6 more bytes per session. The memory budget
// of an index entry is 64/12/0.75 ≈ 7.1 bytes.
const designLoad = 0.75

// Config sizes a Table. All storage is allocated by New.
type Config struct {
	MaxSessions     int // [flows] max; storage is preallocated for exactly this many
	MaxExpectations int // 0 = default max(1024, MaxSessions/64)
	Shards          int // 0 = default; a power of two; lock granularity for writers
}

// Table is the session table shared by all workers. Lookups are lock-free;
// writers lock the one or two shards their keys hash to. See the package
// documentation for the layout and the concurrency rules.
type Table struct {
	seed       uint64 // per-table random hash seed (hash2)
	shardShift uint   // shard = hash >> shardShift
	nbPer      uint32 // buckets per shard
	shardMask  uint32

	hots    []hot    // per session slot: the per-packet path's line
	colds   []cold   // per session slot: the rest
	buckets []bucket // shard s owns buckets[s*nbPer : (s+1)*nbPer]
	shards  []shard
	cursors []cursor // Expire position per worker
	exp     expectations

	// The arrays above hot, cold and buckets, mapped (huge pages) when
	// large; Close unmaps them.
	hotMem    hugepage.Array[hot]
	coldMem   hugepage.Array[cold]
	bucketMem hugepage.Array[bucket]
	closed    atomic.Bool

	// Grace periods (qsbr.go).
	token    atomic.Uint64 // the newest grace token, starts at 1
	safe     atomic.Uint64 // tokens up to this one are reclaimable
	nreaders atomic.Int32  // reader slots in use
	readers  []reader
	aside    reader     // the slot of goroutines that are not workers (EnterAside)
	asideMu  sync.Mutex // one of them at a time
}

// shard is the writer side of one hash shard: its lock, its free list of
// session slots and its counters. The counters of successful writes are
// plain fields written and read (by Stats) under mu — an atomic store is
// a locked instruction on amd64, and a write takes enough of those
// already; refusals, counted outside the lock, are atomic.
type shard struct {
	mu       sync.Mutex
	inserts  uint64
	deletes  uint64
	expired  uint64
	probes   [NumProbeBins]uint64
	maxProbe uint64
	refused  [NumInsertResults]atomic.Uint64
	_        [8]byte // to 128 bytes: the free list gets its own line

	// The free list is a leaf lock: nothing else is locked while freeMu
	// is held, so Insert may take another shard's freeMu while it holds
	// shard locks.
	freeMu sync.Mutex
	// Freed slots wait in a FIFO, oldest first, each for its grace token
	// (cold.pkts[0]); linked through cold.parent.
	freeHead  uint32 // id+1 of the oldest freed slot, 0 none
	freeTail  uint32 // id+1 of the newest
	freeNext  uint32 // never-used ids freeNext..freeEnd-1
	freeEnd   uint32
	freeCount atomic.Int64
	// hint is id+1 of the slot the next pop most likely returns (0:
	// none), stored under freeMu and loaded without it by
	// PrefetchInsert, which only prefetches it.
	hint uint32
	_    [24]byte // to 64 bytes
}

// cursor is one worker's position in its slice of the session array.
type cursor struct {
	pos atomic.Uint32
	_   [60]byte
}

// New allocates a table for cfg.MaxSessions sessions.
func New(cfg Config) (*Table, error) {
	return newSeeded(cfg, rand.Uint64())
}

func newSeeded(cfg Config, seed uint64) (*Table, error) {
	n := cfg.MaxSessions
	if n < 1 || n > MaxSessions {
		return nil, fmt.Errorf("max sessions %d not in 1..%d: %w", n, MaxSessions, ErrConfig)
	}
	shards := cfg.Shards
	if shards == 0 {
		shards = 1
		for shards < DefaultShards && shards*2*minShardSessions <= n {
			shards *= 2
		}
	}
	if shards < 1 || shards > MaxShards || shards&(shards-1) != 0 {
		return nil, fmt.Errorf("shards %d not a power of two in 1..%d: %w", shards, MaxShards, ErrConfig)
	}
	ne := cfg.MaxExpectations
	if ne == 0 {
		ne = max(1024, n/64)
	}
	if ne < 1 || ne > MaxExpectations {
		return nil, fmt.Errorf("max expectations %d not in 1..%d: %w", ne, MaxExpectations, ErrConfig)
	}

	t := &Table{
		seed:       seed,
		shardShift: uint(64 - bits.TrailingZeros(uint(shards))),
		shardMask:  uint32(shards - 1),
		nbPer:      bucketsPerShard(n, shards),
		shards:     make([]shard, shards),
		cursors:    make([]cursor, MaxWorkers),
		readers:    make([]reader, MaxWorkers),
	}
	t.token.Store(1)
	if err := t.allocStorage(n, int(t.nbPer)*shards); err != nil {
		return nil, err
	}
	for s := range t.shards {
		sh := &t.shards[s]
		sh.freeNext = uint32(n * s / shards)
		sh.freeEnd = uint32(n * (s + 1) / shards)
		sh.freeCount.Store(int64(sh.freeEnd - sh.freeNext))
		sh.setHint()
	}
	t.exp.init(ne, seed)
	return t, nil
}

// allocStorage maps the session and index arrays (hugepage: huge pages when
// they are large) and arranges for them to be unmapped if the table is
// dropped without Close.
func (t *Table) allocStorage(sessions, buckets int) error {
	var err error
	if t.hotMem, err = hugepage.Alloc[hot](sessions); err != nil {
		return fmt.Errorf("flow table sessions: %w", err)
	}
	if t.coldMem, err = hugepage.Alloc[cold](sessions); err != nil {
		t.hotMem.Free()
		return fmt.Errorf("flow table sessions: %w", err)
	}
	if t.bucketMem, err = hugepage.Alloc[bucket](buckets); err != nil {
		t.hotMem.Free()
		t.coldMem.Free()
		return fmt.Errorf("flow table index: %w", err)
	}
	t.hots, t.colds, t.buckets = t.hotMem.S, t.coldMem.S, t.bucketMem.S
	frees := [3]func(){t.hotMem.Freer(), t.coldMem.Freer(), t.bucketMem.Freer()}
	runtime.AddCleanup(t, func(fs [3]func()) {
		for _, f := range fs {
			f()
		}
	}, frees)
	return nil
}

// Close unmaps the table's storage. Nothing may use the table after Close
// (the dataplane stops its workers first): every method but Close then
// panics or faults. Close of a closed table does nothing.
func (t *Table) Close() {
	if t.closed.Swap(true) {
		return
	}
	t.hots, t.colds, t.buckets = nil, nil, nil
	t.hotMem.Free()
	t.coldMem.Free()
	t.bucketMem.Free()
}

// Memory describes the table's storage: what each part takes and how
// much of it the kernel backs with huge pages.
type Memory struct {
	Hot, Cold, Index, Expect int64 // bytes of each part
	Huge                     int64 // bytes on huge pages (of Hot, Cold and Index)
}

// Total is the table's storage in bytes.
func (m Memory) Total() int64 { return m.Hot + m.Cold + m.Index + m.Expect }

// Memory reports the table's storage (reads /proc/self/smaps: slow path).
func (t *Table) Memory() Memory {
	return Memory{
		Hot: t.hotMem.Bytes(), Cold: t.coldMem.Bytes(), Index: t.bucketMem.Bytes(), Expect: t.exp.bytes(),
		Huge: t.hotMem.Huge() + t.coldMem.Huge() + t.bucketMem.Huge(),
	}
}

// bucketsPerShard sizes a shard's index for its share of the 2n keys at
// designLoad, plus four standard deviations of the binomial spread of
// keys over shards so that the fullest shard is not much fuller.
func bucketsPerShard(n, shards int) uint32 {
	keys := float64(2*n) / float64(shards)
	lanes := keys/designLoad + 4*math.Sqrt(keys) + bucketLanes
	return uint32(max(2, math.Ceil(lanes/bucketLanes)))
}

// Capacity returns MaxSessions as configured.
func (t *Table) Capacity() int { return len(t.hots) }

func (t *Table) shardOf(h uint64) uint32 { return uint32(h >> t.shardShift) }

// lock2 locks the shards of a session's two keys in index order.
func (t *Table) lock2(a, b uint32) {
	switch {
	case a == b:
		t.shards[a].mu.Lock()
	case a < b:
		t.shards[a].mu.Lock()
		t.shards[b].mu.Lock()
	default:
		t.shards[b].mu.Lock()
		t.shards[a].mu.Lock()
	}
}

func (t *Table) unlock2(a, b uint32) {
	t.shards[a].mu.Unlock()
	if a != b {
		t.shards[b].mu.Unlock()
	}
}

// Range calls fn with a copy of every live session, its id and its
// generation, until fn returns false. It takes no lock: sessions inserted
// or deleted meanwhile may or may not be seen; each copy is validated
// (Read), so fn never sees a torn or reused slot, though the session may
// end while fn runs (for `show sessions`; slow path).
func (t *Table) Range(fn func(id, gen uint32, s Session) bool) {
	var s Session
	for id := range t.hots {
		m := atomic.LoadUint64(&t.hots[id].meta)
		if m&liveBit == 0 {
			continue
		}
		if !t.Read(uint32(id), genOf(m), &s) {
			continue
		}
		if !fn(uint32(id), genOf(m), s) {
			return
		}
	}
}

// NumProbeBins is the length of Stats.Probes.
const NumProbeBins = 5

// Stats is a snapshot of the table's occupancy and counters, summed over
// shards when read.
type Stats struct {
	Sessions       int // live sessions
	Capacity       int // MaxSessions
	Expectations   int // live expectations
	ExpectCapacity int // MaxExpectations
	IndexBuckets   int // 64-byte index buckets, 12 key entries each

	Inserts       uint64 // sessions inserted
	Deletes       uint64 // sessions removed by Delete
	Expired       uint64 // sessions reclaimed by Expire
	InsertFull    uint64 // Insert refused: ErrFull
	InsertExists  uint64 // Insert refused: ErrExists
	InsertSameKey uint64 // Insert refused: ErrSameKey

	ExpectInserts uint64 // expectations stored (including replacements)
	ExpectFull    uint64 // Expect refused: ErrNoExpectSpace
	ExpectMatched uint64 // expectations consumed by MatchExpectation
	ExpectExpired uint64 // expectations dropped unused after their Expires

	// Probes counts index entries by the number of buckets their insert
	// probed (1, 2, 3, 4, 5 or more); a lookup of that key probes as many.
	Probes   [NumProbeBins]uint64
	MaxProbe uint64 // longest probe of any insert, in buckets
}

// Occupancy is Sessions/Capacity.
func (s Stats) Occupancy() float64 { return float64(s.Sessions) / float64(s.Capacity) }

// Stats sums the per-shard counters, taking each shard's lock in turn
// (slow path).
func (t *Table) Stats() Stats {
	st := Stats{Capacity: len(t.hots), IndexBuckets: len(t.buckets)}
	var live int64
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		live += int64(sh.inserts) - int64(sh.deletes) - int64(sh.expired)
		st.Inserts += sh.inserts
		st.Deletes += sh.deletes
		st.Expired += sh.expired
		for b := range st.Probes {
			st.Probes[b] += sh.probes[b]
		}
		st.MaxProbe = max(st.MaxProbe, sh.maxProbe)
		sh.mu.Unlock()
		st.InsertFull += sh.refused[ErrFull].Load()
		st.InsertExists += sh.refused[ErrExists].Load()
		st.InsertSameKey += sh.refused[ErrSameKey].Load()
	}
	st.Sessions = int(live)
	t.exp.stats(&st)
	return st
}
