package nat

import "github.com/fastnat/fastnat/natlog"

// eventLog is how one producer — a worker's Engine, on the slow path —
// records NAT events: its own natlog.Ring, and a Throttle for the events
// that can repeat for every refused packet (pools and quotas). The zero
// value (no ring) records nothing.
type eventLog struct {
	ring     *natlog.Ring
	throttle natlog.Throttle
}

// emit records e; a full ring counts it as dropped.
func (l *eventLog) emit(e *natlog.Event) {
	if l != nil && l.ring != nil {
		l.ring.Push(e)
	}
}

// emitLimited records e unless an event with the same key was recorded in
// the same second.
func (l *eventLog) emitLimited(e *natlog.Event, key uint64) {
	if l != nil && l.ring != nil && l.throttle.Allow(key, e.Time) {
		l.ring.Push(e)
	}
}
