package metrics

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/pipeline"
	"github.com/fastnat/fastnat/portmap"
)

// Snapshot is everything a scrape or `fastnat show stats` reports, read at
// one moment. Counter maps are keyed by stable snake_case names and hold
// every name, zero or not, so that a series never appears out of nowhere.
type Snapshot struct {
	Build         Build             `json:"build"`
	StartTime     int64             `json:"start_time_seconds"` // Unix time
	UptimeSeconds int64             `json:"uptime_seconds"`
	ConfigFile    string            `json:"config_file,omitempty"`
	LastReload    LastReload        `json:"last_reload"`
	Workers       []Worker          `json:"workers"`
	Table         Table             `json:"flow_table"`
	Sessions      []SessionCount    `json:"sessions"` // live sessions by protocol and application
	Pools         []Pool            `json:"pools"`
	Blocks        []Blocks          `json:"port_blocks,omitempty"` // port-block rules
	Bindings      int               `json:"bindings"`              // endpoint-independent mappings
	FTP           map[string]uint64 `json:"ftp_alg,omitempty"`     // nil: ALG off; keys as FTPSnapshot
	FTPMappings   []FTPMapping      `json:"ftp_alg_by_mapping,omitempty"`
	Capture       *Capture          `json:"drop_capture,omitempty"`
	Events        *Events           `json:"event_log,omitempty"`
	Reloads       Reloads           `json:"reloads"`
}

// Build says which fastnat runs (internal/version).
type Build struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
	Go       string `json:"go"`
}

// LastReload is the outcome of the last configuration load: the start, or
// the last reload attempted since.
type LastReload struct {
	Time  int64  `json:"time_seconds"` // Unix time
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Worker is one pipeline worker's totals.
type Worker struct {
	ID          int    `json:"worker"`
	Queue       int    `json:"queue"`
	RxPackets   uint64 `json:"rx_packets"`
	RxBytes     uint64 `json:"rx_bytes"`
	TxPackets   uint64 `json:"tx_packets"`
	TxBytes     uint64 `json:"tx_bytes"`
	Translated  uint64 `json:"translated"` // frames the NAT forwarded
	ALGDiverted uint64 `json:"alg_diverted"`
	ALGReturned uint64 `json:"alg_returned"`
	Held        uint64 `json:"held_fragments"`
	// BusySeconds is the time spent on polls that received frames; its
	// rate is the worker's busy ratio (empty polls and sleeps are idle).
	BusySeconds float64 `json:"busy_seconds"`
	// Drops counts every drop by pipeline.DropName: "parse_*", "nat_*" and
	// the pipeline's own reasons.
	Drops map[string]uint64 `json:"drops"`
	// Events counts what the worker did besides forwarding and dropping,
	// by pipeline.Event name: ICMP errors sent or not, fragmentation,
	// MSS clamping, fragment tracking.
	Events map[string]uint64 `json:"events"`
	Ports  []Port            `json:"ports"`
}

// Port is one AF_XDP socket of a worker: one queue of one interface.
type Port struct {
	Interface string `json:"interface"`
	Rx        uint64 `json:"rx"`
	Tx        uint64 `json:"tx"`
	// Drops are the kernel's drops for the socket (XDP_STATISTICS):
	// rx_dropped, rx_invalid_descs, rx_ring_full, tx_invalid_descs.
	Drops map[string]uint64 `json:"drops"`
	// FillRingEmpty and TxRingEmpty count the kernel finding the fill ring
	// empty (no frame to receive into) and the tx ring empty.
	FillRingEmpty uint64 `json:"fill_ring_empty"`
	TxRingEmpty   uint64 `json:"tx_ring_empty"`
}

// Table is the flow table's occupancy and counters.
type Table struct {
	Sessions       int    `json:"sessions"`
	Capacity       int    `json:"capacity"`
	Expectations   int    `json:"expectations"`
	ExpectCapacity int    `json:"expectation_capacity"`
	Inserts        uint64 `json:"inserts"`
	Deletes        uint64 `json:"deletes"`
	Expired        uint64 `json:"expired"`
	// Refused counts refused inserts by flowtable.InsertResult name:
	// full, exists, same_key.
	Refused       map[string]uint64 `json:"insert_refused"`
	ExpectInserts uint64            `json:"expectations_inserted"`
	ExpectRefused uint64            `json:"expectations_refused"`
	ExpectMatched uint64            `json:"expectations_matched"`
	ExpectExpired uint64            `json:"expectations_expired"`
}

// SessionCount is the number of live sessions of one protocol and
// application.
type SessionCount struct {
	Protocol string `json:"protocol"`
	App      string `json:"app"`
	Count    int    `json:"count"`
}

// Pool is the number of ports in use on one public address, and how many
// the outbound rules may allocate there.
type Pool struct {
	Address string `json:"address"`
	TCP     int64  `json:"tcp"`
	UDP     int64  `json:"udp"`
	ICMP    int64  `json:"icmp"` // query identifiers
	// Capacity is the size of the port range of the rule whose pool holds
	// the address, the same for each protocol; 0 for a public address
	// that is not in a pool (nat server only). A server's public port
	// inside the range, once the allocator has skipped it, counts as in
	// use.
	Capacity int64 `json:"capacity"`
}

// Blocks are the port blocks of one port-block rule (nat.outbound with
// block_size).
type Blocks struct {
	Rule          int    `json:"rule"`       // index of the nat.outbound rule
	BlockSize     int    `json:"block_size"` // ports per block
	Held          int64  `json:"held"`       // blocks inside hosts hold now
	Capacity      int    `json:"capacity"`   // blocks the rule's pool has
	QuotaExceeded uint64 `json:"quota_exceeded"`
	Exhausted     uint64 `json:"exhausted"` // allocations refused for want of a free block
}

// BlocksSnapshot converts the NAT's port block counts.
func BlocksSnapshot(use []nat.BlockUse) []Blocks {
	out := make([]Blocks, 0, len(use))
	for _, u := range use {
		out = append(out, Blocks{Rule: u.Rule, BlockSize: u.Size, Held: u.Held, Capacity: u.Capacity,
			QuotaExceeded: u.QuotaExceeded, Exhausted: u.Exhausted})
	}
	return out
}

// Capture is the drop capture's state (`fastnat run --pcap-drops`).
type Capture struct {
	File        string `json:"file"`
	Written     uint64 `json:"written"`      // frames in the file
	RateLimited uint64 `json:"rate_limited"` // over the rate limit, skipped
	QueueFull   uint64 `json:"queue_full"`   // writer behind, skipped
	Errors      uint64 `json:"write_errors"` // frames lost to write errors
}

// Events counts the NAT event log: what the workers made and where any
// was lost. For an exporter whose events filter passes every type, the
// events made are Made; of those RingDropped never reached any exporter,
// its own QueueDropped never reached it, its Failed its transport refused,
// and the rest, once idle, are Exported.
type Events struct {
	Made        uint64          `json:"made"`         // pushed into a worker's ring, or dropped there
	RingDropped uint64          `json:"ring_dropped"` // a worker's ring was full
	Exporters   []EventExporter `json:"exporters"`    // sinks and live `fastnat events` streams
}

// EventExporter is one consumer of the event log.
type EventExporter struct {
	Name         string `json:"name"`
	Queued       uint64 `json:"queued"`
	QueueDropped uint64 `json:"queue_dropped"`
	Exported     uint64 `json:"exported"`
	Failed       uint64 `json:"failed"`
}

// EventsSnapshot converts the event log's counters.
func EventsSnapshot(st natlog.Stats) *Events {
	e := &Events{Exporters: []EventExporter{}}
	for _, p := range st.Producers {
		e.Made += p.Queued + p.Dropped
		e.RingDropped += p.Dropped
	}
	for _, o := range st.Outlets {
		e.Exporters = append(e.Exporters, EventExporter{Name: o.Name, Queued: o.Queued, QueueDropped: o.Dropped, Exported: o.Exported, Failed: o.Failed})
	}
	return e
}

// Reloads counts configuration reloads (SIGHUP or `fastnat reload`).
type Reloads struct {
	OK      uint64 `json:"ok"`
	Refused uint64 `json:"refused"` // the file has errors or cannot apply
	Failed  uint64 `json:"failed"`  // applying failed and was rolled back
}

// WorkerSnapshot reads a worker's published counters.
func WorkerSnapshot(id, queue int, c *pipeline.Counters) Worker {
	w := Worker{
		ID: id, Queue: queue,
		RxPackets: c.RxPackets.Load(), RxBytes: c.RxBytes.Load(),
		TxPackets: c.TxPackets.Load(), TxBytes: c.TxBytes.Load(),
		Translated:  c.Verdict[nat.Forward].Load(),
		ALGDiverted: c.ALGDiverted.Load(), ALGReturned: c.ALGReturned.Load(),
		Held:   c.Held.Load(),
		Drops:  make(map[string]uint64, len(c.Parse)+len(c.Verdict)+len(c.Drop)),
		Events: make(map[string]uint64, len(c.Event)),
	}
	for i := range c.Parse {
		if packet.Result(i) != packet.OK {
			w.Drops[pipeline.DropName(pipeline.StageParse, uint8(i))] = c.Parse[i].Load()
		}
	}
	for i := range c.Verdict {
		if v := nat.Verdict(i); v != nat.Forward && v != nat.Hold {
			w.Drops[pipeline.DropName(pipeline.StageNAT, uint8(i))] = c.Verdict[i].Load()
		}
	}
	for i := range c.Drop {
		w.Drops[pipeline.DropName(pipeline.StagePipeline, uint8(i))] = c.Drop[i].Load()
	}
	for i := range c.Event {
		w.Events[pipeline.Event(i).String()] = c.Event[i].Load()
	}
	return w
}

// TotalDrops is the sum of a worker's drops.
func (w *Worker) TotalDrops() uint64 {
	var n uint64
	for _, v := range w.Drops {
		n += v
	}
	return n
}

// TableSnapshot converts the flow table's statistics.
func TableSnapshot(st flowtable.Stats) Table {
	return Table{
		Sessions: st.Sessions, Capacity: st.Capacity,
		Expectations: st.Expectations, ExpectCapacity: st.ExpectCapacity,
		Inserts: st.Inserts, Deletes: st.Deletes, Expired: st.Expired,
		Refused: map[string]uint64{
			flowtable.ErrFull.String():    st.InsertFull,
			flowtable.ErrExists.String():  st.InsertExists,
			flowtable.ErrSameKey.String(): st.InsertSameKey,
		},
		ExpectInserts: st.ExpectInserts, ExpectRefused: st.ExpectFull,
		ExpectMatched: st.ExpectMatched, ExpectExpired: st.ExpectExpired,
	}
}

// PoolSnapshot converts the NAT's port use, ordered by address, with the
// capacity of every pool address (those not used yet included, so that
// their series exist from the start).
func PoolSnapshot(use []nat.PoolUse, capacity map[netip.Addr]int64) []Pool {
	byAddr := map[netip.Addr]*Pool{}
	for _, u := range use {
		a := nat.Addr(u.Addr)
		byAddr[a] = &Pool{Address: a.String(), TCP: u.TCP, UDP: u.UDP, ICMP: u.ICMP}
	}
	for a, n := range capacity {
		p, ok := byAddr[a]
		if !ok {
			p = &Pool{Address: a.String()}
			byAddr[a] = p
		}
		p.Capacity = n
	}
	addrs := slices.SortedFunc(maps.Keys(byAddr), func(a, b netip.Addr) int { return a.Compare(b) })
	out := make([]Pool, len(addrs))
	for i, a := range addrs {
		out[i] = *byAddr[a]
	}
	return out
}

// FTPCounters names the FTP ALG's counters as FTPSnapshot keys them, with
// what each means; the metric of key k is fastnat_ftp_alg_<k>_total, with
// the port-mapping entry that classified the control sessions as its
// "mapping" label.
var FTPCounters = []struct{ Name, Help string }{
	{"sessions", "FTP control sessions the ALG has seen carry data."},
	{"commands", "PORT, EPRT, 227 and 229 lines the ALG inspected."},
	{"rewritten", "Inspected lines the ALG rewrote."},
	{"refused", "Lines refused (third-party address, RFC 2577, or privileged port) and answered with an error reply."},
	{"expectations_replaced", "Expectations replaced, the session's oldest, at the per-session limit."},
	{"parse_failures", "Malformed PORT/EPRT/227/229 lines passed through untouched."},
	{"long_lines", "Lines longer than 512 bytes."},
	{"out_of_order", "Data segments beyond a gap, dropped for retransmission."},
	{"backlog", "Segments dropped: too many unacknowledged rewrites."},
	{"held_acked", "Held partial lines the ALG acknowledged itself to a sender that stalled on them."},
	{"discarded", "Held partial lines discarded at the sender's FIN, never completed."},
	{"resets", "Control connections reset both ways: a PORT/EPRT/227/229 line longer than 512 bytes."},
	{"replayed", "Rewrites repeated in retransmitted segments."},
	{"expectations_created", "Data-connection expectations installed."},
	{"expectations_failed", "Expectations the NAT could not install (answered with an error reply)."},
	{"expectations_used", "Expectations matched by a data connection."},
	{"delta_bytes", "Total length change of the rewrites, in bytes."},
	{"tls", "Control sessions that turned to TLS (AUTH accepted with 234), passed on uninspected from then on."},
	{"ack_unsent", "Segments dropped: they acknowledge control-stream data the receiver has not sent, after the ALG's corrections."},
	{"reassembled", "Control segments that came in IPv4 fragments, reassembled to be inspected."},
	{"frag_dropped", "Fragmented control segments dropped unreassembled: too big for a frame, overlapping fragments, incomplete at the timeout, or evicted."},
	{"bad_checksum", "Control segments dropped unread: their TCP checksum is wrong."},
}

// FTPSnapshot converts the FTP ALG's counters, keyed as FTPCounters.
func FTPSnapshot(c alg.Counters) map[string]uint64 {
	v := []uint64{c.Sessions, c.Commands, c.Rewritten, c.Refused, c.Replaced, c.ParseFailures,
		c.LongLines, c.OutOfOrder, c.Backlog, c.HeldAcked, c.Discarded, c.Resets, c.Replayed,
		c.ExpectCreated, c.ExpectFailed, c.ExpectUsed, c.DeltaBytes, c.TLS, c.AckUnsent,
		c.Reassembled, c.FragDropped, c.BadChecksum}
	m := make(map[string]uint64, len(v))
	for i, fc := range FTPCounters {
		m[fc.Name] = v[i]
	}
	return m
}

// FTPMapping is the FTP ALG's counters for the control sessions one
// port-mapping entry classified.
type FTPMapping struct {
	// Mapping names the entry: "port_mapping[i]" for the i-th
	// [[port_mapping]] of the file, "default" for the built-in ftp port.
	Mapping  string            `json:"mapping"`
	Counters map[string]uint64 `json:"counters"` // keyed as FTPSnapshot
}

// MappingName is the "mapping" label of port-mapping entry i (-1: the
// built-in default).
func MappingName(i int) string {
	if i < 0 {
		return "default"
	}
	return "port_mapping[" + strconv.Itoa(i) + "]"
}

// FTPByMapping converts the ALG's per-entry counters, with a zero series
// for every entry in ftpEntries that has counted nothing yet (the ftp
// entries of the running configuration, so that their series exist from
// the start), ordered by entry.
func FTPByMapping(st alg.Stats, ftpEntries []int) []FTPMapping {
	by := map[int]alg.Counters{}
	for _, e := range ftpEntries {
		by[e] = alg.Counters{}
	}
	for _, ec := range st.Entries {
		by[int(ec.Entry)] = ec.Counters
	}
	keys := make([]int, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]FTPMapping, 0, len(keys))
	for _, k := range keys {
		out = append(out, FTPMapping{Mapping: MappingName(k), Counters: FTPSnapshot(by[k])})
	}
	return out
}

// CountSessions counts the table's live sessions by protocol and
// application, sorted by protocol and then application. It walks the
// whole session array (slow path; see the package documentation) through
// Table.Range, which copies each session and validates the copy; a
// session that ends during the walk may or may not be counted.
func CountSessions(t *flowtable.Table) []SessionCount {
	type key struct {
		proto uint8
		app   uint8
	}
	counts := map[key]int{}
	t.Range(func(_, _ uint32, s flowtable.Session) bool {
		counts[key{s.Key[flowtable.Orig].Proto, s.App}]++
		return true
	})
	out := make([]SessionCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, SessionCount{Protocol: packet.ProtoName(k.proto), App: portmap.App(k.app).String(), Count: n})
	}
	slices.SortFunc(out, func(a, b SessionCount) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.App, b.App))
	})
	return out
}
