//go:build !race

package flowtable

// store32 and store64 store v at p with a plain store, for a hot-line
// word that one writer owns at a time while lock-free readers load it
// with sync/atomic (Linux's WRITE_ONCE). On amd64 Go's atomic stores are
// XCHG, a locked instruction and a full fence; a plain aligned store of
// a word is one MOV, cannot tear, and is ordered after the writer's
// earlier stores (TSO). The Go memory model makes the same promise for a
// racing word-sized write: a concurrent read observes either the old or
// the new value, never a mix. The race detector reports such a write as
// the race it formally is, so a build with -race stores atomically
// instead (relaxed_race.go); the protocol the detector then checks is the
// same.
//
// Measured against the alternatives (BenchmarkPipeline, interleaved
// runs; see the flowtable doc): an assembly stub that does the MOV costs
// a call per store and was 3 % slower at 1 flow and 6 % at 1M flows; XCHG
// was within the noise at 1 flow (the store hits a line already loaded)
// and 3 % slower at 1M.
func store32(p *uint32, v uint32) { *p = v }

func store64(p *uint64, v uint64) { *p = v }
