package natlog

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is an exporter: IPFIX to a collector, syslog, a test's recorder.
// The Hub runs each sink on a goroutine of its own and calls its methods
// from there only, one at a time.
type Sink interface {
	// Export delivers events, oldest first. It returns how many of them it
	// could not deliver and, if any, why; a failure never stops later
	// calls (a collector that comes back gets what follows).
	Export(events []Event) (failed int, err error)
	// Tick is called about once a second, idle or not, for timers such as
	// IPFIX template refresh or a reconnection's back-off.
	Tick(now time.Time) error
	// Close releases the sink after its last Export.
	Close() error
}

// Defaults and limits of the Hub.
const (
	DefaultRing      = 1 << 16 // events per producer ring and per sink queue
	SubscriptionRing = 1 << 13 // events a live subscription may fall behind by
	MaxSubscriptions = 16
	MaxProducers     = 1024
	// pollBusy and pollIdle are how long the Hub sleeps after a pass that
	// found nothing, while events flow and after a quiet spell: a ring
	// must hold what its producer makes in that time (65536 events hold
	// 10 ms at 6.5 M events a second).
	pollBusy  = time.Millisecond
	pollIdle  = 10 * time.Millisecond
	idleAfter = 64 // empty passes before the Hub sleeps pollIdle
	// pollAlone is how long a quiet Hub without sinks or subscriptions
	// sleeps: nobody would get the events, so it only keeps the rings
	// from filling (a producer would have to make 655,360 events a second
	// to overflow a default ring), and it wakes at once when a sink or a
	// subscription arrives. An idle daemon without exporters thus wakes
	// its Hub ten times a second, not a hundred.
	pollAlone = 100 * time.Millisecond
	batch     = 256
	// errorEvery bounds how often one sink's errors are logged.
	errorEvery = 10 * time.Second
)

// HubConfig sets up a Hub.
type HubConfig struct {
	// Producers is the number of producer rings: one per pipeline worker,
	// and one per other goroutine that makes events (each ring has exactly
	// one producer).
	Producers int
	// Ring is the size of each producer ring and each sink's queue, a
	// power of two; 0 means DefaultRing.
	Ring int
	// Log receives sinks' errors (rate-limited); nil discards them.
	Log *slog.Logger
}

// Hub collects the events of every producer ring and hands them to the
// sinks and live subscriptions. Its own goroutine (Start) polls the rings
// — producers never signal it, so making an event costs a worker no
// system call; without sinks or subscriptions a quiet Hub polls only
// every pollAlone — and copies each event, if the outlet's filter passes it,
// into every outlet's queue, another Ring, whose consumer is the sink's
// goroutine or the subscriber. A slow sink therefore loses events from
// its own queue (counted per outlet) without holding up the rings or the
// other sinks.
//
// Counting is exact: for an outlet whose filter passes everything, the
// events the producers made are the sum of their rings' Queued and
// Dropped; of those, the outlet's Dropped never reached it, its Failed
// were refused by its transport, and the rest, once idle, are Exported.
type Hub struct {
	rings   []*Ring
	size    int
	log     *slog.Logger
	mu      sync.Mutex // guards changes of outlets and subs
	outlets atomic.Pointer[[]*outlet]
	subs    int
	wg      sync.WaitGroup
	stop    chan struct{}
	done    chan struct{}
	joined  chan struct{} // a token when an outlet attached, for a Hub asleep for pollAlone
	started bool
	closed  bool
}

// outlet is one consumer of the Hub: a sink or a subscription.
type outlet struct {
	name     string
	filter   Filter
	queue    *Ring
	wake     chan struct{} // a token when events were queued
	quit     chan struct{} // closed when the outlet must finish
	sink     Sink          // nil for a subscription
	exported atomic.Uint64
	failed   atomic.Uint64
	lost     uint64 // subscription: queue drops already reported by Read
	closeErr error  // sink: what its Close returned; read after the Hub's WaitGroup
}

// NewHub returns a Hub with cfg.Producers rings. Add sinks and Start it.
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.Producers < 1 || cfg.Producers > MaxProducers {
		return nil, fmt.Errorf("%d event producers: %w (1 to %d)", cfg.Producers, ErrConfig, MaxProducers)
	}
	size := cfg.Ring
	if size == 0 {
		size = DefaultRing
	}
	h := &Hub{size: size, log: cfg.Log, stop: make(chan struct{}), done: make(chan struct{}), joined: make(chan struct{}, 1)}
	for range cfg.Producers {
		r, err := NewRing(size)
		if err != nil {
			return nil, err
		}
		h.rings = append(h.rings, r)
	}
	h.outlets.Store(&[]*outlet{})
	return h, nil
}

// Ring returns producer i's ring. Each ring must have exactly one
// producer goroutine.
func (h *Hub) Ring(i int) *Ring { return h.rings[i] }

// Producers returns the number of producer rings.
func (h *Hub) Producers() int { return len(h.rings) }

// Add attaches a sink that gets the events f passes, and starts its
// goroutine. name labels its counters and errors ("ipfix
// 192.0.2.10:4739"). The Hub closes the sink when it closes.
func (h *Hub) Add(name string, s Sink, f Filter) error {
	q, err := NewRing(h.size)
	if err != nil {
		return err
	}
	o := &outlet{name: name, filter: f, queue: q, sink: s, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("add sink %s: %w", name, ErrClosed)
	}
	h.attach(o)
	h.wg.Add(1)
	go h.routineSink(o)
	return nil
}

// attach publishes o to the Hub's goroutine (copy on write). h.mu held.
func (h *Hub) attach(o *outlet) {
	old := *h.outlets.Load()
	next := append(append(make([]*outlet, 0, len(old)+1), old...), o)
	h.outlets.Store(&next)
	select {
	case h.joined <- struct{}{}:
	default:
	}
}

// detach removes o. h.mu held.
func (h *Hub) detach(o *outlet) {
	old := *h.outlets.Load()
	next := make([]*outlet, 0, len(old))
	for _, x := range old {
		if x != o {
			next = append(next, x)
		}
	}
	h.outlets.Store(&next)
}

// Start runs the Hub's goroutine.
func (h *Hub) Start() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.closed {
		return
	}
	h.started = true
	go h.routineHub()
}

// Close stops the Hub: it drains the producer rings one last time (stop
// the producers first), lets every sink export what it has queued,
// closes the sinks and ends the subscriptions. It returns the sinks'
// Close errors.
func (h *Hub) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	started := h.started
	h.mu.Unlock()
	if started {
		close(h.stop)
		<-h.done
	} else {
		h.drainAll(make([]Event, batch))
	}
	h.mu.Lock()
	outs := *h.outlets.Load()
	for _, o := range outs {
		close(o.quit)
	}
	h.mu.Unlock()
	h.wg.Wait()
	var errs []error
	for _, o := range outs {
		if o.closeErr != nil {
			errs = append(errs, fmt.Errorf("event sink %s: %w", o.name, o.closeErr))
		}
	}
	return errors.Join(errs...)
}

// routineHub polls the producer rings until Close.
func (h *Hub) routineHub() {
	defer close(h.done)
	buf := make([]Event, batch)
	t := time.NewTimer(pollBusy)
	defer t.Stop()
	empty := 0
	for {
		if h.drain(buf) > 0 {
			empty = 0
			continue
		}
		wait := pollBusy
		if empty++; empty > idleAfter {
			wait = pollIdle
			if len(*h.outlets.Load()) == 0 {
				wait = pollAlone
			}
		}
		t.Reset(wait)
		select {
		case <-h.stop:
			h.drainAll(buf)
			return
		case <-t.C:
		case <-h.joined:
			empty = 0
		}
	}
}

// drainAll drains until the producer rings are empty (the producers have
// stopped), so that every event made is either handed on or counted as
// dropped.
func (h *Hub) drainAll(buf []Event) {
	for h.drain(buf) > 0 {
	}
}

// drain moves what the producer rings hold to the outlets and returns how
// many events it moved. Each ring gives at most a few batches per pass,
// so that a busy producer does not starve the others.
func (h *Hub) drain(buf []Event) int {
	total := 0
	for _, r := range h.rings {
		for range 4 {
			n := r.Pop(buf)
			if n == 0 {
				break
			}
			total += n
			// The outlets are loaded after the Pop, not once before the
			// pass: an event pushed after a Subscribe returned must reach
			// that subscription, and a list loaded before the Pop could
			// predate it (a subscriber then missed its first events).
			fanOut(*h.outlets.Load(), buf[:n])
			if n < len(buf) {
				break
			}
		}
	}
	return total
}

// fanOut copies events into every outlet whose filter passes them and
// wakes the outlets that got any.
func fanOut(outs []*outlet, events []Event) {
	for _, o := range outs {
		queued := false
		for i := range events {
			if o.filter.Match(&events[i]) {
				o.queue.Push(&events[i]) // a full queue counts the drop
				queued = true
			}
		}
		if queued {
			select {
			case o.wake <- struct{}{}:
			default:
			}
		}
	}
}

// routineSink feeds one sink until its outlet quits, then exports what is
// left and closes the sink.
func (h *Hub) routineSink(o *outlet) {
	defer h.wg.Done()
	buf := make([]Event, batch)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastErr time.Time
	var quiet int
	export := func(events []Event) {
		failed, err := o.sink.Export(events)
		o.exported.Add(uint64(len(events) - failed))
		o.failed.Add(uint64(failed))
		if err != nil {
			if now := time.Now(); now.Sub(lastErr) >= errorEvery {
				h.logError(o.name, err, quiet)
				lastErr, quiet = now, 0
			} else {
				quiet++
			}
		}
	}
	for {
		if n := o.queue.Pop(buf); n > 0 {
			export(buf[:n])
			select {
			case now := <-tick.C:
				h.tick(o, now)
			default:
			}
			continue
		}
		select {
		case <-o.wake:
		case now := <-tick.C:
			h.tick(o, now)
		case <-o.quit:
			for {
				n := o.queue.Pop(buf)
				if n == 0 {
					break
				}
				export(buf[:n])
			}
			o.closeErr = o.sink.Close()
			return
		}
	}
}

func (h *Hub) tick(o *outlet, now time.Time) {
	if err := o.sink.Tick(now); err != nil {
		h.logError(o.name, err, 0)
	}
}

func (h *Hub) logError(name string, err error, suppressed int) {
	if h.log != nil {
		h.log.Warn("event sink", "sink", name, "err", err, "suppressed", suppressed)
	}
}

// Subscription is a live feed of the events a filter passes, for
// `fastnat events`: a queue of SubscriptionRing events that the Hub fills
// and the subscriber drains with Read. A subscriber that falls behind
// loses events, and Read says how many.
type Subscription struct {
	h *Hub
	o *outlet
}

// Subscribe starts a live feed of the events f passes, named name in the
// Hub's counters. At most MaxSubscriptions may be open at once
// (ErrTooMany).
func (h *Hub) Subscribe(name string, f Filter) (*Subscription, error) {
	q, err := NewRing(SubscriptionRing)
	if err != nil {
		return nil, err
	}
	o := &outlet{name: name, filter: f, queue: q, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.closed:
		return nil, ErrClosed
	case h.subs >= MaxSubscriptions:
		return nil, fmt.Errorf("%w (%d open)", ErrTooMany, h.subs)
	}
	h.subs++
	h.attach(o)
	return &Subscription{h: h, o: o}, nil
}

// Read waits until events are queued, the timeout passes or the feed
// ends, and moves up to len(dst) events into dst. lost is the number of
// events that passed the filter but were dropped because the subscriber
// fell behind, since the previous Read. After Close or the Hub's Close,
// Read returns what is still queued and then ErrClosed. One goroutine
// reads.
func (s *Subscription) Read(dst []Event, timeout time.Duration) (n int, lost uint64, err error) {
	o := s.o
	n = o.queue.Pop(dst)
	if n == 0 {
		t := time.NewTimer(timeout)
		select {
		case <-o.wake:
		case <-t.C:
		case <-o.quit:
		}
		t.Stop()
		n = o.queue.Pop(dst)
	}
	if d := o.queue.Stats().Dropped; d != o.lost {
		lost, o.lost = d-o.lost, d
	}
	if n == 0 && lost == 0 {
		select {
		case <-o.quit:
			return 0, 0, ErrClosed
		default:
		}
	}
	o.exported.Add(uint64(n))
	return n, lost, nil
}

// Close ends the subscription; the Hub stops filling it.
func (s *Subscription) Close() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return // the Hub ended the feed
	}
	select {
	case <-s.o.quit:
		return
	default:
	}
	h.detach(s.o)
	h.subs--
	close(s.o.quit)
}

// OutletStats counts one sink's or subscription's events.
type OutletStats struct {
	Name     string
	Queued   uint64 // events its filter passed and its queue took
	Dropped  uint64 // events its filter passed but its full queue refused
	Exported uint64 // events it delivered (a subscription: read)
	Failed   uint64 // events its transport refused
}

// Stats is a snapshot of a Hub's counters.
type Stats struct {
	Producers []RingStats
	Outlets   []OutletStats
}

// Stats returns the Hub's counters; any goroutine may call it.
func (h *Hub) Stats() Stats {
	var s Stats
	for _, r := range h.rings {
		s.Producers = append(s.Producers, r.Stats())
	}
	for _, o := range *h.outlets.Load() {
		q := o.queue.Stats()
		s.Outlets = append(s.Outlets, OutletStats{Name: o.name, Queued: q.Queued, Dropped: q.Dropped,
			Exported: o.exported.Load(), Failed: o.failed.Load()})
	}
	return s
}
