package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector is a prometheus.Collector over a snapshot function: each
// scrape calls it once and turns the Snapshot into constant metrics, so no
// metric state lives between scrapes and nothing is done per packet.
type Collector struct {
	snapshot func() Snapshot

	uptime                                                 *prometheus.Desc
	rxPackets, rxBytes, txPackets, txBytes, translated     *prometheus.Desc
	algDiverted, algReturned, held, drops, events          *prometheus.Desc
	ifRx, ifTx, ifDrops, ifFillEmpty, ifTxEmpty            *prometheus.Desc
	sessions                                               *prometheus.Desc
	tableSessions, tableCapacity, tableExp, tableExpCap    *prometheus.Desc
	tableInserts, tableDeletes, tableExpired, tableRefused *prometheus.Desc
	expInserted, expRefused, expMatched, expExpired        *prometheus.Desc
	poolPorts, bindings                                    *prometheus.Desc
	ftp                                                    []*prometheus.Desc // in FTPCounters order
	capture, reloads                                       *prometheus.Desc
	buildInfo, startTime, lastReload, lastReloadOK         *prometheus.Desc
	poolCapacity, busy                                     *prometheus.Desc
	blocksHeld, blocksCapacity, blocksRefused              *prometheus.Desc
	eventsMade, eventsRingDropped, eventsExporter          *prometheus.Desc
}

// NewCollector returns a collector that calls snapshot once per scrape.
// snapshot must be safe to call from any goroutine.
func NewCollector(snapshot func() Snapshot) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("fastnat_"+name, help, labels, nil)
	}
	c := &Collector{
		snapshot: snapshot,
		uptime:   d("uptime_seconds", "Seconds since the daemon started."),

		buildInfo:    d("build_info", "Always 1; the labels say which fastnat runs.", "version", "revision", "goversion"),
		startTime:    d("start_time_seconds", "When the daemon started, in seconds since the Unix epoch."),
		lastReload:   d("config_last_reload_timestamp_seconds", "When the configuration was last loaded or a reload attempted, in seconds since the Unix epoch."),
		lastReloadOK: d("config_last_reload_successful", "1 if the last reload (or the start) applied the configuration, 0 if it was refused or failed."),
		busy: d("worker_busy_seconds_total", "Time a worker spent on polls that received frames (its rate is the busy ratio; "+
			"empty polls and sleeps do not count).", "worker", "queue"),
		events: d("worker_events_total", "What a worker did besides forwarding and dropping, by event: icmp_* (ICMP errors sent, rate-limited, suppressed), frag_out_* (fragmentation to the MTU), mss_clamped, neigh_waited, frag_* (fragment tracking).", "worker", "queue", "event"),

		rxPackets:   d("worker_rx_packets_total", "Frames a worker received, on all its interfaces.", "worker", "queue"),
		rxBytes:     d("worker_rx_bytes_total", "Bytes a worker received, on all its interfaces.", "worker", "queue"),
		txPackets:   d("worker_tx_packets_total", "Frames a worker transmitted.", "worker", "queue"),
		txBytes:     d("worker_tx_bytes_total", "Bytes a worker transmitted.", "worker", "queue"),
		translated:  d("worker_translated_packets_total", "Frames the NAT translated and forwarded.", "worker", "queue"),
		algDiverted: d("worker_alg_diverted_packets_total", "Frames handed to the FTP ALG.", "worker", "queue"),
		algReturned: d("worker_alg_returned_packets_total", "Frames the FTP ALG handed back.", "worker", "queue"),
		held:        d("worker_held_fragments_total", "Early fragments held until their first fragment arrived.", "worker", "queue"),
		drops:       d("worker_drops_total", "Frames a worker dropped, by reason: parse_* (malformed), nat_* (NAT verdicts) or the pipeline's own.", "worker", "queue", "reason"),

		ifRx:        d("interface_rx_packets_total", "Frames received on one queue of an interface.", "worker", "queue", "interface"),
		ifTx:        d("interface_tx_packets_total", "Frames queued for transmission on one queue of an interface.", "worker", "queue", "interface"),
		ifDrops:     d("interface_drops_total", "Frames the kernel dropped for fastnat's AF_XDP socket (XDP_STATISTICS), by reason.", "worker", "queue", "interface", "reason"),
		ifFillEmpty: d("interface_fill_ring_empty_total", "Times the kernel found the socket's fill ring empty.", "worker", "queue", "interface"),
		ifTxEmpty:   d("interface_tx_ring_empty_total", "Times the kernel found the socket's tx ring empty.", "worker", "queue", "interface"),

		sessions:      d("sessions", "Live sessions by protocol and application.", "protocol", "app"),
		tableSessions: d("flow_table_sessions", "Live sessions in the flow table."),
		tableCapacity: d("flow_table_capacity", "Sessions the flow table holds at most ([flows] max)."),
		tableExp:      d("flow_table_expectations", "Live ALG expectations."),
		tableExpCap:   d("flow_table_expectation_capacity", "Expectations the table holds at most."),
		tableInserts:  d("flow_table_inserts_total", "Sessions created."),
		tableDeletes:  d("flow_table_deletes_total", "Sessions removed before their timeout."),
		tableExpired:  d("flow_table_expired_total", "Sessions reclaimed after their idle timeout."),
		tableRefused:  d("flow_table_insert_refused_total", "Session creations refused, by reason.", "reason"),
		expInserted:   d("flow_table_expectations_inserted_total", "Expectations stored."),
		expRefused:    d("flow_table_expectations_refused_total", "Expectations refused: the store was full."),
		expMatched:    d("flow_table_expectations_matched_total", "Expectations a new connection used."),
		expExpired:    d("flow_table_expectations_expired_total", "Expectations that expired unused."),

		poolPorts: d("pool_ports_in_use", "Public ports (ICMP: query identifiers) in use, per public address.", "address", "protocol"),
		poolCapacity: d("pool_ports_capacity", "Public ports (ICMP: query identifiers) the outbound rules may allocate, per pool address.",
			"address", "protocol"),
		bindings: d("nat_bindings", "Live endpoint-independent mappings."),
		blocksHeld: d("port_blocks_held", "Port blocks inside hosts hold now, per port-block rule (nat.outbound index).",
			"rule", "block_size"),
		blocksCapacity: d("port_blocks_capacity", "Port blocks a port-block rule's pool has.", "rule", "block_size"),
		blocksRefused: d("port_block_refusals_total", "New sessions a port-block rule refused, by reason: "+
			"quota_exceeded (the host holds its blocks per host, all full), exhausted (no free block).", "rule", "reason"),

		capture: d("drop_capture_frames_total", "Dropped frames offered to the pcap capture, by result.", "result"),
		reloads: d("config_reloads_total", "Configuration reloads, by result.", "result"),

		eventsMade:        d("events_total", "NAT events the workers made (queued or dropped)."),
		eventsRingDropped: d("events_ring_dropped_total", "NAT events dropped because a worker's event ring was full."),
		eventsExporter:    d("event_exporter_events_total", "NAT events per exporter or live stream, by result: queued, queue_dropped, exported, failed.", "exporter", "result"),
	}
	for _, fc := range FTPCounters {
		c.ftp = append(c.ftp, d("ftp_alg_"+fc.Name+"_total", "FTP ALG, per port-mapping entry (\"port_mapping[i]\" or \"default\"): "+fc.Help, "mapping"))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.uptime, c.rxPackets, c.rxBytes, c.txPackets, c.txBytes, c.translated,
		c.algDiverted, c.algReturned, c.held, c.drops, c.events,
		c.ifRx, c.ifTx, c.ifDrops, c.ifFillEmpty, c.ifTxEmpty,
		c.sessions, c.tableSessions, c.tableCapacity, c.tableExp, c.tableExpCap,
		c.tableInserts, c.tableDeletes, c.tableExpired, c.tableRefused,
		c.expInserted, c.expRefused, c.expMatched, c.expExpired,
		c.poolPorts, c.bindings, c.capture, c.reloads,
		c.blocksHeld, c.blocksCapacity, c.blocksRefused,
		c.buildInfo, c.startTime, c.lastReload, c.lastReloadOK, c.poolCapacity, c.busy,
		c.eventsMade, c.eventsRingDropped, c.eventsExporter,
	} {
		ch <- d
	}
	for _, d := range c.ftp {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.uptime, float64(s.UptimeSeconds))
	gauge(c.buildInfo, 1, s.Build.Version, s.Build.Revision, s.Build.Go)
	gauge(c.startTime, float64(s.StartTime))
	gauge(c.lastReload, float64(s.LastReload.Time))
	ok := 0.0
	if s.LastReload.OK {
		ok = 1
	}
	gauge(c.lastReloadOK, ok)
	for _, w := range s.Workers {
		id, q := strconv.Itoa(w.ID), strconv.Itoa(w.Queue)
		counter(c.rxPackets, w.RxPackets, id, q)
		counter(c.rxBytes, w.RxBytes, id, q)
		counter(c.txPackets, w.TxPackets, id, q)
		counter(c.txBytes, w.TxBytes, id, q)
		counter(c.translated, w.Translated, id, q)
		counter(c.algDiverted, w.ALGDiverted, id, q)
		counter(c.algReturned, w.ALGReturned, id, q)
		counter(c.held, w.Held, id, q)
		ch <- prometheus.MustNewConstMetric(c.busy, prometheus.CounterValue, w.BusySeconds, id, q)
		for reason, n := range w.Drops {
			counter(c.drops, n, id, q, reason)
		}
		for event, n := range w.Events {
			counter(c.events, n, id, q, event)
		}
		for _, p := range w.Ports {
			counter(c.ifRx, p.Rx, id, q, p.Interface)
			counter(c.ifTx, p.Tx, id, q, p.Interface)
			for reason, n := range p.Drops {
				counter(c.ifDrops, n, id, q, p.Interface, reason)
			}
			counter(c.ifFillEmpty, p.FillRingEmpty, id, q, p.Interface)
			counter(c.ifTxEmpty, p.TxRingEmpty, id, q, p.Interface)
		}
	}
	for _, sc := range s.Sessions {
		gauge(c.sessions, float64(sc.Count), sc.Protocol, sc.App)
	}
	t := s.Table
	gauge(c.tableSessions, float64(t.Sessions))
	gauge(c.tableCapacity, float64(t.Capacity))
	gauge(c.tableExp, float64(t.Expectations))
	gauge(c.tableExpCap, float64(t.ExpectCapacity))
	counter(c.tableInserts, t.Inserts)
	counter(c.tableDeletes, t.Deletes)
	counter(c.tableExpired, t.Expired)
	for reason, n := range t.Refused {
		counter(c.tableRefused, n, reason)
	}
	counter(c.expInserted, t.ExpectInserts)
	counter(c.expRefused, t.ExpectRefused)
	counter(c.expMatched, t.ExpectMatched)
	counter(c.expExpired, t.ExpectExpired)
	for _, p := range s.Pools {
		gauge(c.poolPorts, float64(p.TCP), p.Address, "tcp")
		gauge(c.poolPorts, float64(p.UDP), p.Address, "udp")
		gauge(c.poolPorts, float64(p.ICMP), p.Address, "icmp")
		if p.Capacity > 0 {
			for _, proto := range []string{"tcp", "udp", "icmp"} {
				gauge(c.poolCapacity, float64(p.Capacity), p.Address, proto)
			}
		}
	}
	gauge(c.bindings, float64(s.Bindings))
	for _, b := range s.Blocks {
		rule, size := strconv.Itoa(b.Rule), strconv.Itoa(b.BlockSize)
		gauge(c.blocksHeld, float64(b.Held), rule, size)
		gauge(c.blocksCapacity, float64(b.Capacity), rule, size)
		counter(c.blocksRefused, b.QuotaExceeded, rule, "quota_exceeded")
		counter(c.blocksRefused, b.Exhausted, rule, "exhausted")
	}
	for _, m := range s.FTPMappings {
		for i, fc := range FTPCounters {
			counter(c.ftp[i], m.Counters[fc.Name], m.Mapping)
		}
	}
	if cp := s.Capture; cp != nil {
		counter(c.capture, cp.Written, "written")
		counter(c.capture, cp.RateLimited, "rate_limited")
		counter(c.capture, cp.QueueFull, "queue_full")
		counter(c.capture, cp.Errors, "write_error")
	}
	if e := s.Events; e != nil {
		counter(c.eventsMade, e.Made)
		counter(c.eventsRingDropped, e.RingDropped)
		for _, x := range e.Exporters {
			counter(c.eventsExporter, x.Queued, x.Name, "queued")
			counter(c.eventsExporter, x.QueueDropped, x.Name, "queue_dropped")
			counter(c.eventsExporter, x.Exported, x.Name, "exported")
			counter(c.eventsExporter, x.Failed, x.Name, "failed")
		}
	}
	counter(c.reloads, s.Reloads.OK, "ok")
	counter(c.reloads, s.Reloads.Refused, "refused")
	counter(c.reloads, s.Reloads.Failed, "failed")
}
