package nat

import (
	"fmt"
	"math"
	"sync"

	"github.com/fastnat/fastnat/internal/hugepage"
)

// epMap is the hash table behind the endpoint-independent bindings and
// the public-endpoint map: from an endpoint of one port class (bindKey)
// to a value V, split over epShards shards that each have a mutex and a
// table of their own. It is made for the slow path's shared maps, which
// every session creation writes and every session end may:
//
//   - Pointer-free and flat: a slot is the endpoint packed into one word
//     (0 marks an empty slot) and the value inline, in one array for all
//     shards, mapped outside the Go heap (internal/hugepage, populated
//     at once like the flow table's), so nothing in it is scanned by the
//     collector and nothing is allocated per insert.
//   - Sized up front from the flow table's capacity: a binding or
//     public endpoint lives only while a session holds it, so neither map
//     holds more entries than the table holds sessions (and the few a
//     creation holds for a moment before its insert). A shard gets its
//     share of that capacity plus four standard deviations of the
//     binomial spread of keys over shards, at epDesignLoad. So a shard
//     fills only with more than a third beyond its share of a full flow
//     table (16 standard deviations at 65,536 sessions, 48 at 1M); a
//     hash flood would have to aim at a seed it cannot know. A full
//     shard refuses the insert (full; a creation gets DropTableFull),
//     and the arrays never move, so that a creation may prefetch a slot
//     before it locks the shard.
//   - Linear probing from a home slot that the hash's low bits pick by
//     multiply-shift (any table size, no power of two to round to),
//     under a per-map random seed. Deletion shifts the entries after the
//     hole back (Knuth's algorithm R), so there are no tombstones and a
//     lookup's probe stays as short as the live entries make it.
//
// The caller hashes a key (hash), may prefetch its home slot (prefetch),
// locks its shard (lock), works on it (find, put, remove) and unlocks it;
// an entry's slot index is valid only while the lock is held.
type epMap[V any] struct {
	seed   uint64
	shards [epShards]epShard[V]
	mem    hugepage.Array[epSlot[V]]
}

const (
	epShardBits  = 6
	epShards     = 1 << epShardBits
	epDesignLoad = 0.75
)

type epSlot[V any] struct {
	key uint64 // bindKey.word(); 0: empty
	val V
}

type epShard[V any] struct {
	mu    sync.Mutex
	slots []epSlot[V] // its part of mem, fixed by init
	n     int         // entries
	_     [24]byte    // to 64 bytes
}

// word packs k into a slot's key: never 0.
func (k bindKey) word() uint64 {
	return uint64(k.addr)<<32 | uint64(k.port)<<16 | uint64(k.class)<<8 | 1
}

// init sizes m for a flow table of capacity sessions, under seed.
func (m *epMap[V]) init(capacity int, seed uint64) error {
	share := float64(capacity) / epShards
	per := int(math.Ceil((share + 4*math.Sqrt(share) + 8) / epDesignLoad))
	mem, err := hugepage.Alloc[epSlot[V]](per * epShards)
	if err != nil {
		return fmt.Errorf("endpoint map: %w", err)
	}
	m.seed, m.mem = seed, mem
	for i := range m.shards {
		m.shards[i].slots = mem.S[i*per : (i+1)*per : (i+1)*per]
	}
	return nil
}

// hash mixes w under the map's seed (MurmurHash3's 64-bit finalizer).
func (m *epMap[V]) hash(w uint64) uint64 { return epHash(m.seed, w) }

// epHash is hash, a plain function so that the maps' concrete callers
// inline it (a generic method is called through its shape's dictionary).
func epHash(seed, w uint64) uint64 {
	h := w ^ seed
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// shard is the shard of keys of hash h.
func (m *epMap[V]) shard(h uint64) *epShard[V] { return &m.shards[epShardOf(h)] }

// lock locks the shard of keys of hash h and returns it; the caller
// unlocks sh.mu.
func (m *epMap[V]) lock(h uint64) *epShard[V] {
	sh := m.shard(h)
	sh.mu.Lock()
	return sh
}

// home is the first slot a key of hash h probes.
func (s *epShard[V]) home(h uint64) int { return epHome(h, len(s.slots)) }

// epHome is home for a shard of n slots (see epHash).
func epHome(h uint64, n int) int { return int(uint64(uint32(h)) * uint64(n) >> 32) }

// epShardOf is the index of the shard of keys of hash h.
func epShardOf(h uint64) uint64 { return h >> (64 - epShardBits) }

// find returns the slot holding key w (of hash h) and true, or the empty
// slot where it would go and false.
func (s *epShard[V]) find(h, w uint64) (int, bool) {
	n := len(s.slots)
	i := s.home(h)
	for {
		switch s.slots[i].key {
		case w:
			return i, true
		case 0:
			return i, false
		}
		if i++; i == n {
			i = 0
		}
	}
}

// full reports whether the shard refuses another entry: one slot stays
// empty, so that every probe ends.
func (s *epShard[V]) full() bool { return s.n+2 > len(s.slots) }

// put stores key w with v in empty slot i, which find returned; the
// shard is not full.
func (s *epShard[V]) put(i int, w uint64, v V) {
	s.slots[i] = epSlot[V]{key: w, val: v}
	s.n++
}

// remove empties slot i of a shard of m and moves back the entries after it that may
// move (Knuth's algorithm R: an entry moves into the hole unless its
// home lies cyclically after the hole), so that every entry stays
// reachable from its home without tombstones.
func (s *epShard[V]) remove(m *epMap[V], i int) {
	n := len(s.slots)
	for j := i; ; {
		if j++; j == n {
			j = 0
		}
		k := s.slots[j].key
		if k == 0 {
			break
		}
		home := s.home(m.hash(k))
		if (j-home+n)%n >= (j-i+n)%n {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = epSlot[V]{}
	s.n--
}

// count returns the number of entries.
func (m *epMap[V]) count() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// bytes is the memory the map holds.
func (m *epMap[V]) bytes() int64 { return m.mem.Bytes() }
