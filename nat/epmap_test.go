package nat

import (
	"math/rand/v2"
	"testing"
)

// checkShards asserts epMap's invariant: every entry is reachable from
// its home slot without crossing an empty one (what backward-shift
// deletion keeps without tombstones), and each shard's count is its
// entries.
func checkShards[V any](t *testing.T, m *epMap[V]) {
	t.Helper()
	for si := range m.shards {
		sh := &m.shards[si]
		n := 0
		for i, e := range sh.slots {
			if e.key == 0 {
				continue
			}
			n++
			h := m.hash(e.key)
			if m.shard(h) != sh {
				t.Fatalf("shard %d slot %d: key %#x belongs to another shard", si, i, e.key)
			}
			for j := sh.home(h); j != i; j = (j + 1) % len(sh.slots) {
				if sh.slots[j].key == 0 {
					t.Fatalf("shard %d: key %#x at slot %d is cut off from its home %d by empty slot %d", si, e.key, i, sh.home(h), j)
				}
			}
		}
		if n != sh.n {
			t.Fatalf("shard %d counts %d entries, holds %d", si, sh.n, n)
		}
	}
}

// TestEpMapAgainstMap drives an epMap and a Go map (the oracle) with the
// same random inserts, updates, lookups and deletes — a small key space,
// so that probe sequences collide, wrap around the shard's end and
// shift back on deletion — and checks that they agree after every step
// and that the probe invariant holds.
func TestEpMapAgainstMap(t *testing.T) {
	for _, capacity := range []int{1, 64, 5000} {
		var m epMap[uint32]
		if err := m.init(capacity, rand.Uint64()); err != nil {
			t.Fatal(err)
		}
		oracle := map[bindKey]uint32{}
		rng := rand.New(rand.NewPCG(1, uint64(capacity)))
		keys := 2 * capacity
		for step := range 20 * keys {
			k := bindKey{addr: 0x0a000000 + rng.Uint32N(uint32(keys)/4+1), port: uint16(rng.IntN(4)), class: uint8(rng.IntN(3))}
			w := k.word()
			h := m.hash(w)
			sh := m.lock(h)
			i, found := sh.find(h, w)
			want, inOracle := oracle[k]
			if found != inOracle || found && sh.slots[i].val != want {
				t.Fatalf("capacity %d step %d: %v found %v (%d), oracle %v (%d)", capacity, step, k, found, sh.slots[i].val, inOracle, want)
			}
			switch {
			case found && rng.IntN(2) == 0:
				sh.remove(&m, i)
				delete(oracle, k)
			case found:
				sh.slots[i].val = uint32(step)
				oracle[k] = uint32(step)
			case !sh.full() && len(oracle) < capacity:
				sh.put(i, w, uint32(step))
				oracle[k] = uint32(step)
			}
			sh.mu.Unlock()
			if step%(keys/16+1) == 0 {
				checkShards(t, &m)
			}
		}
		checkShards(t, &m)
		if m.count() != len(oracle) {
			t.Fatalf("capacity %d: %d entries, oracle %d", capacity, m.count(), len(oracle))
		}
	}
}

// TestEpMapFullShardRefuses: a shard keeps one slot empty, so that every
// probe ends; beyond that put is refused (full), and what is there stays
// found.
func TestEpMapFullShardRefuses(t *testing.T) {
	var m epMap[uint32]
	if err := m.init(1, 7); err != nil {
		t.Fatal(err)
	}
	sh0 := &m.shards[0]
	var stored []uint64
	for a := uint32(1); !sh0.full(); a++ {
		w := bindKey{addr: a, port: 1, class: classUDP}.word()
		h := m.hash(w)
		if m.shard(h) != sh0 {
			continue
		}
		sh := m.lock(h)
		i, _ := sh.find(h, w)
		sh.put(i, w, a)
		sh.mu.Unlock()
		stored = append(stored, w)
	}
	if len(stored) != len(sh0.slots)-1 {
		t.Fatalf("full at %d entries of %d slots", len(stored), len(sh0.slots))
	}
	for _, w := range stored {
		if _, ok := sh0.find(m.hash(w), w); !ok {
			t.Fatalf("%#x lost", w)
		}
	}
	checkShards(t, &m)
}

// TestEpMapSizing: a map for a table of n sessions has room for n
// entries in every shard's share with the margin init promises, and its
// memory is what Memory reports.
func TestEpMapSizing(t *testing.T) {
	for _, n := range []int{1, 1000, 1 << 16} {
		var m epMap[binding]
		if err := m.init(n, 1); err != nil {
			t.Fatal(err)
		}
		share := n / epShards
		for i := range m.shards {
			if l := len(m.shards[i].slots); float64(share) > epDesignLoad*float64(l) {
				t.Fatalf("n %d: shard %d has %d slots for a share of %d", n, i, l, share)
			}
		}
		if got, min := m.bytes(), int64(len(m.mem.S))*32; got < min {
			t.Fatalf("n %d: %d bytes for %d 32-byte slots", n, got, len(m.mem.S))
		}
	}
}

// TestAcquireOnFullShard: a binding whose shard is full is refused with
// DropTableFull before a port is claimed for it (alloc is not called),
// and a public endpoint whose shard is full is not added.
func TestAcquireOnFullShard(t *testing.T) {
	var pub publicMap
	b := bindings{pub: &pub}
	if err := b.init(1, 3); err != nil {
		t.Fatal(err)
	}
	if err := pub.init(1, 5); err != nil {
		t.Fatal(err)
	}
	// Fill the shard of one inside endpoint with others.
	k := bindKey{addr: 0x0a000001, port: 1000, class: classUDP}
	fillShardOf(&b.epMap, k, func(bindKey) binding { return binding{refs: 1} })
	called := false
	_, _, made, v := b.acquire(k, b.hash(k.word()), func() (binding, Verdict) {
		called = true
		return binding{pubAddr: 1, pubPort: 2}, Forward
	})
	if v != DropTableFull || made || called {
		t.Fatalf("acquire on a full shard: verdict %v, made %v, alloc called %v", v, made, called)
	}
	// The same for the public map.
	fillShardOf(&pub.epMap, k, func(o bindKey) bindKey { return o })
	if pub.add(k, bindKey{addr: 9}) {
		t.Fatal("added to a full shard")
	}
	if _, ok := pub.lookup(k); ok {
		t.Fatal("found what a full shard refused")
	}
}

// fillShardOf fills the shard of k with other endpoints, each with the
// value val gives it, until the shard is full.
func fillShardOf[V any](m *epMap[V], k bindKey, val func(bindKey) V) {
	target := m.shard(m.hash(k.word()))
	for a := uint32(0x0b000000); !target.full(); a++ {
		o := bindKey{addr: a, port: 1, class: classUDP}
		w := o.word()
		h := m.hash(w)
		if m.shard(h) != target {
			continue
		}
		i, _ := target.find(h, w)
		target.put(i, w, val(o))
	}
}
