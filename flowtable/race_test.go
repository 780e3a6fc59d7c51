package flowtable

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastnat/fastnat/packet"
)

// TestConcurrentStress races lock-free readers against writers that insert
// and delete sessions and a worker that expires them, all on overlapping
// slots. Readers assert, through the documented rule (LookupGen, then Key
// and its generation), that a session they found has the key they looked
// up, and that sessions nobody deletes are always found. Run it with -race:
// every word a reader shares with a writer must be accessed atomically.
func TestConcurrentStress(t *testing.T) {
	const (
		stable   = 500  // flows 0..stable-1: inserted first, never deleted
		churn    = 1500 // flows stable..stable+churn-1: inserted and deleted
		writers  = 3
		readers  = 3
		writeOps = 4000
		readOps  = 20000
	)
	// One spare slot per writer for a session the expirer holds between
	// unlinking it and freeing its slot.
	tb := mustNew(t, Config{MaxSessions: stable + churn + writers, Shards: 8})
	for i := range uint64(stable) {
		if _, _, r := tb.Insert(testSession(i), 0, MaxTimeout, 0); r != Inserted {
			t.Fatal(r)
		}
	}

	var failed atomic.Bool
	fail := func(format string, args ...any) {
		if failed.CompareAndSwap(false, true) {
			t.Errorf(format, args...)
		}
	}
	var done atomic.Bool
	var wg, wgw sync.WaitGroup

	for w := range writers {
		wgw.Add(1)
		go func() {
			defer wgw.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			type held struct {
				present bool
				id, gen uint32
			}
			mine := map[uint64]*held{}
			for f := uint64(stable + w); f < stable+churn; f += writers {
				mine[f] = &held{}
			}
			flows := make([]uint64, 0, len(mine))
			for f := range mine {
				flows = append(flows, f)
			}
			for range writeOps {
				f := flows[rng.IntN(len(flows))]
				h := mine[f]
				if h.present {
					tb.DeleteGen(h.id, h.gen) // false if the expirer got there first
					h.present = false
					continue
				}
				id, gen, r := tb.Insert(testSession(f), 0, uint32(rng.IntN(2)), 0)
				// The table has no slot to spare: a slot freed while a
				// reader is inside a poll waits for it to leave. Sleep,
				// not Gosched, between tries: a yielding writer can keep
				// a parked reader from running (TestGracePeriodUnderChurn).
				for tries := 0; r == ErrFull && tries < 100000; tries++ {
					time.Sleep(20 * time.Microsecond)
					id, gen, r = tb.Insert(testSession(f), 0, uint32(rng.IntN(2)), 0)
				}
				if r != Inserted {
					fail("writer %d: Insert flow %d = %v", w, f, r)
					return
				}
				h.present, h.id, h.gen = true, id, gen
			}
		}()
	}
	wg.Add(1)
	go func() { // the expirer: churn sessions have timeout 0 or 1
		defer wg.Done()
		for !done.Load() {
			tb.Expire(1, 0, 1, 64, func(id, gen uint32, s Session) {
				if s.Key[Orig].SrcAddr == 0x0a000000 && s.Key[Orig].SrcPort < 1024+stable {
					fail("expired a stable session")
				}
			})
		}
	}()
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 11))
			keys := make([]packet.Tuple, 8)
			hits := make([]Hit, 8)
			// Each reader is a worker: Touch only inside Enter and Leave,
			// for a session validated there.
			tb.Enter(r)
			defer tb.Leave(r)
			for i := 0; i < readOps && !failed.Load(); i++ {
				if i%64 == 0 {
					tb.Leave(r)
					tb.Enter(r)
				}
				f := uint64(rng.IntN(stable + churn))
				k := origKey(f)
				if rng.IntN(2) == 1 {
					k = replyKey(f)
				}
				if i%8 == 0 {
					for j := range keys {
						keys[j] = origKey(uint64(rng.IntN(stable + churn)))
					}
					tb.LookupBatch(keys, hits)
					for j, h := range hits {
						checkHit(tb, keys[j], h, fail)
					}
					continue
				}
				id, dir, gen, ok := tb.LookupGen(k)
				checkHit(tb, k, Hit{ID: id, Gen: gen, Dir: dir, Found: ok}, fail)
				if _, valid := tb.Hot(id, gen, dir); ok && valid {
					tb.Touch(id, dir, 64, 0)
				}
			}
		}()
	}
	wgw.Wait()
	done.Store(true)
	wg.Wait()
	if failed.Load() {
		return
	}
	checkIndex(t, tb)
	for i := range uint64(stable) {
		if _, _, ok := tb.Lookup(replyKey(i)); !ok {
			t.Fatalf("stable flow %d lost", i)
		}
	}
}

// checkHit asserts what a concurrent reader may rely on: a hit's session
// has the key looked up as long as its generation is unchanged, and a
// stable flow (below 500) is always found, in the right direction.
func checkHit(tb *Table, k packet.Tuple, h Hit, fail func(string, ...any)) {
	stable := k.SrcAddr == 0x0a000000 && k.SrcPort < 1024+500 ||
		k.DstAddr == 0xc6130000 && k.DstPort < 500
	if !h.Found {
		if stable {
			fail("stable key %+v not found", k)
		}
		return
	}
	if h.Gen&1 == 0 {
		fail("hit on a dead generation %d", h.Gen)
	}
	got, gen := tb.Key(h.ID, h.Dir)
	if gen == h.Gen && got != k {
		fail("Lookup(%+v) returned session %d whose key is %+v", k, h.ID, got)
	}
	dir := Reply
	if k.SrcAddr>>24 == 10 {
		dir = Orig
	}
	if stable && (gen != h.Gen || h.Dir != dir) {
		fail("stable key %+v: gen %d→%d dir %v", k, h.Gen, gen, h.Dir)
	}
}
