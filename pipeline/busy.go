package pipeline

import (
	"sync/atomic"
	"time"
)

// busyMeter measures a worker's real work: the time spent on polls that
// received frames. Empty polls (a busy or adaptive worker spinning on its
// rings) and sleeps in the Waker are idle, so the busy time's rate is how
// loaded the worker is, whatever the poll mode. Owned by Run; the total
// is published every busyPublish polls and whenever the worker sleeps or
// stops, for Busy to read from any goroutine; each publication is a beat
// (Beats), the daemon's watchdog's sign of life.
type busyMeter struct {
	last  time.Duration // monotonic time at the end of the previous poll
	local time.Duration // busy time not yet published
	polls uint32
	pub   atomic.Int64  // busy time published, ns
	beats atomic.Uint64 // publications: the worker's loop is alive
}

// busyPublish is how many polls go between two publications.
const busyPublish = 64

// epoch is the monotonic origin of the meter's clock.
var epoch = time.Now()

// now reads the monotonic clock only (no wall clock): one vDSO call.
func now() time.Duration { return time.Since(epoch) }

// start begins a spell of polling: the next poll's time counts from now.
func (m *busyMeter) start() { m.last = now() }

// mark ends a poll: its time is busy if it received frames. Every
// busyPublish polls, busy or not, it publishes.
func (m *busyMeter) mark(received bool) {
	t := now()
	if received {
		m.local += t - m.last
	}
	m.last = t
	if m.polls++; m.polls%busyPublish == 0 {
		m.publish()
	}
}

// publish makes the busy time visible to Busy and counts a beat.
func (m *busyMeter) publish() {
	if m.local != 0 {
		m.pub.Add(int64(m.local))
		m.local = 0
	}
	m.beats.Add(1)
}

// Beats counts the times the worker's loop published its busy time: every
// 64 polls and every sleep, so a running worker beats many times a second
// whatever its load; one whose count stops is stuck. Safe from any
// goroutine.
func (w *Worker) Beats() uint64 { return w.busy.beats.Load() }

// Busy returns the time the worker has spent on polls that received
// frames (published at most busyPublish polls late). Its rate is the
// worker's busy ratio. Safe from any goroutine.
func (w *Worker) Busy() time.Duration { return time.Duration(w.busy.pub.Load()) }
