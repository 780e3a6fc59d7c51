package nat

import (
	"sync"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
)

// eventLog is how one producer — a worker's Engine, on the slow path —
// records NAT events: its own natlog.Ring, and a Throttle for the events
// that can repeat for every refused packet (pools and quotas). The zero
// value (no ring) records nothing.
type eventLog struct {
	ring     *natlog.Ring
	throttle natlog.Throttle
	staged   bool // stage events for Engine.Leave to publish (Engine.BatchEvents)
}

// on reports whether the log records anything, so that a caller builds
// an event only for a log that takes it.
func (l *eventLog) on() bool { return l != nil && l.ring != nil }

// emit records e; a full ring counts it as dropped.
func (l *eventLog) emit(e *natlog.Event) {
	if l != nil && l.ring != nil {
		l.push(e)
	}
}

// push stages or pushes e.
func (l *eventLog) push(e *natlog.Event) {
	if l.staged {
		l.ring.Stage(e)
	} else {
		l.ring.Push(e)
	}
}

// emitLimited records e unless an event with the same key was recorded in
// the same second.
func (l *eventLog) emitLimited(e *natlog.Event, key uint64) {
	if l != nil && l.ring != nil && l.throttle.Allow(key, e.Time) {
		l.push(e)
	}
}

// lockedLog is the eventLog of a producer that is not one goroutine (the
// callers of Delete, of ExpectData): its mutex makes them one producer at
// a time, as a ring needs.
type lockedLog struct {
	mu  sync.Mutex
	log eventLog
}

// quotaExceeded records (throttled) that inside host hit the limit of
// ports rule gives it.
func (l *eventLog) quotaExceeded(rule *outboundRule, host uint32, limit int, now int64) {
	if l.on() {
		l.emitLimited(&natlog.Event{Type: natlog.QuotaExceeded, Time: now, RuleKind: natlog.RuleOutbound, Rule: rule.index,
			Inside: packet.Tuple{SrcAddr: host}, Limit: uint32(limit)},
			natlog.ThrottleKey(natlog.QuotaExceeded, host, rule.index))
	}
}
