package pipeline

import (
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

// TestIdleWorkerKeepsTheAgingPeriod: a worker that polls only every
// idleWait and receives nothing still walks its whole slice of the table
// once an agePeriod, so an expired session is reclaimed within about a
// period of its timeout even in a table far larger than ageMax a poll
// would reach (1M slots at 4096 a poll every 50 ms is 12.8 s a walk).
func TestIdleWorkerKeepsTheAgingPeriod(t *testing.T) {
	rules := caseRules(t, true, 1024, 65535)
	rules.Timeouts.UDP = 10 * time.Second
	r := newRig(t, rigOpts{rules: rules, maxFlows: 1 << 20})
	if slots := r.nat.Engine(0).Slots(); slots <= 20*ageMax {
		t.Fatalf("a worker's slice of %d slots is too small to tell", slots)
	}
	nanos := int64(time.Hour)
	r.w.nanos = func() int64 { return nanos }
	r.one(r.in, r.out, testutil.UDP(t, inClient+":4000", remote1+":5300", []byte("x")))
	start := r.now
	sessions := func() int { return r.table.Stats().Sessions }
	if n := sessions(); n != 1 {
		t.Fatalf("%d sessions after the first datagram", n)
	}
	// Idle polls idleWait apart, the clock following, until the timeout
	// plus two aging periods have passed.
	end := int64(rules.Timeouts.UDP + 2*agePeriod)
	for elapsed := int64(0); elapsed < end; elapsed += int64(idleWait) {
		nanos += int64(idleWait)
		r.now = start + flowtable.Time((elapsed+int64(idleWait))/int64(time.Second))
		r.w.Poll()
	}
	if n := sessions(); n != 0 {
		t.Fatalf("%d sessions %v after the last datagram (UDP timeout %v): idle aging fell behind", n, time.Duration(end), rules.Timeouts.UDP)
	}
}
