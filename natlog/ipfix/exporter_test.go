package ipfix

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/natlogtest"
	"github.com/fastnat/fastnat/packet"
)

// sink is a local UDP collector that keeps every datagram.
type sink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	got  [][]byte
	done chan struct{}
}

func newSink(t testing.TB) *sink { return startSink(t, true) }

// startSink listens on loopback; keep=false only counts datagrams (for
// benchmarks, so that the sink's copies do not count as allocations).
func startSink(t testing.TB, keep bool) *sink {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(8 << 20)
	s := &sink{conn: c, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 65536)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if keep {
				s.mu.Lock()
				s.got = append(s.got, append([]byte(nil), buf[:n]...))
				s.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); <-s.done })
	return s
}

func (s *sink) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// wait returns the datagrams once n have arrived.
func (s *sink) wait(t *testing.T, n int) [][]byte {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		s.mu.Lock()
		got := append([][]byte(nil), s.got...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d datagrams arrived, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func events() []natlog.Event { return natlogtest.Events() }

// check compares a decoded record with the event it must carry, element
// by element, by the IANA definitions.
func check(t *testing.T, r record, e natlog.Event) {
	t.Helper()
	want := map[ieKey]uint64{
		{id: ieObservationTimeMilliseconds}: uint64(e.Time),
	}
	tuple := func() {
		want[ieKey{id: ieSourceIPv4Address}] = uint64(e.Inside.SrcAddr)
		want[ieKey{id: iePostNATSourceIPv4Address}] = uint64(e.Outside.SrcAddr)
		want[ieKey{id: ieProtocolIdentifier}] = uint64(e.Inside.Proto)
		want[ieKey{id: ieSourceTransportPort}] = uint64(e.Inside.SrcPort)
		want[ieKey{id: iePostNAPTSourceTransportPort}] = uint64(e.Outside.SrcPort)
	}
	switch e.Type {
	case natlog.SessionCreate, natlog.SessionDelete:
		want[ieKey{id: ieNATEvent}] = map[natlog.Type]uint64{natlog.SessionCreate: 4, natlog.SessionDelete: 5}[e.Type]
		tuple()
		want[ieKey{id: ieDestinationIPv4Address}] = uint64(e.Inside.DstAddr)
		want[ieKey{id: iePostNATDestinationIPv4Address}] = uint64(e.Outside.DstAddr)
		want[ieKey{id: ieDestinationTransportPort}] = uint64(e.Inside.DstPort)
		want[ieKey{id: iePostNAPTDestinationTransportPort}] = uint64(e.Outside.DstPort)
		if e.Type == natlog.SessionDelete {
			want[ieKey{id: ieFlowStartMilliseconds}] = uint64(e.Start)
			want[ieKey{id: ieFlowEndMilliseconds}] = uint64(e.Time)
			want[ieKey{id: iePacketTotalCount}] = e.Packets[0]
			want[ieKey{id: iePacketTotalCount, pen: reversePEN}] = e.Packets[1]
			want[ieKey{id: ieOctetTotalCount}] = e.Bytes[0]
			want[ieKey{id: ieOctetTotalCount, pen: reversePEN}] = e.Bytes[1]
		}
	case natlog.BindingCreate, natlog.BindingDelete:
		want[ieKey{id: ieNATEvent}] = map[natlog.Type]uint64{natlog.BindingCreate: 8, natlog.BindingDelete: 9}[e.Type]
		tuple()
	case natlog.BlockAlloc, natlog.BlockRelease:
		want[ieKey{id: ieNATEvent}] = map[natlog.Type]uint64{natlog.BlockAlloc: 16, natlog.BlockRelease: 17}[e.Type]
		want[ieKey{id: ieSourceIPv4Address}] = uint64(e.Inside.SrcAddr)
		want[ieKey{id: iePostNATSourceIPv4Address}] = uint64(e.Outside.SrcAddr)
		want[ieKey{id: iePortRangeStart}] = uint64(e.First)
		want[ieKey{id: iePortRangeEnd}] = uint64(e.Last)
		want[ieKey{id: iePortRangeStepSize}] = 1
		want[ieKey{id: iePortRangeNumPorts}] = uint64(e.Last) - uint64(e.First) + 1
	case natlog.AddressesExhausted:
		want[ieKey{id: ieNATEvent}] = 3
		want[ieKey{id: ieNATPoolID}] = uint64(e.Rule) + 1
	case natlog.PortsExhausted:
		want[ieKey{id: ieNATEvent}] = 12
		want[ieKey{id: iePostNATSourceIPv4Address}] = uint64(e.Outside.SrcAddr)
		want[ieKey{id: ieProtocolIdentifier}] = uint64(e.Inside.Proto)
	case natlog.QuotaExceeded:
		want[ieKey{id: ieNATEvent}] = 13
		want[ieKey{id: ieNATQuotaExceededEvent}] = 3
		want[ieKey{id: ieMaxEntriesPerUser}] = uint64(e.Limit)
		want[ieKey{id: ieSourceIPv4Address}] = uint64(e.Inside.SrcAddr)
	}
	if len(r.values) != len(want) {
		t.Errorf("%s: record has %d elements, want %d", e.Type, len(r.values), len(want))
	}
	for k, v := range want {
		if got := r.up(k.id, k.pen); got != v {
			t.Errorf("%s: element %d/%d = %d, want %d", e.Type, k.pen, k.id, got, v)
		}
	}
}

func newExporter(t *testing.T, s *sink, cfg Config) *Exporter {
	t.Helper()
	cfg.Collector = s.addr()
	x, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

func TestExportEveryEventType(t *testing.T) {
	s := newSink(t)
	x := newExporter(t, s, Config{Domain: 7})
	evs := events()
	if failed, err := x.Export(evs); failed != 0 || err != nil {
		t.Fatalf("export: %d failed, %v", failed, err)
	}
	got := s.wait(t, 2)
	rd := newReader()
	tm, err := rd.parse(got[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.templates) != numTemplates || len(tm.records) != 0 {
		t.Fatalf("first message: %d templates, %d records; want the %d templates alone", len(tm.templates), len(tm.records), numTemplates)
	}
	dm, err := rd.parse(got[1])
	if err != nil {
		t.Fatal(err)
	}
	if dm.domain != 7 || dm.seq != 0 || len(dm.records) != len(evs) {
		t.Fatalf("data message: domain %d, seq %d, %d records; want 7, 0, %d", dm.domain, dm.seq, len(dm.records), len(evs))
	}
	if d := time.Since(time.Unix(int64(dm.exportTime), 0)); d < -time.Minute || d > time.Minute {
		t.Fatalf("export time %d is not now", dm.exportTime)
	}
	for i, r := range dm.records {
		if want := templates[kinds[evs[i].Type].tmpl].id; r.tmpl != want {
			t.Errorf("%s: template %d, want %d", evs[i].Type, r.tmpl, want)
		}
		check(t, r, evs[i])
	}
	if st := x.Stats(); st.Records != uint64(len(evs)) || st.Messages != 2 || st.Templates != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestExportSplitsMessagesAndCountsSequence(t *testing.T) {
	s := newSink(t)
	x := newExporter(t, s, Config{MaxMessage: MinMessage})
	all := events()
	var evs []natlog.Event
	for i := 0; i < 1000; i++ {
		e := all[i%len(all)]
		e.Time += int64(i) * 1000
		evs = append(evs, e)
	}
	if failed, err := x.Export(evs); failed != 0 || err != nil {
		t.Fatalf("export: %d failed, %v", failed, err)
	}
	want := int(x.Stats().Messages)
	got := s.wait(t, want)
	rd := newReader()
	var recs []record
	seq := uint32(0)
	for i, d := range got {
		if len(d) > MinMessage {
			t.Fatalf("message %d is %d bytes, over %d", i, len(d), MinMessage)
		}
		m, err := rd.parse(d)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if m.seq != seq {
			t.Fatalf("message %d: sequence %d, want %d (data records before it)", i, m.seq, seq)
		}
		seq += uint32(len(m.records))
		recs = append(recs, m.records...)
	}
	if len(recs) != len(evs) {
		t.Fatalf("%d records, want %d", len(recs), len(evs))
	}
	for i := range recs {
		check(t, recs[i], evs[i])
	}
}

func TestTemplateRefresh(t *testing.T) {
	s := newSink(t)
	now := time.Unix(1764753506, 0)
	x := newExporter(t, s, Config{Refresh: 30 * time.Second, Now: func() time.Time { return now }})
	if err := x.Tick(now); err != nil { // the first tick sends them
		t.Fatal(err)
	}
	if err := x.Tick(now.Add(29 * time.Second)); err != nil {
		t.Fatal(err)
	}
	x.Export(events()[:1])
	if err := x.Tick(now.Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := s.wait(t, 3)
	rd := newReader()
	var kinds []string
	for _, d := range got {
		m, err := rd.parse(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.templates) > 0 {
			kinds = append(kinds, "templates")
		} else {
			kinds = append(kinds, "data")
		}
	}
	if len(kinds) != 3 || kinds[0] != "templates" || kinds[1] != "data" || kinds[2] != "templates" {
		t.Fatalf("messages %v, want templates, data, templates", kinds)
	}
}

func TestExportCountsFailedSends(t *testing.T) {
	s := newSink(t)
	x := newExporter(t, s, Config{})
	x.conn.Close() // every send now fails
	evs := events()
	failed, err := x.Export(evs)
	if failed != len(evs) || err == nil {
		t.Fatalf("export on a closed socket: %d failed, %v; want %d and an error", failed, err, len(evs))
	}
	if !errors.Is(err, net.ErrClosed) {
		t.Fatalf("error %v does not wrap net.ErrClosed", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{Collector: netip.MustParseAddrPort("127.0.0.1:0")},
		{Collector: netip.MustParseAddrPort("127.0.0.1:4739"), MaxMessage: 100},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

func TestExportAllocatesNothing(t *testing.T) {
	s := newSink(t)
	x := newExporter(t, s, Config{})
	evs := events()
	x.Export(evs)
	if n := testing.AllocsPerRun(100, func() { x.Export(evs) }); n != 0 {
		t.Fatalf("%v allocations per Export", n)
	}
}

// BenchmarkExport is the IPFIX sink's cost per event, sends included, in
// batches of 256 session creates like the Hub hands over.
func BenchmarkExport(b *testing.B) {
	s := startSink(b, false)
	x, err := New(Config{Collector: s.addr()})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	evs := make([]natlog.Event, 256)
	for i := range evs {
		evs[i] = events()[0]
	}
	b.ReportAllocs()
	for b.Loop() {
		x.Export(evs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
}

// TestExportRandomEvents encodes random events of every type, with random
// fields and message sizes, and checks each record the independent reader
// decodes against its event, in order.
func TestExportRandomEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 20 {
		s := newSink(t)
		x := newExporter(t, s, Config{MaxMessage: MinMessage + rng.IntN(2000), Domain: rng.Uint32()})
		evs := make([]natlog.Event, 1+rng.IntN(400))
		for i := range evs {
			e := &evs[i]
			e.Type = natlog.Type(1 + rng.IntN(int(natlog.NumTypes)-1))
			e.Time, e.Start = rng.Int64N(1<<42), rng.Int64N(1<<42)
			e.Inside = packet.Tuple{SrcAddr: rng.Uint32(), DstAddr: rng.Uint32(), SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()), Proto: uint8(rng.Uint32())}
			e.Outside = packet.Tuple{SrcAddr: rng.Uint32(), DstAddr: rng.Uint32(), SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()), Proto: e.Inside.Proto}
			e.Packets, e.Bytes = [2]uint64{rng.Uint64(), rng.Uint64()}, [2]uint64{rng.Uint64(), rng.Uint64()}
			e.First = uint16(rng.Uint32())
			e.Last = e.First + uint16(rng.IntN(int(65535-e.First)+1))
			e.Limit, e.Rule, e.RuleKind = rng.Uint32(), uint16(rng.Uint32()), natlog.RuleOutbound
		}
		if failed, err := x.Export(evs); failed != 0 || err != nil {
			t.Fatalf("round %d: %d failed, %v", round, failed, err)
		}
		got := s.wait(t, int(x.Stats().Messages))
		rd := newReader()
		var recs []record
		for _, d := range got {
			m, err := rd.parse(d)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			recs = append(recs, m.records...)
		}
		if len(recs) != len(evs) {
			t.Fatalf("round %d: %d records, want %d", round, len(recs), len(evs))
		}
		for i := range recs {
			check(t, recs[i], evs[i])
		}
	}
}
