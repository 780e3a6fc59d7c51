package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/natlogtest"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// TestEventViewRoundTrip: the JSON form of every sample event, and of
// sessions made by hairpinning and by an ALG, decodes back to the same
// event.
func TestEventViewRoundTrip(t *testing.T) {
	samples := natlogtest.Events()
	hairpin, alg, orphan := samples[0], samples[1], samples[0]
	hairpin.RuleKind, hairpin.Rule, hairpin.Via = natlog.RuleServer, 2, natlog.ViaHairpin
	alg.Via, alg.App = natlog.ViaALG, uint8(portmap.AppFTPData)
	orphan.RuleKind, orphan.Via = natlog.RuleNone, natlog.ViaALG
	for _, e := range append(samples, hairpin, alg, orphan) {
		v := EventView(&e)
		b, err := json.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		got, err := back.Natlog()
		if err != nil {
			t.Fatalf("%s: %v\n%s", e.Type, err, b)
		}
		// Fields an event type does not carry are not in its JSON form.
		want := e
		if e.Type != natlog.SessionCreate && e.Type != natlog.SessionDelete {
			want.App = 0
		}
		if got != want {
			t.Errorf("%s: round trip\n got %+v\nwant %+v\n%s", e.Type, got, want, b)
		}
	}
	e := natlogtest.Events()[0]
	b, _ := json.Marshal(EventView(&e))
	want := `{"type":"session-create","time":"2025-12-03T09:18:26.295Z","protocol":"tcp","inside":{"src":"10.77.0.5:40000","dst":"198.51.100.1:80"},"outside":{"src":"198.18.0.204:40123","dst":"198.51.100.1:80"},"rule":"nat.outbound[0]","app":"http"}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	e = samples[1]
	e.Via = natlog.ViaALG
	b, _ = json.Marshal(EventView(&e))
	want = `{"type":"session-delete","time":"2025-12-03T09:20:26.795Z","protocol":"tcp","inside":{"src":"10.77.0.5:40000","dst":"198.51.100.1:80"},"outside":{"src":"198.18.0.204:40123","dst":"198.51.100.1:80"},"rule":"nat.outbound[0]/alg","app":"http","start":"2025-12-03T09:18:26.295Z","traffic":{"initiator":{"packets":17,"bytes":822},"responder":{"packets":16,"bytes":1289}}}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}

func TestEventFilter(t *testing.T) {
	good := []struct {
		f    EventFilter
		want natlog.Filter
	}{
		{EventFilter{}, natlog.Filter{}},
		{EventFilter{Types: []string{"session-create", "Quota-Exceeded"}, Addr: "10.77.0.5", Port: 40123, Protocol: "TCP", App: "ftp-data"},
			natlog.Filter{Types: natlog.TypeSet(0).With(natlog.SessionCreate).With(natlog.QuotaExceeded),
				Addr: netip.MustParsePrefix("10.77.0.5/32"), Port: 40123, Proto: packet.ProtoTCP, Apps: 1 << portmap.AppFTPData}},
		{EventFilter{Addr: "10.77.0.9/24", Protocol: "icmp"}, natlog.Filter{Addr: netip.MustParsePrefix("10.77.0.0/24"), Proto: packet.ProtoICMP}},
		{EventFilter{Protocol: "47"}, natlog.Filter{Proto: 47}},
		{EventFilter{Protocol: "GRE"}, natlog.Filter{Proto: packet.ProtoGRE}},
	}
	for _, tc := range good {
		got, err := tc.f.Filter()
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%+v: %+v, %v; want %+v", tc.f, got, err, tc.want)
		}
	}
	for _, f := range []EventFilter{
		{Types: []string{"session"}}, {Addr: "10.77.0"}, {Addr: "2001:db8::/32"}, {Port: 70000}, {Port: -1},
		{Protocol: "ipip"}, {Protocol: "0"}, {App: "gopher"},
	} {
		if _, err := f.Filter(); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", f, err)
		}
	}
}

// eventRig is a control server over a fake handler with a Hub as its
// event source; ring is the Hub's one producer.
type eventRig struct {
	hub  *natlog.Hub
	ring *natlog.Ring
	srv  *Server
	path string
}

func newEventRig(t *testing.T) *eventRig {
	t.Helper()
	hub, err := natlog.NewHub(natlog.HubConfig{Producers: 1})
	if err != nil {
		t.Fatal(err)
	}
	hub.Start()
	t.Cleanup(func() { hub.Close() })
	srv, path := listen(t, &fakeHandler{})
	srv.ServeEvents(hub)
	return &eventRig{hub: hub, ring: hub.Ring(0), srv: srv, path: path}
}

// subscribers waits until the Hub has n subscriptions.
func (r *eventRig) subscribers(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(r.hub.Stats().Outlets) != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions, want %d", len(r.hub.Stats().Outlets), n)
		}
	}
}

type streamed struct {
	mu     sync.Mutex
	events []Event
}

func (s *streamed) add(e *Event) error {
	s.mu.Lock()
	s.events = append(s.events, *e)
	s.mu.Unlock()
	return nil
}

func (s *streamed) wait(t *testing.T, n int) []Event {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s.mu.Lock()
		got := append([]Event(nil), s.events...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events streamed, want %d", len(got), n)
		}
	}
}

func TestStreamFiltersAndKeepsRequestsWorking(t *testing.T) {
	r := newEventRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	var got streamed
	done := make(chan error, 1)
	go func() {
		done <- Stream(ctx, r.path, EventFilter{Addr: "198.18.0.204", Types: []string{"session-create", "block-alloc"}}, got.add)
	}()
	r.subscribers(t, 1)

	// An ordinary request while the stream is open.
	if resp, err := call(t, r.path, Request{Cmd: CmdStats}); err != nil || resp.Stats == nil {
		t.Fatalf("stats during a stream: %v", err)
	}
	evs := natlogtest.Events()
	for i := range evs {
		r.ring.Push(&evs[i])
	}
	// Session creates of 198.18.0.204 (the first and the inbound one);
	// the block is on 198.18.0.205.
	streamedEvents := got.wait(t, 2)
	for i, want := range []natlog.Event{evs[0], evs[len(evs)-1]} {
		if e, err := streamedEvents[i].Natlog(); err != nil || e != want {
			t.Errorf("event %d: %+v, %v; want %+v", i, e, err, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Stream after cancel: %v", err)
	}
	// The client left: the server drops its subscription.
	r.subscribers(t, 0)
	if len(got.events) != 2 {
		t.Fatalf("streamed %d events, want 2", len(got.events))
	}
}

func TestStreamRefusals(t *testing.T) {
	_, path := listen(t, &fakeHandler{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Stream(ctx, path, EventFilter{}, func(*Event) error { return nil })
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != CodeFailed {
		t.Fatalf("stream without an event source: %v", err)
	}
	r := newEventRig(t)
	if err := Stream(ctx, r.path, EventFilter{Types: []string{"nope"}}, func(*Event) error { return nil }); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("stream with a bad filter: %v", err)
	}
}

func TestServerCloseEndsStreams(t *testing.T) {
	r := newEventRig(t)
	done := make(chan error, 1)
	go func() {
		done <- Stream(context.Background(), r.path, EventFilter{}, func(*Event) error { return nil })
	}()
	r.subscribers(t, 1)
	r.srv.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStreamEnded) {
			t.Fatalf("Stream after the server closed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream outlived the server")
	}
}

// TestStreamCountsLostEvents: a client that does not read while 30000
// events pass loses some; what it reads plus what the stream says it
// lost is every event, exactly.
func TestStreamCountsLostEvents(t *testing.T) {
	r := newEventRig(t)
	c, err := net.Dial("unix", r.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(&Request{Cmd: CmdEvents}); err != nil {
		t.Fatal(err)
	}
	r.subscribers(t, 1)
	const total = 30000
	e := natlogtest.Events()[0]
	for pushed := 0; pushed < total; {
		for i := 0; i < 5000; i++ {
			e.Time++
			r.ring.Push(&e)
		}
		pushed += 5000
		// Let the Hub keep up, so that only the stream loses events.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			o := r.hub.Stats().Outlets[0]
			if o.Queued+o.Dropped == uint64(pushed) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("hub offered %+v of %d", o, pushed)
			}
		}
	}
	if d := r.hub.Stats().Producers[0].Dropped; d != 0 {
		t.Fatalf("the producer ring dropped %d", d)
	}
	dec := json.NewDecoder(bufio.NewReader(c))
	var resp Response
	if err := dec.Decode(&resp); err != nil || !resp.Stream {
		t.Fatalf("header %+v, %v", resp, err)
	}
	var events, lost uint64
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for events+lost < total {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("after %d events and %d lost: %v", events, lost, err)
		}
		if ev.Type == TypeLost {
			lost += ev.Lost
		} else {
			events++
		}
	}
	if lost == 0 || events+lost != total {
		t.Fatalf("read %d and lost %d of %d", events, lost, total)
	}
	t.Logf("read %d, lost %d", events, lost)
}
