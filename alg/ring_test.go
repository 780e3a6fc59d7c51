package alg

import (
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
)

func TestNewRing(t *testing.T) {
	for _, c := range []struct {
		name string
		size int
		ok   bool
	}{{"zero", 0, false}, {"one", 1, false}, {"two", 2, true}, {"not a power", 48, false}, {"1024", 1024, true}, {"too big", 1 << 21, false}} {
		r, err := NewRing(c.size)
		if (err == nil) != c.ok || (c.ok && r.Cap() != c.size) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestRingOrderAndBounds(t *testing.T) {
	r, _ := NewRing(8)
	items := make([]Item, 5)
	for i := range items {
		items[i].Handle = uint64(i)
	}
	if n := r.Push(items); n != 5 {
		t.Fatalf("pushed %d", n)
	}
	if n := r.Push(items); n != 3 || r.Len() != 8 {
		t.Fatalf("pushed %d into the rest, len %d", n, r.Len())
	}
	if n := r.Push(items); n != 0 {
		t.Fatalf("pushed %d into a full ring", n)
	}
	out := make([]Item, 16)
	if n := r.Pop(out); n != 8 {
		t.Fatalf("popped %d", n)
	}
	want := []uint64{0, 1, 2, 3, 4, 0, 1, 2}
	for i, w := range want {
		if out[i].Handle != w {
			t.Fatalf("item %d handle %d, want %d", i, out[i].Handle, w)
		}
	}
	if n := r.Pop(out); n != 0 {
		t.Fatalf("popped %d from an empty ring", n)
	}
	// Wrap around the end many times.
	for k := 0; k < 100; k++ {
		items[0].Handle = uint64(k)
		if r.Push(items[:3]) != 3 || r.Pop(out[:3]) != 3 || out[0].Handle != uint64(k) {
			t.Fatalf("round %d", k)
		}
	}
}

// TestRingConcurrent: one producer, one consumer, every item arrives once
// and in order (run it with -race).
func TestRingConcurrent(t *testing.T) {
	r, _ := NewRing(64)
	const total = 100000
	done := make(chan struct{})
	go func() {
		defer close(done)
		batch := make([]Item, 7)
		one := []byte{1}
		next := uint64(0)
		for next < total {
			n := 0
			for n < len(batch) && next+uint64(n) < total {
				batch[n] = Item{Handle: next + uint64(n), Buf: one}
				n++
			}
			k := r.Push(batch[:n])
			next += uint64(k)
		}
	}()
	out := make([]Item, 13)
	want := uint64(0)
	for want < total {
		n := r.Pop(out)
		for _, it := range out[:n] {
			if it.Handle != want || len(it.Buf) != 1 {
				t.Fatalf("got item %d, want %d", it.Handle, want)
			}
			want++
		}
	}
	<-done
}

func TestRingAllocs(t *testing.T) {
	r, _ := NewRing(64)
	items := make([]Item, 32)
	out := make([]Item, 32)
	if a := testing.AllocsPerRun(1000, func() {
		r.Push(items)
		r.Pop(out)
	}); a != 0 {
		t.Errorf("%v allocations per push+pop", a)
	}
}

// TestRunner: two workers' frames go through the ALG goroutine and come
// back to the worker they came from, in order, processed, even when the
// return ring is too small for a whole batch.
func TestRunner(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	h.handshake(isnC, isnS)
	in := []*Ring{mustRing(t, 16), mustRing(t, 16)}
	out := []*Ring{mustRing(t, 4), mustRing(t, 16)}
	run, err := NewRunner(h.ftp, in, out, 8, func() flowtable.Time { return 1 })
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); run.Run(stop) }()

	// Worker 0 carries the server's replies, worker 1 the client's acks.
	const n = 40
	var got [2][]Item
	var pushed [2]int
	frames := [2][][]byte{}
	seq := isnS + 1
	for i := 0; i < n; i++ {
		reply := []byte("200 ok\r\n")
		if i%10 == 1 {
			reply = []byte("227 =10,0,0,5,195,80\r\n")
		}
		frames[0] = append(frames[0], h.frame(flowtable.Reply, testutil.ACK, seq, isnC+1, reply))
		seq += uint32(len(reply))
		frames[1] = append(frames[1], h.frame(flowtable.Orig, testutil.ACK, isnC+1, isnS+1, nil))
	}
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]Item, 8)
	for (len(got[0]) < n || len(got[1]) < n) && time.Now().Before(deadline) {
		for w := 0; w < 2; w++ {
			if pushed[w] < n {
				dir := []flowtable.Dir{flowtable.Reply, flowtable.Orig}[w]
				it := Item{Buf: frames[w][pushed[w]], Handle: uint64(pushed[w]), Session: h.id, Gen: 1, Dir: dir, Port: uint8(w)}
				if in[w].Push([]Item{it}) == 1 {
					pushed[w]++
					run.Wake()
				}
			}
			k := out[w].Pop(buf)
			got[w] = append(got[w], buf[:k]...)
		}
	}
	close(stop)
	wg.Wait()
	for w := 0; w < 2; w++ {
		if len(got[w]) != n {
			t.Fatalf("worker %d got %d of %d back", w, len(got[w]), n)
		}
		for i, it := range got[w] {
			if it.Handle != uint64(i) || it.Port != uint8(w) || it.Verdict != Forward {
				t.Fatalf("worker %d item %d: handle %d port %d verdict %v", w, i, it.Handle, it.Port, it.Verdict)
			}
		}
	}
	// The replies came back rewritten and in sequence.
	s := decodeSeg(t, got[0][1].Buf)
	if want := "227 =198,18,0,204,"; s.payload[:len(want)] != want {
		t.Errorf("payload %q", s.payload)
	}
	if len(run.Pending(0)) != 0 {
		t.Error("items left pending")
	}
}

func TestNewRunnerErrors(t *testing.T) {
	h := newHarness(t, serverInside(t), Config{})
	clock := func() flowtable.Time { return 0 }
	r := []*Ring{mustRing(t, 4)}
	for _, c := range []struct {
		name    string
		in, out []*Ring
		batch   int
		clock   func() flowtable.Time
	}{
		{"no rings", nil, nil, 8, clock},
		{"mismatched rings", r, nil, 8, clock},
		{"zero batch", r, r, 0, clock},
		{"no clock", r, r, 8, nil},
	} {
		if _, err := NewRunner(h.ftp, c.in, c.out, c.batch, c.clock); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

func mustRing(tb testing.TB, n int) *Ring {
	tb.Helper()
	r, err := NewRing(n)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
