package natlog

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/packet"
)

// recorder is a Sink that keeps what it gets; slow makes it sleep per
// batch, failEvery refuses every n-th event.
type recorder struct {
	mu        sync.Mutex
	events    []Event
	ticks     int
	closed    bool
	slow      time.Duration
	failEvery int
	seen      int
}

func (r *recorder) Export(events []Event) (int, error) {
	if r.slow > 0 {
		time.Sleep(r.slow)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	failed := 0
	for _, e := range events {
		r.seen++
		if r.failEvery > 0 && r.seen%r.failEvery == 0 {
			failed++
			continue
		}
		r.events = append(r.events, e)
	}
	if failed > 0 {
		return failed, errors.New("refused")
	}
	return 0, nil
}

func (r *recorder) Tick(time.Time) error {
	r.mu.Lock()
	r.ticks++
	r.mu.Unlock()
	return nil
}

func (r *recorder) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

func (r *recorder) got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func newHub(t *testing.T, producers, ring int) *Hub {
	t.Helper()
	h, err := NewHub(HubConfig{Producers: producers, Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHubFansOutInOrderPerProducer(t *testing.T) {
	h := newHub(t, 2, 1024)
	all, tcp := &recorder{}, &recorder{}
	if err := h.Add("all", all, Filter{}); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("tcp", tcp, Filter{Proto: packet.ProtoTCP}); err != nil {
		t.Fatal(err)
	}
	h.Start()
	for i := 0; i < 500; i++ {
		for p := 0; p < 2; p++ {
			e := seq(i)
			e.Rule = uint16(p)
			if i%5 == 0 {
				e.Inside.Proto = packet.ProtoTCP
			}
			h.Ring(p).Push(&e)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if got := all.got(); len(got) != 1000 {
		t.Fatalf("all got %d events, want 1000", len(got))
	}
	last := [2]int64{-1, -1}
	for _, e := range all.got() {
		if e.Time <= last[e.Rule] {
			t.Fatalf("producer %d: event %d after %d", e.Rule, e.Time, last[e.Rule])
		}
		last[e.Rule] = e.Time
	}
	if got := tcp.got(); len(got) != 200 {
		t.Fatalf("tcp got %d events, want 200", len(got))
	}
	if !all.closed || !tcp.closed {
		t.Fatal("Close must close the sinks")
	}
}

// TestHubCountsEveryLostEvent is the burst the issue asks for, in memory:
// producers outrun a slow sink that also refuses some events, and every
// event made is either delivered or counted — in a producer ring's
// Dropped, the sink queue's Dropped or the sink's Failed.
func TestHubCountsEveryLostEvent(t *testing.T) {
	h := newHub(t, 2, MinRing)
	rec := &recorder{slow: 200 * time.Microsecond, failEvery: 7}
	if err := h.Add("slow", rec, Filter{}); err != nil {
		t.Fatal(err)
	}
	h.Start()
	const each = 50000
	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				e := seq(i)
				h.Ring(p).Push(&e)
			}
		}(p)
	}
	wg.Wait()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	st := h.Stats()
	var made, ringDropped uint64
	for _, p := range st.Producers {
		made += p.Queued + p.Dropped
		ringDropped += p.Dropped
	}
	o := st.Outlets[0]
	delivered := uint64(len(rec.got()))
	if made != 2*each {
		t.Fatalf("producers made %d, want %d", made, 2*each)
	}
	if delivered != o.Exported {
		t.Fatalf("sink has %d events, Exported says %d", delivered, o.Exported)
	}
	if lost := ringDropped + o.Dropped + o.Failed; delivered+lost != made {
		t.Fatalf("delivered %d + lost %d (rings %d, queue %d, failed %d) != made %d", delivered, lost, ringDropped, o.Dropped, o.Failed, made)
	}
	if o.Failed == 0 {
		t.Fatal("the sink refused events but Failed is 0")
	}
	t.Logf("made %d: delivered %d, ring drops %d, queue drops %d, failed %d", made, delivered, ringDropped, o.Dropped, o.Failed)
}

func TestHubTicksSinksWhileBusy(t *testing.T) {
	h := newHub(t, 1, 1024)
	rec := &recorder{}
	if err := h.Add("r", rec, Filter{}); err != nil {
		t.Fatal(err)
	}
	h.Start()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		e := seq(i)
		h.Ring(0).Push(&e)
		rec.mu.Lock()
		ticks := rec.ticks
		rec.mu.Unlock()
		if ticks >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no ticks while events flow")
		}
		time.Sleep(100 * time.Microsecond)
	}
	h.Close()
}

func TestSubscriptionReadsFilteredAndCountsLoss(t *testing.T) {
	h := newHub(t, 1, DefaultRing)
	h.Start()
	defer h.Close()
	f := Filter{Addr: netip.MustParsePrefix("10.77.0.0/24")}
	sub, err := h.Subscribe("test", f)
	if err != nil {
		t.Fatal(err)
	}
	in, out := seq(1), seq(2)
	in.Inside.SrcAddr = 0x0a4d0005 // 10.77.0.5
	out.Inside.SrcAddr = 0x0a4e0005
	h.Ring(0).Push(&out)
	h.Ring(0).Push(&in)
	buf := make([]Event, 8)
	var got []Event
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		n, lost, err := sub.Read(buf, 100*time.Millisecond)
		if err != nil || lost != 0 {
			t.Fatalf("read: %v, lost %d", err, lost)
		}
		got = append(got, buf[:n]...)
	}
	if len(got) != 1 || got[0].Time != 1 {
		t.Fatalf("got %v, want only the 10.77.0.5 event", got)
	}
	// Fall behind by more than the queue holds: Read reports the loss.
	for i := 0; i < SubscriptionRing+100; i++ {
		h.Ring(0).Push(&in)
		if i%1000 == 0 {
			time.Sleep(2 * time.Millisecond) // let the Hub keep up with the ring
		}
	}
	// Wait until the Hub has offered them all to the subscription.
	for deadline := time.Now().Add(30 * time.Second); ; {
		st := h.Stats().Outlets[0]
		if st.Queued+st.Dropped == 1+SubscriptionRing+100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub offered %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	var n, lost uint64
	for deadline := time.Now().Add(30 * time.Second); n+lost < SubscriptionRing+100; {
		if time.Now().After(deadline) {
			t.Fatalf("read %d, lost %d of %d", n, lost, SubscriptionRing+100)
		}
		k, l, err := sub.Read(buf, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		n, lost = n+uint64(k), lost+l
	}
	if lost == 0 || n+lost != SubscriptionRing+100 {
		t.Fatalf("read %d + lost %d, want %d with some lost", n, lost, SubscriptionRing+100)
	}
	sub.Close()
	if _, _, err := sub.Read(buf, time.Millisecond); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestSubscriptionLimitAndHubClose(t *testing.T) {
	h := newHub(t, 1, MinRing)
	h.Start()
	var subs []*Subscription
	for i := 0; i < MaxSubscriptions; i++ {
		s, err := h.Subscribe("s", Filter{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if _, err := h.Subscribe("s", Filter{}); !errors.Is(err, ErrTooMany) {
		t.Fatalf("subscription %d: %v, want ErrTooMany", MaxSubscriptions+1, err)
	}
	subs[0].Close()
	if s, err := h.Subscribe("s", Filter{}); err != nil {
		t.Fatalf("after a close: %v", err)
	} else {
		subs[0] = s
	}
	e := seq(5)
	h.Ring(0).Push(&e)
	h.Close()
	buf := make([]Event, 4)
	// The event made before Close is still read, then the feed ends.
	if n, _, err := subs[1].Read(buf, time.Second); n != 1 || err != nil {
		t.Fatalf("read after hub close: %d, %v", n, err)
	}
	if _, _, err := subs[1].Read(buf, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("second read: %v, want ErrClosed", err)
	}
	subs[2].Close() // after the Hub closed: no panic
	if _, err := h.Subscribe("s", Filter{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe after close: %v", err)
	}
}

// TestHubCloseDrainsEveryRing: Close hands on everything the rings still
// hold, however much (a pass of the Hub takes a few batches per ring), so
// that every event made is exported or counted as dropped — started or
// not.
func TestHubCloseDrainsEveryRing(t *testing.T) {
	for _, started := range []bool{true, false} {
		h := newHub(t, 2, 1<<14)
		rec := &recorder{}
		if err := h.Add("rec", rec, Filter{}); err != nil {
			t.Fatal(err)
		}
		if started {
			h.Start()
		}
		const n = 20 * batch
		for i := range n {
			h.Ring(i % 2).Push(&Event{Type: SessionCreate, Time: int64(i + 1)})
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(rec.got()); got != n {
			t.Errorf("started %t: %d of %d events exported after Close", started, got, n)
		}
	}
}

// TestHubAlone checks the Hub without sinks or subscriptions: once quiet
// it sleeps pollAlone between sweeps, yet it still empties the rings (a
// full ring, swept, takes a ring's worth more without a drop), and a
// subscription that arrives wakes it to hand on what follows.
func TestHubAlone(t *testing.T) {
	const size = 1024
	h := newHub(t, 1, size)
	h.Start()
	defer h.Close()
	quiet := 2 * (idleAfter*pollBusy + pollAlone)
	for round := range 2 {
		time.Sleep(quiet) // asleep for pollAlone
		for i := range size {
			e := seq(round*size + i)
			h.Ring(0).Push(&e)
		}
		time.Sleep(20 * pollAlone) // a sweep, with room for a loaded machine
	}
	if st := h.Ring(0).Stats(); st.Queued != 2*size || st.Dropped != 0 {
		t.Fatalf("ring %+v, want %d queued and none dropped", st, 2*size)
	}
	time.Sleep(quiet)
	sub, err := h.Subscribe("late", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	e := seq(7)
	h.Ring(0).Push(&e)
	buf := make([]Event, 4)
	for deadline := time.Now().Add(30 * time.Second); ; {
		n, _, err := sub.Read(buf, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 && buf[0].Time == e.Time {
			break
		}
		if n != 0 || time.Now().After(deadline) {
			t.Fatalf("subscription read %v, want the event made after it", buf[:n])
		}
	}
}
