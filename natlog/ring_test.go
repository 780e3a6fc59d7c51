package natlog

import (
	"errors"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/fastnat/fastnat/packet"
)

func TestEventIsCompactAndPointerFree(t *testing.T) {
	// 96 bytes: one and a half cache lines per event copied into a ring.
	if s := unsafe.Sizeof(Event{}); s != 96 {
		t.Fatalf("Event is %d bytes, want 96", s)
	}
}

func TestNewRingRefusesBadSizes(t *testing.T) {
	for _, n := range []int{0, 1, 63, 100, MaxRing * 2} {
		if _, err := NewRing(n); !errors.Is(err, ErrConfig) {
			t.Errorf("NewRing(%d) = %v, want ErrConfig", n, err)
		}
	}
}

func seq(i int) Event {
	return Event{Type: SessionCreate, Time: int64(i), Inside: packet.Tuple{SrcAddr: uint32(i), Proto: packet.ProtoUDP}}
}

func TestRingFIFOAndExactDrops(t *testing.T) {
	r, err := NewRing(MinRing)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < MinRing+10; i++ {
		e := seq(i)
		if got, want := r.Push(&e), i < MinRing; got != want {
			t.Fatalf("push %d = %v, want %v", i, got, want)
		}
	}
	if st := r.Stats(); st.Queued != MinRing || st.Dropped != 10 {
		t.Fatalf("stats %+v, want %d queued, 10 dropped", st, MinRing)
	}
	buf := make([]Event, 40)
	n := r.Pop(buf)
	if n != 40 || buf[0].Time != 0 || buf[39].Time != 39 {
		t.Fatalf("pop %d, first %d last %d", n, buf[0].Time, buf[n-1].Time)
	}
	// Room again: the next push lands after the remaining 24.
	e := seq(1000)
	if !r.Push(&e) {
		t.Fatal("push after pop failed")
	}
	n = r.Pop(buf)
	if n != 25 || buf[0].Time != 40 || buf[24].Time != 1000 {
		t.Fatalf("second pop %d, first %d last %d", n, buf[0].Time, buf[n-1].Time)
	}
	if r.Len() != 0 || r.Pop(buf) != 0 {
		t.Fatal("ring not empty")
	}
}

func TestRingConcurrentProducerConsumer(t *testing.T) {
	r, err := NewRing(256)
	if err != nil {
		t.Fatal(err)
	}
	const total = 200000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			e := seq(i)
			r.Push(&e)
		}
	}()
	buf := make([]Event, 64)
	got, last := 0, int64(-1)
	for {
		n := r.Pop(buf)
		for _, e := range buf[:n] {
			if e.Time <= last || e.Inside.SrcAddr != uint32(e.Time) {
				t.Fatalf("event %d after %d, or torn (%d)", e.Time, last, e.Inside.SrcAddr)
			}
			last = e.Time
		}
		got += n
		st := r.Stats()
		if st.Queued+st.Dropped == total && uint64(got) == st.Queued {
			break
		}
	}
	wg.Wait()
	st := r.Stats()
	if uint64(got) != st.Queued || st.Queued+st.Dropped != total {
		t.Fatalf("got %d, stats %+v: every event must be popped or counted", got, st)
	}
}

func TestRingPushAllocatesNothing(t *testing.T) {
	r, _ := NewRing(MinRing)
	buf := make([]Event, MinRing)
	e := seq(1)
	if n := testing.AllocsPerRun(1000, func() {
		r.Push(&e)
		r.Pop(buf)
	}); n != 0 {
		t.Fatalf("%v allocations per push and pop", n)
	}
}

// BenchmarkPush is the producer's cost per event on its own: what a
// worker pays to log a session into a ring with room. The ring is drained
// between chunks with the timer stopped.
func BenchmarkPush(b *testing.B) {
	r, _ := NewRing(DefaultRing)
	buf := make([]Event, DefaultRing)
	e := seq(7)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if i%DefaultRing == 0 && i > 0 {
			b.StopTimer()
			r.Pop(buf)
			b.StartTimer()
		}
		e.Time = int64(i)
		r.Push(&e)
	}
	if st := r.Stats(); st.Dropped != 0 {
		b.Fatalf("%d dropped", st.Dropped)
	}
}

// BenchmarkPushConcurrent pushes while another goroutine drains a pass
// every pollBusy, as the Hub does; the producer here runs far faster than
// a worker makes sessions, so it reports the share it dropped.
func BenchmarkPushConcurrent(b *testing.B) {
	r, _ := NewRing(DefaultRing)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]Event, batch)
		for {
			select {
			case <-stop:
				return
			case <-time.After(pollBusy):
			}
			for r.Pop(buf) > 0 {
			}
		}
	}()
	e := seq(7)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.Time = int64(i)
		r.Push(&e)
	}
	close(stop)
	<-done
	st := r.Stats()
	b.ReportMetric(float64(st.Dropped)/float64(st.Queued+st.Dropped), "dropped/event")
}

// BenchmarkPushFull is the cost of a drop: the ring stays full.
func BenchmarkPushFull(b *testing.B) {
	r, _ := NewRing(MinRing)
	e := seq(7)
	for r.Push(&e) {
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Push(&e)
	}
}

// TestStageThenPublish: staged events stay invisible to the consumer
// until Publish, then arrive in order; a full ring counts what Stage
// could not queue, as Push does.
func TestStageThenPublish(t *testing.T) {
	r, err := NewRing(MinRing)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]Event, 2*MinRing)
	for i := range 3 {
		if !r.Stage(&Event{Limit: uint32(i)}) {
			t.Fatalf("stage %d refused", i)
		}
	}
	if n := r.Pop(buf); n != 0 || r.Len() != 0 {
		t.Fatalf("popped %d staged events (Len %d) before Publish", n, r.Len())
	}
	r.Publish()
	if n := r.Pop(buf); n != 3 || buf[0].Limit != 0 || buf[2].Limit != 2 {
		t.Fatalf("after Publish popped %d events: %v", n, buf[:n])
	}
	for range MinRing + 5 {
		r.Stage(&Event{})
	}
	r.Publish()
	if st := r.Stats(); st.Dropped != 5 || st.Queued != 3+MinRing {
		t.Fatalf("stats %+v, want %d queued and 5 dropped", st, 3+MinRing)
	}
}
