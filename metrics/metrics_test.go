package metrics

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/pipeline"
	"github.com/fastnat/fastnat/portmap"
)

// fakeSnapshot is a daemon with one worker on two interfaces.
func fakeSnapshot() Snapshot {
	var c pipeline.Counters
	c.RxPackets.Store(10)
	c.RxBytes.Store(1000)
	c.TxPackets.Store(7)
	c.TxBytes.Store(700)
	c.Verdict[nat.Forward].Store(7)
	c.Verdict[nat.DropUnsolicited].Store(2)
	c.Parse[packet.ErrBadIPChecksum].Store(1)
	c.Drop[pipeline.DropTxFull].Store(3)
	w := WorkerSnapshot(0, 0, &c)
	w.Ports = []Port{
		{Interface: "outside", Rx: 6, Tx: 4, Drops: map[string]uint64{"rx_ring_full": 5}, FillRingEmpty: 1},
		{Interface: "inside", Rx: 4, Tx: 3, Drops: map[string]uint64{"rx_ring_full": 0}},
	}
	st := alg.Stats{Total: alg.Counters{Sessions: 3, Rewritten: 4}, Entries: []alg.EntryCounters{
		{Entry: -1, Counters: alg.Counters{Sessions: 1, Rewritten: 1}},
		{Entry: 2, Counters: alg.Counters{Sessions: 2, Rewritten: 3}},
	}}
	w.BusySeconds = 1.5
	return Snapshot{
		Build:         Build{Version: "v1.2.3", Revision: "abcdef", Go: "go1.26.8"},
		StartTime:     1700000000,
		LastReload:    LastReload{Time: 1700000100, OK: false, Error: "bad file"},
		UptimeSeconds: 42,
		Workers:       []Worker{w},
		Table:         TableSnapshot(flowtable.Stats{Sessions: 3, Capacity: 1024, Inserts: 5, Expired: 2, InsertFull: 1}),
		Sessions: []SessionCount{
			{Protocol: "tcp", App: "ftp", Count: 1},
			{Protocol: "tcp", App: "ftp-data", Count: 1},
			{Protocol: "udp", App: "other", Count: 1},
		},
		Pools: PoolSnapshot([]nat.PoolUse{{Addr: 0xc61200cc, TCP: 2, UDP: 1}},
			map[netip.Addr]int64{netip.MustParseAddr("198.18.0.204"): 64512, netip.MustParseAddr("198.18.0.205"): 1000}),
		Blocks:      BlocksSnapshot([]nat.BlockUse{{Rule: 1, Size: 512, Held: 3, Capacity: 126, QuotaExceeded: 2}}),
		Bindings:    1,
		FTP:         FTPSnapshot(st.Total),
		FTPMappings: FTPByMapping(st, []int{-1, 0, 2}),
		Capture:     &Capture{File: "/tmp/x.pcap", Written: 4, RateLimited: 1},
		Events: EventsSnapshot(natlog.Stats{
			Producers: []natlog.RingStats{{Queued: 90, Dropped: 3}, {Queued: 10}},
			Outlets:   []natlog.OutletStats{{Name: "ipfix 192.0.2.10:4739", Queued: 95, Dropped: 5, Exported: 93, Failed: 2}},
		}),
		Reloads: Reloads{OK: 1, Refused: 2},
	}
}

func TestCollectorOutput(t *testing.T) {
	c := NewCollector(fakeSnapshot)
	want := `
# HELP fastnat_worker_rx_packets_total Frames a worker received, on all its interfaces.
# TYPE fastnat_worker_rx_packets_total counter
fastnat_worker_rx_packets_total{queue="0",worker="0"} 10
# HELP fastnat_worker_translated_packets_total Frames the NAT translated and forwarded.
# TYPE fastnat_worker_translated_packets_total counter
fastnat_worker_translated_packets_total{queue="0",worker="0"} 7
# HELP fastnat_interface_rx_packets_total Frames received on one queue of an interface.
# TYPE fastnat_interface_rx_packets_total counter
fastnat_interface_rx_packets_total{interface="inside",queue="0",worker="0"} 4
fastnat_interface_rx_packets_total{interface="outside",queue="0",worker="0"} 6
# HELP fastnat_interface_drops_total Frames the kernel dropped for fastnat's AF_XDP socket (XDP_STATISTICS), by reason.
# TYPE fastnat_interface_drops_total counter
fastnat_interface_drops_total{interface="inside",queue="0",reason="rx_ring_full",worker="0"} 0
fastnat_interface_drops_total{interface="outside",queue="0",reason="rx_ring_full",worker="0"} 5
# HELP fastnat_sessions Live sessions by protocol and application.
# TYPE fastnat_sessions gauge
fastnat_sessions{app="ftp",protocol="tcp"} 1
fastnat_sessions{app="ftp-data",protocol="tcp"} 1
fastnat_sessions{app="other",protocol="udp"} 1
# HELP fastnat_flow_table_sessions Live sessions in the flow table.
# TYPE fastnat_flow_table_sessions gauge
fastnat_flow_table_sessions 3
# HELP fastnat_flow_table_insert_refused_total Session creations refused, by reason.
# TYPE fastnat_flow_table_insert_refused_total counter
fastnat_flow_table_insert_refused_total{reason="exists"} 0
fastnat_flow_table_insert_refused_total{reason="full"} 1
fastnat_flow_table_insert_refused_total{reason="same_key"} 0
# HELP fastnat_pool_ports_in_use Public ports (ICMP: query identifiers) in use, per public address.
# TYPE fastnat_pool_ports_in_use gauge
fastnat_pool_ports_in_use{address="198.18.0.204",protocol="icmp"} 0
fastnat_pool_ports_in_use{address="198.18.0.204",protocol="tcp"} 2
fastnat_pool_ports_in_use{address="198.18.0.204",protocol="udp"} 1
fastnat_pool_ports_in_use{address="198.18.0.205",protocol="icmp"} 0
fastnat_pool_ports_in_use{address="198.18.0.205",protocol="tcp"} 0
fastnat_pool_ports_in_use{address="198.18.0.205",protocol="udp"} 0
# HELP fastnat_pool_ports_capacity Public ports (ICMP: query identifiers) the outbound rules may allocate, per pool address.
# TYPE fastnat_pool_ports_capacity gauge
fastnat_pool_ports_capacity{address="198.18.0.204",protocol="icmp"} 64512
fastnat_pool_ports_capacity{address="198.18.0.204",protocol="tcp"} 64512
fastnat_pool_ports_capacity{address="198.18.0.204",protocol="udp"} 64512
fastnat_pool_ports_capacity{address="198.18.0.205",protocol="icmp"} 1000
fastnat_pool_ports_capacity{address="198.18.0.205",protocol="tcp"} 1000
fastnat_pool_ports_capacity{address="198.18.0.205",protocol="udp"} 1000
# HELP fastnat_port_blocks_held Port blocks inside hosts hold now, per port-block rule (nat.outbound index).
# TYPE fastnat_port_blocks_held gauge
fastnat_port_blocks_held{block_size="512",rule="1"} 3
# HELP fastnat_port_blocks_capacity Port blocks a port-block rule's pool has.
# TYPE fastnat_port_blocks_capacity gauge
fastnat_port_blocks_capacity{block_size="512",rule="1"} 126
# HELP fastnat_port_block_refusals_total New sessions a port-block rule refused, by reason: quota_exceeded (the host holds its blocks per host, all full), exhausted (no free block).
# TYPE fastnat_port_block_refusals_total counter
fastnat_port_block_refusals_total{reason="exhausted",rule="1"} 0
fastnat_port_block_refusals_total{reason="quota_exceeded",rule="1"} 2
# HELP fastnat_build_info Always 1; the labels say which fastnat runs.
# TYPE fastnat_build_info gauge
fastnat_build_info{goversion="go1.26.8",revision="abcdef",version="v1.2.3"} 1
# HELP fastnat_start_time_seconds When the daemon started, in seconds since the Unix epoch.
# TYPE fastnat_start_time_seconds gauge
fastnat_start_time_seconds 1.7e+09
# HELP fastnat_config_last_reload_timestamp_seconds When the configuration was last loaded or a reload attempted, in seconds since the Unix epoch.
# TYPE fastnat_config_last_reload_timestamp_seconds gauge
fastnat_config_last_reload_timestamp_seconds 1.7000001e+09
# HELP fastnat_config_last_reload_successful 1 if the last reload (or the start) applied the configuration, 0 if it was refused or failed.
# TYPE fastnat_config_last_reload_successful gauge
fastnat_config_last_reload_successful 0
# HELP fastnat_worker_busy_seconds_total Time a worker spent on polls that received frames (its rate is the busy ratio; empty polls and sleeps do not count).
# TYPE fastnat_worker_busy_seconds_total counter
fastnat_worker_busy_seconds_total{queue="0",worker="0"} 1.5
# HELP fastnat_ftp_alg_rewritten_total FTP ALG, per port-mapping entry ("port_mapping[i]" or "default"): Inspected lines the ALG rewrote.
# TYPE fastnat_ftp_alg_rewritten_total counter
fastnat_ftp_alg_rewritten_total{mapping="default"} 1
fastnat_ftp_alg_rewritten_total{mapping="port_mapping[0]"} 0
fastnat_ftp_alg_rewritten_total{mapping="port_mapping[2]"} 3
# HELP fastnat_drop_capture_frames_total Dropped frames offered to the pcap capture, by result.
# TYPE fastnat_drop_capture_frames_total counter
fastnat_drop_capture_frames_total{result="queue_full"} 0
fastnat_drop_capture_frames_total{result="rate_limited"} 1
fastnat_drop_capture_frames_total{result="write_error"} 0
fastnat_drop_capture_frames_total{result="written"} 4
# HELP fastnat_events_total NAT events the workers made (queued or dropped).
# TYPE fastnat_events_total counter
fastnat_events_total 103
# HELP fastnat_events_ring_dropped_total NAT events dropped because a worker's event ring was full.
# TYPE fastnat_events_ring_dropped_total counter
fastnat_events_ring_dropped_total 3
# HELP fastnat_event_exporter_events_total NAT events per exporter or live stream, by result: queued, queue_dropped, exported, failed.
# TYPE fastnat_event_exporter_events_total counter
fastnat_event_exporter_events_total{exporter="ipfix 192.0.2.10:4739",result="exported"} 93
fastnat_event_exporter_events_total{exporter="ipfix 192.0.2.10:4739",result="failed"} 2
fastnat_event_exporter_events_total{exporter="ipfix 192.0.2.10:4739",result="queue_dropped"} 5
fastnat_event_exporter_events_total{exporter="ipfix 192.0.2.10:4739",result="queued"} 95
# HELP fastnat_config_reloads_total Configuration reloads, by result.
# TYPE fastnat_config_reloads_total counter
fastnat_config_reloads_total{result="failed"} 0
fastnat_config_reloads_total{result="ok"} 1
fastnat_config_reloads_total{result="refused"} 2
`
	names := []string{
		"fastnat_worker_rx_packets_total", "fastnat_worker_translated_packets_total",
		"fastnat_interface_rx_packets_total", "fastnat_interface_drops_total", "fastnat_sessions",
		"fastnat_flow_table_sessions", "fastnat_flow_table_insert_refused_total", "fastnat_pool_ports_in_use",
		"fastnat_pool_ports_capacity", "fastnat_port_blocks_held", "fastnat_port_blocks_capacity", "fastnat_port_block_refusals_total",
		"fastnat_build_info", "fastnat_start_time_seconds",
		"fastnat_config_last_reload_timestamp_seconds", "fastnat_config_last_reload_successful", "fastnat_worker_busy_seconds_total",
		"fastnat_ftp_alg_rewritten_total", "fastnat_drop_capture_frames_total", "fastnat_config_reloads_total",
		"fastnat_events_total", "fastnat_events_ring_dropped_total", "fastnat_event_exporter_events_total",
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestCollectorDrops(t *testing.T) {
	got := series(t, NewCollector(fakeSnapshot), "fastnat_worker_drops_total")
	if len(got) != pipelineDropNames() {
		t.Fatalf("%d drop series, want one per reason: %d", len(got), pipelineDropNames())
	}
	for reason, n := range map[string]float64{
		"parse_bad_ip_checksum": 1, "nat_unsolicited": 2, "tx_full": 3, "nat_no_rule": 0,
	} {
		if v, ok := got["queue=0,reason="+reason+",worker=0"]; !ok || v != n {
			t.Errorf("drops{reason=%q} = %v (present %v), want %v", reason, v, ok, n)
		}
	}
}

// series gathers c through a pedantic registry and returns the values of
// metric name by their labels, written "k=v,k=v" in label order.
func series(t *testing.T, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue()
			out[strings.Join(ls, ",")] = v
		}
	}
	return out
}

// pipelineDropNames is how many drop reasons a worker reports: every parse
// failure, every NAT verdict but forward and hold, every pipeline reason.
func pipelineDropNames() int {
	return int(packet.NumResults) - 1 + int(nat.NumVerdicts) - 2 + int(pipeline.NumDropReasons)
}

func TestCollectorLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(NewCollector(fakeSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCollectorWithoutOptionalParts: no FTP ALG, no capture, no workers.
func TestCollectorWithoutOptionalParts(t *testing.T) {
	c := NewCollector(func() Snapshot { return Snapshot{} })
	for _, name := range []string{"fastnat_ftp_alg_sessions_total", "fastnat_drop_capture_frames_total", "fastnat_worker_rx_packets_total"} {
		if n := len(series(t, c, name)); n != 0 {
			t.Errorf("%s: %d series, want none", name, n)
		}
	}
	if n := testutil.CollectAndCount(c, "fastnat_flow_table_sessions"); n != 1 {
		t.Errorf("flow table sessions: %d series, want 1", n)
	}
}

func TestWorkerSnapshot(t *testing.T) {
	var c pipeline.Counters
	for i := range c.Parse {
		c.Parse[i].Store(uint64(100 + i))
	}
	for i := range c.Verdict {
		c.Verdict[i].Store(uint64(200 + i))
	}
	for i := range c.Drop {
		c.Drop[i].Store(uint64(300 + i))
	}
	for i := range c.Event {
		c.Event[i].Store(uint64(400 + i))
	}
	w := WorkerSnapshot(3, 5, &c)
	if len(w.Events) != int(pipeline.NumEvents) || w.Events[pipeline.EventICMPFragNeeded.String()] != 400+uint64(pipeline.EventICMPFragNeeded) {
		t.Errorf("events %v", w.Events)
	}
	if len(w.Drops) != pipelineDropNames() {
		t.Fatalf("%d drop reasons, want %d: %v", len(w.Drops), pipelineDropNames(), w.Drops)
	}
	// Every counter the pipeline calls a drop is in the map, under the
	// name the drop tap uses, and nothing else is.
	var sum uint64
	for _, n := range w.Drops {
		sum += n
	}
	if sum != c.Drops() || w.TotalDrops() != sum {
		t.Errorf("drops sum to %d (TotalDrops %d), pipeline counts %d", sum, w.TotalDrops(), c.Drops())
	}
	for _, tc := range []struct {
		name string
		want uint64
	}{
		{"parse_" + packet.ErrBadIPChecksum.String(), 100 + uint64(packet.ErrBadIPChecksum)},
		{"nat_" + nat.DropUnsolicited.String(), 200 + uint64(nat.DropUnsolicited)},
		{pipeline.DropHostUnreachable.String(), 300 + uint64(pipeline.DropHostUnreachable)},
	} {
		if got := w.Drops[tc.name]; got != tc.want {
			t.Errorf("Drops[%q] = %d, want %d", tc.name, got, tc.want)
		}
	}
	if w.ID != 3 || w.Queue != 5 || w.Translated != 200+uint64(nat.Forward) {
		t.Errorf("worker %d queue %d translated %d", w.ID, w.Queue, w.Translated)
	}
}

func TestFTPSnapshot(t *testing.T) {
	c := alg.Counters{Sessions: 1, Commands: 2, Rewritten: 3, Refused: 4, Replaced: 5, ParseFailures: 6,
		LongLines: 7, OutOfOrder: 8, Backlog: 9, HeldAcked: 10, Discarded: 11, Resets: 12, Replayed: 13,
		ExpectCreated: 14, ExpectFailed: 15, ExpectUsed: 16, DeltaBytes: 17, TLS: 18, AckUnsent: 19,
		Reassembled: 20, FragDropped: 21, BadChecksum: 22}
	m := FTPSnapshot(c)
	want := map[string]uint64{"sessions": 1, "commands": 2, "rewritten": 3, "refused": 4, "expectations_replaced": 5,
		"parse_failures": 6, "long_lines": 7, "out_of_order": 8, "backlog": 9, "held_acked": 10, "discarded": 11,
		"resets": 12, "replayed": 13, "expectations_created": 14, "expectations_failed": 15, "expectations_used": 16,
		"delta_bytes": 17, "tls": 18, "ack_unsent": 19,
		"reassembled": 20, "frag_dropped": 21, "bad_checksum": 22}
	if len(m) != len(want) {
		t.Fatalf("%d counters, want %d", len(m), len(want))
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %d, want %d", k, m[k], v)
		}
	}
}

// TestCountSessions inserts and deletes random sessions and compares the
// census with a count kept on the side.
func TestCountSessions(t *testing.T) {
	table, err := flowtable.New(flowtable.Config{MaxSessions: 4096})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	protos := []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoICMP, packet.ProtoSCTP}
	apps := []portmap.App{portmap.AppOther, portmap.AppFTP, portmap.AppFTPData, portmap.AppDNS}
	type key struct{ proto, app string }
	oracle := map[key]int{}
	live := map[uint32]key{}
	for i := range 3000 {
		p, a := protos[rng.IntN(len(protos))], apps[rng.IntN(len(apps))]
		s := flowtable.Session{App: uint8(a), MapEntry: -1}
		s.Key[flowtable.Orig] = packet.Tuple{SrcAddr: 0x0a000000 + uint32(i), DstAddr: 0xc6120001, SrcPort: uint16(i), DstPort: 80, Proto: p}
		s.Key[flowtable.Reply] = packet.Tuple{SrcAddr: 0xc6120001, DstAddr: 0xc61200cc, SrcPort: 80, DstPort: uint16(i), Proto: p}
		id, _, r := table.Insert(&s, 0, 60, 1)
		if r != flowtable.Inserted {
			t.Fatalf("insert %d: %v", i, r)
		}
		k := key{packet.ProtoName(p), a.String()}
		oracle[k]++
		live[id] = k
		if rng.IntN(3) == 0 { // delete a third again
			table.Delete(id)
			oracle[k]--
			delete(live, id)
		}
	}
	got := CountSessions(table)
	total := 0
	for _, sc := range got {
		if n := oracle[key{sc.Protocol, sc.App}]; n != sc.Count {
			t.Errorf("%s/%s: %d, oracle %d", sc.Protocol, sc.App, sc.Count, n)
		}
		total += sc.Count
	}
	if total != len(live) || total != table.Stats().Sessions {
		t.Errorf("census total %d, live %d, table %d", total, len(live), table.Stats().Sessions)
	}
	for i := 1; i < len(got); i++ {
		if a, b := got[i-1], got[i]; a.Protocol > b.Protocol || a.Protocol == b.Protocol && a.App >= b.App {
			t.Errorf("not sorted: %v before %v", a, b)
		}
	}
}

func TestServe(t *testing.T) {
	s, err := Serve("127.0.0.1:0", NewCollector(fakeSnapshot))
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + s.Addr().String() + "/metrics"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`fastnat_worker_rx_packets_total{queue="0",worker="0"} 10`,
		`fastnat_uptime_seconds 42`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url); err == nil {
		t.Error("server still answers after Close")
	}
}

// BenchmarkCountSessions is the census a scrape does: a table of 1M slots
// with 100k live sessions.
func BenchmarkCountSessions(b *testing.B) {
	table, err := flowtable.New(flowtable.Config{MaxSessions: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100_000 {
		s := flowtable.Session{App: uint8(i % 3), MapEntry: -1}
		s.Key[0] = packet.Tuple{SrcAddr: 0x0a000000 + uint32(i), DstAddr: 1, SrcPort: 1, DstPort: 80, Proto: packet.ProtoTCP}
		s.Key[1] = packet.Tuple{SrcAddr: 1, DstAddr: 0x0b000000 + uint32(i), SrcPort: 80, DstPort: 1, Proto: packet.ProtoTCP}
		if _, _, r := table.Insert(&s, 0, 60, 1); r != flowtable.Inserted {
			b.Fatal(r)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		CountSessions(table)
	}
}
