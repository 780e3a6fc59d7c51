package alg

import (
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/fastnat/fastnat/flowtable"
)

// Idle behaviour of the Runner: it keeps polling, yielding the processor
// between rounds, for idleSpin after the last work, then sleeps until a
// worker wakes it. The spin keeps a conversation's next packet from paying
// for a wake-up. While a processed batch waits for room on a full return
// ring the sleep lasts at most retrySleep, which bounds how late it is
// retried; with nothing waiting it lasts up to idleSleep, so that an idle
// runner costs nothing (a worker's Wake is never lost: the wake channel
// keeps one). Forgotten sessions are applied before the next frame in any
// case; the long sleep only delays freeing their state.
const (
	idleSpin   = 50 * time.Microsecond
	retrySleep = 100 * time.Microsecond
	idleSleep  = time.Second
)

// Runner is the ALG goroutine. It serves one pair of rings per pipeline
// worker: it pops the frames worker w diverted from in[w], runs the FTP
// ALG on them in order, and pushes them, verdict set, to out[w], from
// which worker w transmits or releases them. It never blocks a worker:
// when out[w] is full it keeps the processed batch and retries, popping
// nothing more from in[w] meanwhile, so order is kept and in[w] fills up
// (the worker then drops and counts).
type Runner struct {
	ftp   *FTP
	in    []*Ring
	out   []*Ring
	lanes []lane
	clock func() flowtable.Time
	wake  chan struct{}
	log   *slog.Logger
}

// lane is one worker's batch in flight: items[sent:n] are processed and
// wait for room on the return ring.
type lane struct {
	items   []Item
	n, sent int
}

// NewRunner returns a Runner for f serving len(in) workers, processing up
// to batch frames per worker at a time. clock is read once per batch for
// expectation expiry.
func NewRunner(f *FTP, in, out []*Ring, batch int, clock func() flowtable.Time) (*Runner, error) {
	if f == nil || clock == nil {
		return nil, fmt.Errorf("runner without ALG or clock: %w", ErrConfig)
	}
	if len(in) != len(out) || len(in) == 0 {
		return nil, fmt.Errorf("runner with %d in-rings and %d return rings: %w", len(in), len(out), ErrConfig)
	}
	if batch < 1 {
		return nil, fmt.Errorf("runner batch %d: %w", batch, ErrConfig)
	}
	r := &Runner{ftp: f, in: in, out: out, clock: clock, wake: make(chan struct{}, 1), log: f.log}
	r.lanes = make([]lane, len(in))
	for i := range r.lanes {
		r.lanes[i].items = make([]Item, batch)
	}
	return r, nil
}

// Wake tells a sleeping Runner that a ring has work. Workers call it after
// pushing; it never blocks.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run serves the rings until stop is closed. Frames still held by the
// Runner when it returns are those of lanes waiting for room; after Run
// returns, Pending hands them back.
func (r *Runner) Run(stop <-chan struct{}) {
	r.log.Info("ftp alg runner started", "workers", len(r.in))
	defer r.log.Info("ftp alg runner stopped")
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var idleSince time.Time
	for {
		select {
		case <-stop:
			return
		default:
		}
		if r.poll() {
			idleSince = time.Time{}
			continue
		}
		now := time.Now()
		if idleSince.IsZero() {
			idleSince = now
		}
		if now.Sub(idleSince) < idleSpin {
			runtime.Gosched()
			continue
		}
		idleSince = time.Time{}
		sleep := idleSleep
		if r.waiting() {
			sleep = retrySleep
		}
		timer.Reset(sleep)
		select {
		case <-stop:
			timer.Stop()
			return
		case <-r.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// waiting reports whether a processed batch waits for room on its
// return ring.
func (r *Runner) waiting() bool {
	for i := range r.lanes {
		if r.lanes[i].sent < r.lanes[i].n {
			return true
		}
	}
	return false
}

// poll does one round over the workers' rings and reports whether it
// moved anything.
func (r *Runner) poll() bool {
	if r.ftp.forgetPending.Load() {
		r.ftp.applyForget()
	}
	moved := false
	for i := range r.lanes {
		l := &r.lanes[i]
		if l.sent == l.n {
			l.n, l.sent = r.in[i].Pop(l.items), 0
			if l.n > 0 {
				now := r.clock()
				for k := range l.items[:l.n] {
					r.ftp.Process(&l.items[k], now)
				}
				moved = true
			}
		}
		if l.sent < l.n {
			k := r.out[i].Push(l.items[l.sent:l.n])
			l.sent += k
			moved = moved || k > 0
		}
	}
	return moved
}

// Pending returns the processed frames of worker w that Run had not yet
// returned when it stopped, so that the caller can release them. Call it
// only after Run has returned.
func (r *Runner) Pending(w int) []Item {
	l := &r.lanes[w]
	p := l.items[l.sent:l.n]
	l.n, l.sent = 0, 0
	return p
}
