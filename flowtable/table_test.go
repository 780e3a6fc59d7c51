package flowtable

import (
	"errors"
	"reflect"
	"testing"

	"github.com/fastnat/fastnat/packet"
)

func TestNewConfig(t *testing.T) {
	cases := []struct {
		name       string
		cfg        Config
		err        bool
		shards     int
		maxExpects int
	}{
		{name: "tiny", cfg: Config{MaxSessions: 1}, shards: 1, maxExpects: 1024},
		{name: "default shards 1M", cfg: Config{MaxSessions: 1 << 20}, shards: 256, maxExpects: 1 << 14},
		{name: "default shards small", cfg: Config{MaxSessions: 20000}, shards: 4, maxExpects: 1024},
		{name: "explicit", cfg: Config{MaxSessions: 100, Shards: 8, MaxExpectations: 3}, shards: 8, maxExpects: 3},
		{name: "zero sessions", cfg: Config{}, err: true},
		{name: "negative sessions", cfg: Config{MaxSessions: -1}, err: true},
		{name: "too many sessions", cfg: Config{MaxSessions: MaxSessions + 1}, err: true},
		{name: "shards not power of two", cfg: Config{MaxSessions: 100, Shards: 3}, err: true},
		{name: "too many shards", cfg: Config{MaxSessions: 100, Shards: 2 * MaxShards}, err: true},
		{name: "negative expectations", cfg: Config{MaxSessions: 100, MaxExpectations: -1}, err: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb, err := New(c.cfg)
			if c.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("New(%+v) error %v, want ErrConfig", c.cfg, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := tb.Stats()
			if len(tb.shards) != c.shards || st.ExpectCapacity != c.maxExpects || st.Capacity != c.cfg.MaxSessions {
				t.Fatalf("shards %d expectations %d capacity %d, want %d %d %d",
					len(tb.shards), st.ExpectCapacity, st.Capacity, c.shards, c.maxExpects, c.cfg.MaxSessions)
			}
		})
	}
}

func TestInsertResults(t *testing.T) {
	mixed := testSession(100)
	mixed.Key[Reply] = replyKey(1) // Orig new, Reply taken by flow 1
	cross := testSession(100)
	cross.Key[Reply] = origKey(2) // Reply equal to flow 2's Orig key
	same := testSession(100)
	same.Key[Reply] = same.Key[Orig]
	cases := []struct {
		name    string
		max     int
		shards  int
		deleted []uint64 // of flows 0..3, deleted before the insert
		s       *Session
		want    InsertResult
	}{
		{name: "new", max: 8, s: testSession(100), want: Inserted},
		{name: "orig exists", max: 8, s: testSession(1), want: ErrExists},
		{name: "reply exists", max: 8, s: mixed, want: ErrExists},
		{name: "reply is another orig", max: 8, s: cross, want: ErrExists},
		{name: "same key", max: 8, s: same, want: ErrSameKey},
		{name: "full", max: 4, s: testSession(100), want: ErrFull},
		{name: "full many shards", max: 4, shards: 4, s: testSession(100), want: ErrFull},
		{name: "slot freed", max: 4, deleted: []uint64{2}, s: testSession(100), want: Inserted},
		{name: "key freed", max: 4, deleted: []uint64{1}, s: testSession(1), want: Inserted},
		{name: "steal from other shard", max: 4, shards: 4, deleted: []uint64{3}, s: testSession(100), want: Inserted},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := mustNew(t, Config{MaxSessions: c.max, Shards: c.shards})
			ids := map[uint64]uint32{}
			for i := range uint64(4) {
				id, _, r := tb.Insert(testSession(i), 1, 60, 0)
				if r != Inserted {
					t.Fatalf("setup insert %d: %v", i, r)
				}
				ids[i] = id
			}
			for _, i := range c.deleted {
				if !tb.Delete(ids[i]) {
					t.Fatalf("delete %d failed", i)
				}
				delete(ids, i)
			}
			before := tb.Stats()
			id, _, r := tb.Insert(c.s, 2, 30, 5)
			if r != c.want {
				t.Fatalf("Insert = %v, want %v", r, c.want)
			}
			after := tb.Stats()
			counters := map[InsertResult]uint64{
				Inserted:   after.Inserts - before.Inserts,
				ErrFull:    after.InsertFull - before.InsertFull,
				ErrExists:  after.InsertExists - before.InsertExists,
				ErrSameKey: after.InsertSameKey - before.InsertSameKey,
			}
			for r, n := range counters {
				if want := uint64(0); r == c.want && n != 1 || r != c.want && n != want {
					t.Errorf("counter %v moved by %d", r, n)
				}
			}
			// Existing sessions are unaffected whatever the outcome.
			for i, sid := range ids {
				for d, k := range [2]packet.Tuple{origKey(i), replyKey(i)} {
					got, dir, ok := tb.Lookup(k)
					if !ok || got != sid || dir != Dir(d) {
						t.Errorf("flow %d %v: Lookup = %d %v %v, want %d", i, Dir(d), got, dir, ok, sid)
					}
				}
			}
			if r == Inserted {
				for d := range 2 {
					got, dir, ok := tb.Lookup(c.s.Key[d])
					if !ok || got != id || dir != Dir(d) {
						t.Errorf("new session %v: Lookup = %d %v %v, want %d", Dir(d), got, dir, ok, id)
					}
				}
			}
			checkIndex(t, tb)
		})
	}
}

func TestLookupDirections(t *testing.T) {
	const n = 1000
	tb := mustNew(t, Config{MaxSessions: n, Shards: 4})
	ids := make([]uint32, n)
	for i := range uint64(n) {
		id, _, r := tb.Insert(testSession(i), uint8(i), uint32(i), Time(i))
		if r != Inserted {
			t.Fatalf("insert %d: %v", i, r)
		}
		ids[i] = id
	}
	checkIndex(t, tb)
	var keys []packet.Tuple
	var want []Hit
	for i := range uint64(n) {
		for d, k := range [2]packet.Tuple{origKey(i), replyKey(i)} {
			keys = append(keys, k, k.Reverse())
			want = append(want, Hit{ID: ids[i], Dir: Dir(d), Found: true}, Hit{})
		}
	}
	got := make([]Hit, len(keys))
	tb.LookupBatch(keys, got)
	for i, k := range keys {
		w := want[i]
		id, dir, gen, ok := tb.LookupGen(k)
		if ok != w.Found || ok && (id != w.ID || dir != w.Dir) {
			t.Fatalf("LookupGen(%+v) = %d %v %v, want %+v", k, id, dir, ok, w)
		}
		if got[i] != (Hit{ID: id, Gen: gen, Dir: dir, Found: ok}) {
			t.Fatalf("LookupBatch[%d] = %+v, LookupGen %d %d %v %v", i, got[i], id, gen, dir, ok)
		}
		if !ok {
			continue
		}
		if gen&1 != 1 || !tb.Valid(id, gen) || tb.Gen(id) != gen {
			t.Fatalf("gen %d Valid %v Gen %d", gen, tb.Valid(id, gen), tb.Gen(id))
		}
		if kk, g := tb.Key(id, dir); kk != k || g != gen {
			t.Fatalf("Key(%d, %v) = %+v %d, want %+v %d", id, dir, kk, g, k, gen)
		}
	}
	for i := range uint64(n) {
		var s Session
		want := *testSession(i)
		want.Start = Time(i) // Insert's now
		if !tb.Read(ids[i], tb.Gen(ids[i]), &s) || s != want {
			t.Fatalf("session %d: Read %+v, inserted %+v", i, s, want)
		}
		for d := range Dir(2) {
			k := testSession(i).Key[1-d].Reverse()
			h, ok := tb.Hot(ids[i], tb.Gen(ids[i]), d)
			if !ok || h.Xlate() != k || h.L3Delta() != s.L3Delta[d] || h.L4Delta() != s.L4Delta[d] || h.Flags() != s.Flags&HotFlags {
				t.Fatalf("session %d %v: Hot %+v", i, d, h)
			}
			h2, state, track, ok := tb.HotTCP(ids[i], tb.Gen(ids[i]), d)
			if !ok || h2 != h || state != uint8(i) || track != s.Track {
				t.Fatalf("session %d %v: HotTCP %+v %d %v", i, d, h2, state, track)
			}
			if h.State() != state || tb.Track(ids[i], d) != s.Track[d] {
				t.Fatalf("session %d %v: Hot.State %d, Track %#x", i, d, h.State(), tb.Track(ids[i], d))
			}
		}
		st, to := tb.State(ids[i])
		if st != uint8(i) || to != uint32(i) || tb.LastSeen(ids[i]) != Time(i) {
			t.Fatalf("session %d: state %d timeout %d seen %d", i, st, to, tb.LastSeen(ids[i]))
		}
	}
}

func TestDeleteAndReuse(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 1})
	id, _, r := tb.Insert(testSession(1), 0, 10, 0)
	if r != Inserted {
		t.Fatal(r)
	}
	gen := tb.Gen(id)
	if !tb.Delete(id) {
		t.Fatal("Delete of a live session returned false")
	}
	if tb.Delete(id) || tb.DeleteGen(id, gen) {
		t.Fatal("second delete succeeded")
	}
	if tb.Live(id) || tb.Valid(id, gen) {
		t.Fatal("deleted session still valid")
	}
	for _, k := range []packet.Tuple{origKey(1), replyKey(1)} {
		if _, _, ok := tb.Lookup(k); ok {
			t.Fatalf("deleted key %+v found", k)
		}
	}
	id2, _, r := tb.Insert(testSession(2), 0, 10, 0)
	if r != Inserted || id2 != id {
		t.Fatalf("reinsert = %d %v, want slot %d", id2, r, id)
	}
	gen2 := tb.Gen(id2)
	if gen2 == gen || gen2&1 != 1 || tb.Valid(id, gen) {
		t.Fatalf("reused slot generation %d, old %d", gen2, gen)
	}
	if tb.DeleteGen(id, gen) {
		t.Fatal("DeleteGen with a stale generation deleted the new session")
	}
	if _, _, ok := tb.Lookup(origKey(2)); !ok {
		t.Fatal("new session lost")
	}
	if !tb.DeleteGen(id2, gen2) {
		t.Fatal("DeleteGen with the current generation failed")
	}
	var s Session
	_, hotOK := tb.Hot(id2, gen2, Orig)
	if tb.Read(id2, gen2, &s) || hotOK || tb.Read(id, gen, &s) {
		t.Fatal("Read or Hot of a deleted session succeeded")
	}
	if tb.Delete(5) || tb.Read(5, 1, &s) || tb.Valid(5, 1) || tb.Live(5) {
		t.Fatal("out-of-range id accepted")
	}
	st := tb.Stats()
	if st.Inserts != 2 || st.Deletes != 2 || st.Sessions != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEnd: End removes the session of the given generation only, and
// hands its copy to the callback before the slot can be reused.
func TestEnd(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 1})
	id, gen, r := tb.Insert(testSession(1), 0, 10, 0)
	if r != Inserted {
		t.Fatal(r)
	}
	var got []Session
	onEnd := func(eid, egen uint32, s Session) {
		if eid != id || egen != gen {
			t.Errorf("onEnd(%d, %d), want (%d, %d)", eid, egen, id, gen)
		}
		if _, _, ok := tb.Lookup(origKey(1)); ok {
			t.Error("the key is still found in onEnd")
		}
		got = append(got, s)
	}
	if tb.End(id, gen+2, onEnd) {
		t.Fatal("End with another generation ended the session")
	}
	if !tb.End(id, gen, onEnd) || len(got) != 1 || got[0].Key[Orig] != origKey(1) {
		t.Fatalf("End: %d callbacks, %+v", len(got), got)
	}
	if tb.End(id, gen, onEnd) || len(got) != 1 {
		t.Fatal("second End succeeded")
	}
	if _, _, r := tb.Insert(testSession(2), 0, 10, 0); r != Inserted {
		t.Fatalf("slot not freed: %v", r)
	}
}

func TestStateTouch(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 4})
	id, _, _ := tb.Insert(testSession(1), 3, 1<<30, 100)
	if st, to := tb.State(id); st != 3 || to != MaxTimeout {
		t.Fatalf("State = %d %d, want 3 %d (clamped)", st, to, MaxTimeout)
	}
	if !tb.SetState(id, tb.Gen(id), 7, 42) || tb.SetState(id, tb.Gen(id)+2, 8, 43) {
		t.Fatal("SetState checked the wrong generation")
	}
	if st, to := tb.State(id); st != 7 || to != 42 {
		t.Fatalf("State after SetState = %d %d", st, to)
	}
	if !tb.SetTrack(id, tb.Gen(id), Reply, 77) || tb.SetTrack(id, tb.Gen(id)+2, Orig, 78) {
		t.Fatal("SetTrack checked the wrong generation")
	}
	if _, _, track, ok := tb.HotTCP(id, tb.Gen(id), Orig); !ok || track != [2]uint64{testSession(1).Track[Orig], 77} {
		t.Fatalf("Track after SetTrack = %v", track)
	}
	tb.Touch(id, Orig, 60, 101)
	tb.Touch(id, Orig, 40, 102)
	tb.Touch(id, Reply, 1500, 103)
	pkts, bytes := tb.Counters(id)
	if pkts != [2]uint64{2, 1} || bytes != [2]uint64{100, 1500} || tb.LastSeen(id) != 103 {
		t.Fatalf("Counters = %v %v seen %d", pkts, bytes, tb.LastSeen(id))
	}
	// A reused slot starts with clean counters.
	tb.Delete(id)
	id, _, _ = tb.Insert(testSession(2), 0, 5, 200)
	if pkts, bytes := tb.Counters(id); pkts != [2]uint64{} || bytes != [2]uint64{} || tb.LastSeen(id) != 200 {
		t.Fatalf("reused slot: %v %v seen %d", pkts, bytes, tb.LastSeen(id))
	}
}

func TestRange(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 10})
	var ids []uint32
	for i := range uint64(5) {
		id, _, _ := tb.Insert(testSession(i), 0, 5, 0)
		ids = append(ids, id)
	}
	tb.Delete(ids[2])
	seen := map[uint32]bool{}
	tb.Range(func(id, gen uint32, s Session) bool {
		if !tb.Valid(id, gen) || s != *testSession(uint64(s.Key[Orig].SrcPort - 1024)) {
			t.Errorf("Range: session %d gen %d %+v", id, gen, s)
		}
		seen[id] = true
		return true
	})
	if len(seen) != 4 || seen[ids[2]] {
		t.Fatalf("Range saw %v", seen)
	}
	n := 0
	tb.Range(func(uint32, uint32, Session) bool { n++; return n < 2 })
	if n != 2 {
		t.Fatalf("Range did not stop: %d calls", n)
	}
}

func TestStrings(t *testing.T) {
	for r, want := range map[InsertResult]string{Inserted: "inserted", ErrFull: "full", ErrExists: "exists",
		ErrSameKey: "same_key", ErrNoExpectSpace: "no_expect_space", NumInsertResults: "unknown"} {
		if r.String() != want {
			t.Errorf("%d.String() = %q, want %q", r, r.String(), want)
		}
	}
	if Orig.String() != "orig" || Reply.String() != "reply" {
		t.Error("Dir strings")
	}
}

func TestZeroAllocs(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 1024})
	for i := range uint64(512) {
		tb.Insert(testSession(i), 0, 60, 0)
	}
	k, miss := replyKey(7), origKey(9999)
	keys := []packet.Tuple{k, miss, origKey(3)}
	out := make([]Hit, len(keys))
	s, dup := testSession(5000), testSession(3)
	id, _, _ := tb.Lookup(k)
	var sess Session
	cases := []struct {
		name string
		fn   func()
	}{
		{"Lookup hit", func() { tb.Lookup(k) }},
		{"Lookup miss", func() { tb.Lookup(miss) }},
		{"LookupGen", func() { tb.LookupGen(k) }},
		{"LookupBatch", func() { tb.LookupBatch(keys, out) }},
		{"Touch", func() { tb.Touch(id, Reply, 100, 5) }},
		{"Hot", func() { tb.Hot(id, tb.Gen(id), Reply) }},
		{"HotTCP", func() { tb.HotTCP(id, tb.Gen(id), Reply) }},
		{"Read", func() { tb.Read(id, tb.Gen(id), &sess) }},
		{"Insert+Delete", func() {
			nid, _, r := tb.Insert(s, 1, 60, 0)
			if r != Inserted || !tb.Delete(nid) {
				t.Fatal("churn failed")
			}
		}},
		{"Insert exists", func() { tb.Insert(dup, 1, 60, 0) }},
		{"Expire", func() { tb.Expire(1, 0, 1, 16, nil) }},
		{"MatchExpectation empty", func() { tb.MatchExpectation(k, 0) }},
	}
	for _, c := range cases {
		if a := testing.AllocsPerRun(100, c.fn); a != 0 {
			t.Errorf("%s: %v allocs per run", c.name, a)
		}
	}
}

// TestLayout pins the sizes the memory budget and the cache-line
// arguments of the package documentation rest on.
func TestLayout(t *testing.T) {
	for _, c := range []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"hot", reflect.TypeFor[hot]().Size(), 64},
		{"cold", reflect.TypeFor[cold]().Size(), 56},
		{"bucket", reflect.TypeFor[bucket]().Size(), 64},
		{"cursor", reflect.TypeFor[cursor]().Size(), 64},
		{"reader", reflect.TypeFor[reader]().Size(), 64},
		{"shard%64", reflect.TypeFor[shard]().Size() % 64, 0},
	} {
		if c.got != c.want {
			t.Errorf("size of %s = %d, want %d", c.name, c.got, c.want)
		}
	}
}
