package flowtable

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCountersExactAcrossSpills counts thousands of packets of every size
// in both directions, so that the hot line's counter words spill into the
// cold counters many times (by packet count and by bytes), and checks the
// totals exactly, at every step.
func TestCountersExactAcrossSpills(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 4})
	id, _, _ := tb.Insert(testSession(1), 0, 60, 0)
	r := rand.New(rand.NewPCG(1, 2))
	var pkts, bytes [2]uint64
	refused := 0
	for i := range 20000 {
		d := Dir(r.IntN(2))
		n := r.IntN(1500)
		if i%97 == 0 {
			n = 65535 // a reassembled-size packet: spills by bytes
		}
		// Half the packets as the per-packet path counts them:
		// TryTouch, and Touch when it refuses.
		if i%2 == 0 {
			tb.Touch(id, d, n, Time(i/1000))
		} else if !tb.TryTouch(id, d, n, Time(i/1000)) {
			refused++
			tb.Touch(id, d, n, Time(i/1000))
		}
		pkts[d]++
		bytes[d] += uint64(n)
		if i%501 == 0 || i > 19990 {
			if p, b := tb.Counters(id); p != pkts || b != bytes {
				t.Fatalf("after %d packets: Counters %v %v, want %v %v", i+1, p, b, pkts, bytes)
			}
		}
	}
	if tb.LastSeen(id) != 19 {
		t.Fatalf("LastSeen %d", tb.LastSeen(id))
	}
	if refused == 0 {
		t.Fatal("TryTouch never found a word full: the spill was not exercised through it")
	}
}

// TestCountersWhileSpilling reads a session's counters while a worker
// counts packets into it: every reading is one the counts passed through
// (never counting a spill twice or missing one), and the last is exact.
func TestCountersWhileSpilling(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 4})
	id, gen, _ := tb.Insert(testSession(1), 0, 60, 0)
	const n = 200000
	var done atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tb.Enter(0)
		for i := range n {
			if _, ok := tb.Hot(id, gen, Orig); !ok {
				panic("session lost")
			}
			if !tb.TryTouch(id, Orig, 100, 1) {
				tb.Touch(id, Orig, 100, 1)
			}
			if i%1000 == 999 {
				tb.Leave(0)
				tb.Enter(0)
			}
		}
		tb.Leave(0)
		done.Store(true)
	}()
	last := uint64(0)
	for !done.Load() {
		p, b := tb.Counters(id)
		if b[Orig] != 100*p[Orig] || p[Orig] < last || p[Orig] > n {
			t.Fatalf("read %d packets %d bytes after %d", p[Orig], b[Orig], last)
		}
		last = p[Orig]
	}
	wg.Wait()
	if p, b := tb.Counters(id); p[Orig] != n || b[Orig] != 100*n || p[Reply] != 0 {
		t.Fatalf("final %v %v", p, b)
	}
}

// TestGracePeriod: a slot freed while a worker is inside a poll is not
// reused until that worker leaves it (so its stores never land on the
// slot's next session); never-used slots and slots freed before the poll
// began are handed out meanwhile; a worker that enters later does not
// hold the slot up.
func TestGracePeriod(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 3, Shards: 1})
	a, _, _ := tb.Insert(testSession(1), 0, 60, 0)
	b, _, _ := tb.Insert(testSession(2), 0, 60, 0)
	tb.Delete(b) // freed before anyone entered
	tb.Enter(0)
	tb.Delete(a) // freed while worker 0 is inside
	tb.Enter(1)  // worker 1 entered after the free: holds nothing up
	ids := map[uint32]bool{}
	for i := range uint64(2) {
		id, _, r := tb.Insert(testSession(10+i), 0, 60, 0)
		if r != Inserted {
			t.Fatalf("insert %d: %v", i, r)
		}
		ids[id] = true
	}
	if ids[a] || !ids[b] {
		t.Fatalf("inserts took slots %v while slot %d waits for worker 0 (slot %d free before)", ids, a, b)
	}
	if _, _, r := tb.Insert(testSession(20), 0, 60, 0); r != ErrFull {
		t.Fatalf("insert into a table whose last slot waits: %v, want ErrFull", r)
	}
	tb.Leave(0)
	id, _, r := tb.Insert(testSession(20), 0, 60, 0)
	if r != Inserted || id != a {
		t.Fatalf("after Leave: slot %d %v, want slot %d", id, r, a)
	}
	tb.Leave(1)
	if st := tb.Stats(); st.Sessions != 3 || st.InsertFull != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestGracePeriodAside: a goroutine that is not a worker (the ALG's)
// holds a slot freed while it is between EnterAside and LeaveAside just
// as a worker inside a poll does, so that its SetState after validating
// the session never lands on the slot's next session.
func TestGracePeriodAside(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 2, Shards: 1})
	a, genA, _ := tb.Insert(testSession(1), 0, 60, 0)
	tb.Insert(testSession(2), 0, 60, 0)
	tb.EnterAside()
	if !tb.Valid(a, genA) {
		t.Fatal("session not live")
	}
	tb.Delete(a) // expires between the check and the store
	if _, _, r := tb.Insert(testSession(3), 0, 60, 0); r != ErrFull {
		t.Fatalf("insert while the freed slot waits for the aside goroutine: %v, want ErrFull", r)
	}
	tb.SetState(a, genA, 7, 60) // refused: the generation is gone
	tb.LeaveAside()
	id, gen, r := tb.Insert(testSession(3), 0, 60, 0)
	if r != Inserted || id != a {
		t.Fatalf("after LeaveAside: slot %d %v, want slot %d", id, r, a)
	}
	if st, _ := tb.State(id); st != 0 || !tb.Valid(id, gen) {
		t.Fatalf("the slot's next session has state %d", st)
	}
}

// TestGracePeriodUnderChurn races workers that validate sessions and
// count packets into them (inside Enter and Leave) against writers that
// delete and reinsert them: a count must never land on a slot's next
// session, so every session a writer inserts starts at zero and each
// session's counters only ever hold what workers counted while it lived.
func TestGracePeriodUnderChurn(t *testing.T) {
	const flows, workers, rounds = 64, 2, 1500
	tb := mustNew(t, Config{MaxSessions: flows + 8, Shards: 2})
	type ref struct{ id, gen uint32 }
	var refs [flows]atomic.Uint64 // id<<32 | gen of flow i's live session
	for i := range uint64(flows) {
		id, gen, _ := tb.Insert(testSession(i), 0, 60, 0)
		refs[i].Store(uint64(id)<<32 | uint64(gen))
	}
	var stop atomic.Bool
	var failed atomic.Value
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for !stop.Load() {
				tb.Enter(w)
				for range 16 {
					v := refs[r.IntN(flows)].Load()
					id, gen := uint32(v>>32), uint32(v)
					if _, ok := tb.Hot(id, gen, Orig); ok {
						tb.Touch(id, Orig, 1, 1)
					}
				}
				tb.Leave(w)
			}
		}()
	}
	r := rand.New(rand.NewPCG(9, 9))
	for range rounds {
		i := r.IntN(flows)
		v := refs[i].Load()
		id, gen := uint32(v>>32), uint32(v)
		if !tb.DeleteGen(id, gen) {
			failed.Store("lost a session")
			break
		}
		nid, ngen, res := tb.Insert(testSession(uint64(i)), 0, 60, 0)
		if res != Inserted {
			// Every other slot waits for a worker's grace period: retry
			// after a short sleep, so that a worker the scheduler parked
			// inside a poll (holding the old token) runs and leaves it.
			// Neither spinning nor runtime.Gosched will do: a yielding
			// writer goes to the global run queue, where its own P finds
			// it again at once instead of stealing the parked worker from
			// the other P, whose running worker, inside the race
			// detector's runtime most of the time, may not be preempted
			// for minutes — the test hung under -race on a loaded machine.
			// A sleeping writer leaves its P idle, and an idle P steals.
			for res == ErrFull && !stop.Load() {
				time.Sleep(20 * time.Microsecond)
				nid, ngen, res = tb.Insert(testSession(uint64(i)), 0, 60, 0)
			}
		}
		if p, _ := tb.Counters(nid); p != [2]uint64{} {
			failed.Store("a reused slot carried counts of its previous session")
			break
		}
		refs[i].Store(uint64(nid)<<32 | uint64(ngen))
	}
	stop.Store(true)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
}

// TestCloseAndMemory: a table large enough for huge pages reports its
// parts; Close unmaps them and leaves an empty, harmless table.
func TestCloseAndMemory(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 100000})
	id, gen, _ := tb.Insert(testSession(1), 0, 60, 0)
	m := tb.Memory()
	if m.Hot < 100000*64 || m.Cold < 100000*56 || m.Index == 0 || m.Expect == 0 || m.Huge < 0 || m.Huge > m.Hot+m.Cold+m.Index {
		t.Fatalf("memory %+v", m)
	}
	t.Logf("memory %+v, %.1f bytes per session", m, float64(m.Total())/100000)
	tb.Close()
	tb.Close()
	var s Session
	if tb.Read(id, gen, &s) || tb.Valid(id, gen) || tb.Capacity() != 0 {
		t.Fatal("a closed table still answers")
	}
	n := 0
	tb.Range(func(uint32, uint32, Session) bool { n++; return true })
	if n != 0 {
		t.Fatal("Range over a closed table")
	}
}
