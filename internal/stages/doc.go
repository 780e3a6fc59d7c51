// Package stages times the worker's poll loop at its stage boundaries,
// for the per-stage table of the performance work (receive, Parse, the
// lookup's steps, translation, dispatch, flush, aging, publication). It
// is compiled in only with the build tag fastnat_stages:
//
//	go test -tags fastnat_stages ./bench -run TestStageProfile -v
//
// Without the tag On is false and Mark is an empty function that the
// compiler removes, so the production build carries no trace of it.
//
// With the tag, Mark reads the CPU's cycle counter (RDTSC on amd64,
// CNTVCT_EL0 on arm64, the monotonic clock elsewhere: tens of
// nanoseconds, no system call, nothing evicted from the caches) and
// charges the cycles since the previous Mark to the stage that was
// running. A round (one poll) that took far longer than the rounds
// around it was preempted — the cycle counter counts wall time, and this
// machine is shared — and is discarded whole, so every stage is measured
// over the same rounds; the cost of a Mark itself, calibrated when the
// profile starts, is subtracted from every interval. One goroutine marks
// at a time (the benchmark's single worker); nothing is synchronised.
package stages

// Stage is a part of the poll loop.
type Stage uint8

// Stages, in the order a poll runs them.
const (
	Other        Stage = iota // anything not marked (the poll's bookkeeping)
	Receive                   // the ports' Receive (the generator, in the benchmark)
	Parse                     // packet.Parse over the burst, counters, lookup keys
	Hash                      // LookupBatch: hashing the keys
	BucketTouch               // LookupBatch: the home buckets' cache lines
	SessionTouch              // LookupBatch: the candidate sessions' cache lines
	FinalCheck                // LookupBatch: confirming each key
	Process                   // nat: ProcessLooked (validation, translation, Touch)
	Dispatch                  // next hop, MACs, the tx queue
	Flush                     // the tx rings (the benchmark's sink)
	Age                       // session aging
	Publish                   // counter publication
	NumStages
)

var names = [NumStages]string{"other", "receive", "parse", "hash", "bucket touch", "session touch", "final check",
	"process", "dispatch", "flush", "age", "publish"}

// String names the stage.
func (s Stage) String() string {
	if s < NumStages {
		return names[s]
	}
	return "unknown"
}
