package flowtable

import (
	"testing"

	"github.com/fastnat/fastnat/packet"
)

// BenchmarkLookup measures Lookup on a table of 64Ki sessions (its index
// fits in L2, the sessions in L3); the bench package measures 1M and 10M
// against other maps.
func BenchmarkLookup(b *testing.B) {
	const n = 1 << 16
	tb := mustNew(b, Config{MaxSessions: n})
	for i := range uint64(n) {
		tb.Insert(testSession(i), 0, 60, 0)
	}
	keys := make([]packet.Tuple, n)
	for i := range keys {
		f := uint64(i) * 0x9e3779b1 % n // scattered order
		keys[i] = origKey(f)
		if i%2 == 1 {
			keys[i] = replyKey(f)
		}
	}
	b.Run("op=hit", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, ok := tb.Lookup(keys[i%n]); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("op=miss", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, _, ok := tb.Lookup(keys[i%n].Reverse()); ok {
				b.Fatal("hit")
			}
		}
	})
	b.Run("op=hitbatch", func(b *testing.B) {
		out := make([]Hit, 64)
		for i := 0; b.Loop(); i += 64 {
			j := i % n
			tb.LookupBatch(keys[j:j+64], out)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/lookup")
	})
	b.Run("op=churn", func(b *testing.B) {
		s := testSession(n + 1)
		for b.Loop() {
			id, _, _ := tb.Insert(s, 0, 60, 0)
			tb.Delete(id)
		}
	})
}
