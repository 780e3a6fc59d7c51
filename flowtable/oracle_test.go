package flowtable

import (
	"math/rand/v2"
	"testing"

	"github.com/fastnat/fastnat/packet"
)

// oracle is the slow, obvious flow table: Go maps, one goroutine.
type oracle struct {
	cap      int
	byKey    map[packet.Tuple]oracleHit
	sessions map[uint32]*oracleSession
	counts   map[InsertResult]uint64
	deletes  uint64
	expired  uint64
}

type oracleHit struct {
	id  uint32
	dir Dir
}

type oracleSession struct {
	keys    [2]packet.Tuple
	seen    Time
	timeout uint32
}

func newOracle(capacity int) *oracle {
	return &oracle{cap: capacity, byKey: map[packet.Tuple]oracleHit{},
		sessions: map[uint32]*oracleSession{}, counts: map[InsertResult]uint64{}}
}

// insertResult predicts Insert's result.
func (o *oracle) insertResult(k [2]packet.Tuple) InsertResult {
	_, e0 := o.byKey[k[0]]
	_, e1 := o.byKey[k[1]]
	switch {
	case k[0] == k[1]:
		return ErrSameKey
	case e0 || e1:
		return ErrExists
	case len(o.sessions) == o.cap:
		return ErrFull
	}
	return Inserted
}

func (o *oracle) insert(id uint32, k [2]packet.Tuple, timeout uint32, now Time) {
	o.sessions[id] = &oracleSession{keys: k, seen: now, timeout: timeout}
	o.byKey[k[0]] = oracleHit{id, Orig}
	o.byKey[k[1]] = oracleHit{id, Reply}
}

func (o *oracle) remove(id uint32) {
	s := o.sessions[id]
	delete(o.byKey, s.keys[0])
	delete(o.byKey, s.keys[1])
	delete(o.sessions, id)
}

// opsRun drives a Table and the oracle with the same random operations
// and fails at the first difference. Every key and session field is
// compared periodically, along with the index invariants.
type opsRun struct {
	t    testing.TB
	tb   *Table
	o    *oracle
	keys []packet.Tuple
	now  Time
}

// newOpsRun builds a table and its oracle. nbPer, if not 0, shrinks the
// index to that many buckets per shard, to force long probe sequences.
func newOpsRun(t testing.TB, capacity, shards, nbPer, universe int) *opsRun {
	r := &opsRun{t: t, tb: mustNew(t, Config{MaxSessions: capacity, Shards: shards}), o: newOracle(capacity)}
	if nbPer != 0 {
		r.tb.nbPer = uint32(nbPer)
		r.tb.buckets = make([]bucket, nbPer*len(r.tb.shards))
	}
	for i := range uint64(universe) {
		r.keys = append(r.keys, origKey(i), replyKey(i))
	}
	return r
}

func (r *opsRun) insert(a, b int, timeout uint32) {
	k := [2]packet.Tuple{r.keys[a%len(r.keys)], r.keys[b%len(r.keys)]}
	want := r.o.insertResult(k)
	s := &Session{Key: k, Parent: uint32(a), App: uint8(b)}
	id, _, got := r.tb.Insert(s, 0, timeout, r.now)
	if got != want {
		r.t.Fatalf("Insert(%v) = %v, oracle %v", k, got, want)
	}
	r.o.counts[got]++
	if got == Inserted {
		if _, live := r.o.sessions[id]; live {
			r.t.Fatalf("Insert returned live id %d", id)
		}
		r.o.insert(id, k, timeout, r.now)
	}
}

func (r *opsRun) delete(id uint32) {
	_, live := r.o.sessions[id]
	if got := r.tb.Delete(id); got != live {
		r.t.Fatalf("Delete(%d) = %v, oracle %v", id, got, live)
	}
	if live {
		r.o.remove(id)
		r.o.deletes++
	}
}

func (r *opsRun) lookup(k packet.Tuple) {
	id, dir, ok := r.tb.Lookup(k)
	w, wok := r.o.byKey[k]
	if ok != wok || ok && (id != w.id || dir != w.dir) {
		r.t.Fatalf("Lookup(%+v) = %d %v %v, oracle %+v %v", k, id, dir, ok, w, wok)
	}
}

// lookupBatch looks every key of the universe up with LookupBatch, in
// one call (its pipeline runs across the call, not per burst) and checks
// the hits against the oracle, generations included.
func (r *opsRun) lookupBatch() {
	hits := make([]Hit, len(r.keys))
	r.tb.LookupBatch(r.keys, hits)
	for i, k := range r.keys {
		w, wok := r.o.byKey[k]
		h := hits[i]
		if h.Found != wok || wok && (h.ID != w.id || h.Dir != w.dir || !r.tb.Valid(h.ID, h.Gen)) {
			r.t.Fatalf("LookupBatch[%d] (%+v) = %+v, oracle %+v %v", i, k, h, w, wok)
		}
	}
}

func (r *opsRun) touch(id uint32) {
	if s, live := r.o.sessions[id]; live {
		r.tb.Touch(id, Reply, 1, r.now)
		s.seen = r.now
	}
}

// expireAll runs a full pass of two workers and checks that exactly the
// oracle's expired sessions were reported, once each.
func (r *opsRun) expireAll() {
	want := map[uint32]bool{}
	for id, s := range r.o.sessions {
		if int32(uint32(r.now)-uint32(s.seen)) >= int32(s.timeout) {
			want[id] = true
		}
	}
	got := map[uint32]bool{}
	n := 0
	for w := range 2 {
		n += r.tb.Expire(r.now, w, 2, r.o.cap, func(id, _ uint32, s Session) {
			if got[id] || !want[id] || s.Key != r.o.sessions[id].keys {
				r.t.Fatalf("onExpire(%d) unexpected (twice %v, expected %v)", id, got[id], want[id])
			}
			got[id] = true
		})
	}
	if n != len(want) || len(got) != len(want) {
		r.t.Fatalf("Expire reclaimed %d (reported %d), oracle %d", n, len(got), len(want))
	}
	for id := range want {
		r.o.remove(id)
		r.o.expired++
	}
}

// verify compares every key and live session, the index invariants and
// the counters.
func (r *opsRun) verify() {
	for _, k := range r.keys {
		r.lookup(k)
	}
	r.lookupBatch()
	for id, s := range r.o.sessions {
		var g Session
		if !r.tb.Read(id, r.tb.Gen(id), &g) || g.Key != s.keys {
			r.t.Fatalf("Read(%d) = %v, oracle keys %v", id, g, s.keys)
		}
		if r.tb.LastSeen(id) != s.seen {
			r.t.Fatalf("LastSeen(%d) = %d, oracle %d", id, r.tb.LastSeen(id), s.seen)
		}
	}
	checkIndex(r.t, r.tb)
	st := r.tb.Stats()
	o := r.o
	if st.Inserts != o.counts[Inserted] || st.InsertFull != o.counts[ErrFull] || st.InsertExists != o.counts[ErrExists] ||
		st.InsertSameKey != o.counts[ErrSameKey] || st.Deletes != o.deletes || st.Expired != o.expired ||
		st.Sessions != len(o.sessions) {
		r.t.Fatalf("Stats %+v, oracle %v deletes %d expired %d live %d", st, o.counts, o.deletes, o.expired, len(o.sessions))
	}
}

// step performs one random operation chosen by op.
func (r *opsRun) step(op, a, b uint32) {
	switch op % 16 {
	case 0, 1, 2, 3, 4, 5, 6:
		if b%4 != 0 { // mostly a flow's own pair of keys, so the table fills
			f := int(a) % (len(r.keys) / 2)
			r.insert(2*f, 2*f+1, b%8)
		} else {
			r.insert(int(a), int(b), b%8)
		}
	case 7, 8:
		r.delete(a % uint32(r.o.cap+2))
	case 9, 10, 11, 12, 13:
		r.lookup(r.keys[int(a)%len(r.keys)])
	case 14:
		r.touch(a % uint32(r.o.cap))
	case 15:
		if b%8 == 0 {
			r.now += Time(a % 4)
			r.expireAll()
		}
	}
}

func TestDifferential(t *testing.T) {
	cases := []struct {
		name                              string
		capacity, shards, nbPer, universe int
		ops                               int
		minProbe                          uint64 // longest probe must reach this
	}{
		{name: "one shard", capacity: 64, shards: 1, universe: 80, ops: 20000},
		{name: "four shards", capacity: 300, shards: 4, universe: 400, ops: 30000},
		{name: "many shards tiny", capacity: 40, shards: 16, universe: 60, ops: 20000},
		{name: "sparse", capacity: 2000, shards: 8, universe: 300, ops: 10000},
		// A full index: 60 entries in 60 lanes, so probes wrap around.
		{name: "index full", capacity: 30, shards: 1, nbPer: 5, universe: 40, ops: 30000, minProbe: 3},
		{name: "index dense", capacity: 200, shards: 2, nbPer: 20, universe: 260, ops: 30000, minProbe: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c.capacity), uint64(c.ops)))
			r := newOpsRun(t, c.capacity, c.shards, c.nbPer, c.universe)
			for i := range c.ops {
				r.step(rng.Uint32(), rng.Uint32(), rng.Uint32())
				if i%1000 == 999 {
					r.verify()
				}
			}
			r.verify()
			t.Logf("live %d of %d, results %v, probes %v", len(r.o.sessions), c.capacity, r.o.counts, r.tb.Stats().Probes)
			if st := r.tb.Stats(); st.MaxProbe < c.minProbe {
				t.Fatalf("longest probe %d buckets, want at least %d", st.MaxProbe, c.minProbe)
			}
		})
	}
}
