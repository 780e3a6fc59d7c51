package flowtable

import (
	"testing"
)

func TestExpireIncremental(t *testing.T) {
	const n, budget = 1000, 50
	tb := mustNew(t, Config{MaxSessions: n, Shards: 4})
	short := map[uint32]bool{}
	for i := range uint64(n) {
		timeout := uint32(100)
		if i%2 == 0 {
			timeout = 10
		}
		id, _, r := tb.Insert(testSession(i), 0, timeout, 0)
		if r != Inserted {
			t.Fatal(r)
		}
		if timeout == 10 {
			short[id] = true
		}
	}
	// One short-lived session was active recently; one reports a time
	// ahead of the expiring worker's clock.
	var touched, ahead uint32
	for id := range short {
		if touched == 0 {
			touched = id
		} else if ahead == 0 {
			ahead = id
		}
	}
	tb.Touch(touched, Orig, 1, 5)
	tb.Touch(ahead, Reply, 1, 15)
	delete(short, touched)
	delete(short, ahead)

	calls := map[uint32]int{}
	onExpire := func(id, gen uint32, s Session) {
		calls[id]++
		if s != *testSession(uint64(s.Key[Orig].SrcPort - 1024)) || tb.Live(id) || gen&1 != 1 || tb.Valid(id, gen) {
			t.Errorf("onExpire(%d, %d): session not intact or still live", id, gen)
		}
		// The callback may use the table: no lock is held.
		tb.RemoveExpectations(id, gen)
	}
	if got := tb.Expire(9, 0, 1, n, onExpire); got != 0 {
		t.Fatalf("Expire before any deadline reclaimed %d", got)
	}
	total := 0
	for call := range n / budget {
		got := tb.Expire(10, 0, 1, budget, onExpire)
		if got > budget {
			t.Fatalf("call %d reclaimed %d > budget %d", call, got, budget)
		}
		total += got
		if call == 0 && (got == 0 || got == len(short)) {
			t.Fatalf("first call reclaimed %d of %d: not incremental", got, len(short))
		}
	}
	if total != len(short) || len(calls) != len(short) {
		t.Fatalf("reclaimed %d, callbacks %d, want %d", total, len(calls), len(short))
	}
	for id, c := range calls {
		if c != 1 || !short[id] {
			t.Fatalf("session %d: %d callbacks, short-lived %v", id, c, short[id])
		}
	}
	if !tb.Live(touched) || !tb.Live(ahead) {
		t.Fatal("recently touched session expired")
	}
	if got := tb.Expire(10, 0, 1, n, onExpire); got != 0 {
		t.Fatalf("second pass reclaimed %d", got)
	}
	st := tb.Stats()
	if st.Expired != uint64(len(short)) || st.Sessions != n-len(short) || st.Deletes != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkIndex(t, tb)
}

func TestExpireWorkersDisjoint(t *testing.T) {
	const n = 100
	tb := mustNew(t, Config{MaxSessions: n})
	for i := range uint64(n) {
		tb.Insert(testSession(i), 0, 1, 0)
	}
	const workers = 3
	for w := range workers {
		lo, hi := uint32(n*w/workers), uint32(n*(w+1)/workers)
		got := tb.Expire(5, w, workers, n, func(id, _ uint32, _ Session) {
			if id < lo || id >= hi {
				t.Errorf("worker %d reclaimed %d outside [%d,%d)", w, id, lo, hi)
			}
		})
		if got != int(hi-lo) {
			t.Errorf("worker %d reclaimed %d, want %d", w, got, hi-lo)
		}
	}
	if st := tb.Stats(); st.Sessions != 0 {
		t.Fatalf("%d sessions left", st.Sessions)
	}
}

func TestExpireBadWorker(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 4})
	for _, c := range []struct{ w, n int }{{0, 0}, {1, 1}, {-1, 2}, {0, MaxWorkers + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Expire(worker %d of %d) did not panic", c.w, c.n)
				}
			}()
			tb.Expire(0, c.w, c.n, 1, nil)
		}()
	}
}
