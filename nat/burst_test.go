package nat

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/syslog"
	"github.com/fastnat/fastnat/packet"
)

// burstSessions is the size of the burst the accounting is proved on.
const burstSessions = 100_000

// TestBurstAccounting makes 100,000 new sessions in one burst through the
// real NAT — each also a new endpoint-independent binding, so 200,000
// events — with the event log exporting to a syslog collector over TCP (a
// transport that loses nothing silently), and checks that the collector
// got every event the counters say reached it: made = ring dropped +
// queue dropped + failed + exported, and exported = received, exactly.
// With a ring that holds the burst nothing is lost; with a small ring
// drained while the burst runs, or not drained at all until it ends,
// events are lost and every one of them is counted.
func TestBurstAccounting(t *testing.T) {
	n := burstSessions
	if testing.Short() {
		n = 20_000
	}
	tests := []struct {
		name    string
		ring    int
		start   bool // the event log drains while the burst runs
		noLoss  bool
		allLost int // events the ring must drop: all but a ring's worth
	}{
		{"a ring for the whole burst", 1 << 19, true, true, 0},
		{"a small ring drained meanwhile", 1 << 10, true, false, -1},
		{"a small ring drained after", 1 << 12, false, false, 2*n - 1<<12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			col := startSyslogCollector(t)
			hub, err := natlog.NewHub(natlog.HubConfig{Producers: Producers(1), Ring: tc.ring})
			if err != nil {
				t.Fatal(err)
			}
			x, err := syslog.New(syslog.Config{Transport: syslog.TCP, Address: col.addr, Facility: syslog.DefaultFacility, Hostname: "fastnat"})
			if err != nil {
				t.Fatal(err)
			}
			if err := hub.Add("syslog", x, natlog.Filter{}); err != nil {
				t.Fatal(err)
			}
			if tc.start {
				hub.Start()
			}
			table, err := flowtable.New(flowtable.Config{MaxSessions: n + n/4})
			if err != nil {
				t.Fatal(err)
			}
			pool := make([]netip.Addr, 4)
			for i := range pool {
				pool[i] = netip.AddrFrom4([4]byte{198, 18, 9, byte(i + 1)})
			}
			e := eimEngine(t, table, pool, hub)
			frames := make([][]byte, n)
			for i := range frames {
				// A new inside endpoint each: 10.0.k.1, port 1024 + i%50000.
				frames[i] = testutil.UDP(t, fmt.Sprintf("10.0.%d.1:%d", i/50000, 1024+i%50000), "198.51.100.1:9", []byte("burst"))
			}
			for i, buf := range frames {
				var p packet.Parsed
				if res := packet.Parse(buf, &p); res != packet.OK {
					t.Fatalf("frame %d: %v", i, res)
				}
				var r Result
				e.Process(buf, &p, Inside, 1, &r)
				if r.Verdict != Forward {
					t.Fatalf("session %d: %v", i, r.Verdict)
				}
			}
			if !tc.start {
				hub.Start()
			}
			if err := hub.Close(); err != nil {
				t.Fatal(err)
			}
			received := uint64(col.wait(t))
			st := hub.Stats()
			var made, ringDropped uint64
			for _, p := range st.Producers {
				made += p.Queued + p.Dropped
				ringDropped += p.Dropped
			}
			o := st.Outlets[0]
			t.Logf("%d events made: %d dropped at the ring, %d at the exporter's queue, %d failed, %d exported; the collector got %d",
				made, ringDropped, o.Dropped, o.Failed, o.Exported, received)
			switch {
			case made != uint64(2*n):
				t.Errorf("%d events made, want %d", made, 2*n)
			case made != ringDropped+o.Dropped+o.Failed+o.Exported:
				t.Errorf("made %d != ring dropped %d + queue dropped %d + failed %d + exported %d", made, ringDropped, o.Dropped, o.Failed, o.Exported)
			case o.Exported != received:
				t.Errorf("exported %d, the collector received %d", o.Exported, received)
			case tc.noLoss && received != made:
				t.Errorf("lost %d events with a ring for the whole burst", made-received)
			case tc.allLost > 0 && ringDropped != uint64(tc.allLost):
				t.Errorf("the undrained ring dropped %d, want %d", ringDropped, tc.allLost)
			}
		})
	}
}

// syslogCollector counts the RFC 6587 octet-counted messages it receives
// over TCP, like a syslog server would store them.
type syslogCollector struct {
	addr string
	got  chan int
}

func startSyslogCollector(t *testing.T) *syslogCollector {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	c := &syslogCollector{addr: ln.Addr().String(), got: make(chan int, 1)}
	go func() {
		total := 0
		defer func() { c.got <- total }()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReaderSize(conn, 1<<16)
		for {
			n, err := r.ReadString(' ')
			if err != nil {
				return
			}
			size, err := strconv.Atoi(n[:len(n)-1])
			if err != nil {
				panic(fmt.Sprintf("bad frame length %q", n))
			}
			if _, err := io.CopyN(io.Discard, r, int64(size)); err != nil {
				return
			}
			total++
		}
	}()
	return c
}

// wait returns the number of messages received once the exporter has
// closed its connection.
func (c *syslogCollector) wait(t *testing.T) int {
	t.Helper()
	select {
	case n := <-c.got:
		return n
	case <-time.After(2 * time.Minute):
		t.Fatal("the collector's connection never closed")
		return 0
	}
}

// BenchmarkCreateLogged is the cost of session creation (with a new
// endpoint-independent binding each) with and without the event log: the
// difference is what logging costs a worker, two ring pushes a session.
// The rings are emptied between rounds, outside the timer, and reused, as
// a running event log reuses them.
func BenchmarkCreateLogged(b *testing.B) {
	for _, logged := range []bool{false, true} {
		b.Run(fmt.Sprintf("logging=%t", logged), func(b *testing.B) {
			const n = 1 << 16
			frames := make([][]byte, n)
			for i := range frames {
				frames[i] = testutil.UDP(b, fmt.Sprintf("10.0.%d.1:%d", i/50000, 1024+i%50000), "198.51.100.1:9", []byte("burst"))
			}
			hub, _ := natlog.NewHub(natlog.HubConfig{Producers: Producers(1), Ring: 1 << 18})
			drained := make([]natlog.Event, 4096)
			table, _ := flowtable.New(flowtable.Config{MaxSessions: n + n/4})
			buf := make([]byte, 2048)
			b.ResetTimer()
			for done := 0; done < b.N; done += n {
				b.StopTimer()
				for hub.Ring(0).Pop(drained) > 0 {
				}
				table.Range(func(id, gen uint32, _ flowtable.Session) bool { table.DeleteGen(id, gen); return true })
				nt, _ := New(Rules{Outbound: []Outbound{{Inside: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
					Pool:   []netip.Addr{netip.MustParseAddr("198.18.9.1"), netip.MustParseAddr("198.18.9.2")},
					PortLo: 1024, PortHi: 65535, EndpointIndependent: true}}}, table, 1)
				if logged {
					nt.LogTo(hub, time.Now())
				}
				e := nt.Engine(0)
				b.StartTimer()
				for i := 0; i < n && done+i < b.N; i++ {
					f := buf[:len(frames[i])]
					copy(f, frames[i])
					var p packet.Parsed
					packet.Parse(f, &p)
					var r Result
					e.Process(f, &p, Inside, 1, &r)
				}
			}
			if d := hub.Ring(0).Stats().Dropped; d != 0 {
				b.Fatalf("%d events dropped", d)
			}
		})
	}
}

// TestCreateAllocations: creating a session — rule, port, a new
// endpoint-independent binding and its hairpin entry, insert, both event
// records — allocates nothing: the binding and public-endpoint maps are
// allocated with the NAT for the table's capacity (epMap). (Before, the
// Go maps they were grew by about 2,200 allocations for these 8,192
// sessions, and before that each creation made three more: the binding
// and two method values of the maps' lock.)
func TestCreateAllocations(t *testing.T) {
	const n = 1 << 13
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = testutil.UDP(t, fmt.Sprintf("10.0.%d.%d:%d", i>>7, 1+i&0x7f, 1024+i), "198.51.100.1:9", []byte("alloc"))
	}
	hub, err := natlog.NewHub(natlog.HubConfig{Producers: Producers(1), Ring: 1 << 15})
	if err != nil {
		t.Fatal(err)
	}
	table, err := flowtable.New(flowtable.Config{MaxSessions: 2 * n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(table.Close)
	e := eimEngine(t, table, []netip.Addr{netip.MustParseAddr("198.18.9.1"), netip.MustParseAddr("198.18.9.2")}, hub)
	var p packet.Parsed
	var r Result
	var before, after runtime.MemStats
	// The first session on each pool address makes its port spaces: made
	// before counting.
	const warm = 64
	for _, f := range frames[:warm] {
		packet.Parse(f, &p)
		if e.Process(f, &p, Inside, 1, &r); r.Verdict != Forward {
			t.Fatalf("creation refused: %v", r.Verdict)
		}
	}
	runtime.ReadMemStats(&before)
	for _, f := range frames[warm:] {
		packet.Parse(f, &p)
		r = Result{}
		if e.Process(f, &p, Inside, 1, &r); r.Verdict != Forward {
			t.Fatalf("creation refused: %v", r.Verdict)
		}
	}
	runtime.ReadMemStats(&after)
	if got := table.Stats().Sessions; got != n {
		t.Fatalf("%d sessions, want %d", got, n)
	}
	if d := hub.Ring(0).Stats().Dropped; d != 0 {
		t.Fatalf("%d events dropped", d)
	}
	// Mallocs counts the whole process: the event hub's goroutine and the
	// runtime may allocate a few times meanwhile, whatever n is.
	if allocs := after.Mallocs - before.Mallocs; allocs > 8 {
		t.Fatalf("%d allocations for %d sessions; want none of their own", allocs, n-warm)
	}
}

// eimEngine is the engine of a one-worker NAT over table that maps
// 10.0.0.0/8 endpoint-independently onto pool, logging into hub.
func eimEngine(tb testing.TB, table *flowtable.Table, pool []netip.Addr, hub *natlog.Hub) *Engine {
	tb.Helper()
	nt, err := New(Rules{Outbound: []Outbound{{Inside: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Pool: pool,
		PortLo: 1024, PortHi: 65535, EndpointIndependent: true}}}, table, 1)
	if err != nil {
		tb.Fatal(err)
	}
	if err := nt.LogTo(hub, time.Now()); err != nil {
		tb.Fatal(err)
	}
	return nt.Engine(0)
}
