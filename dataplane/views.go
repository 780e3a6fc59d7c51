package dataplane

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/version"
	"github.com/fastnat/fastnat/metrics"
)

// Stats reads every counter of the dataplane into one snapshot: workers
// and their sockets, the flow table, sessions by protocol and application,
// port pools, bindings and the FTP ALG. The Daemon adds what it owns
// (file, reloads, capture).
func (d *Dataplane) Stats() metrics.Snapshot {
	v := version.Get()
	s := metrics.Snapshot{
		Build:         metrics.Build{Version: v.Version, Revision: v.Revision, Go: v.Go},
		StartTime:     d.start.Unix(),
		UptimeSeconds: int64(time.Since(d.start) / time.Second),
		Table:         metrics.TableSnapshot(d.table.Stats()),
		Sessions:      metrics.CountSessions(d.table),
		Pools:         metrics.PoolSnapshot(d.nat.PoolUse(), poolCapacity(d.Config())),
		Blocks:        metrics.BlocksSnapshot(d.nat.BlockUse()),
		Bindings:      d.nat.Bindings(),
	}
	for w, pw := range d.workers {
		ws := metrics.WorkerSnapshot(w, d.queues[w], pw.Counters())
		ws.BusySeconds = pw.Busy().Seconds()
		for i, p := range d.xsks[w].Ports() {
			st := p.Stats()
			k := st.Kernel
			ws.Ports = append(ws.Ports, metrics.Port{
				Interface: d.names[i], Rx: st.Rx, Tx: st.Tx,
				Drops: map[string]uint64{
					"rx_dropped": k.Rx_dropped, "rx_invalid_descs": k.Rx_invalid_descs,
					"rx_ring_full": k.Rx_ring_full, "tx_invalid_descs": k.Tx_invalid_descs,
				},
				FillRingEmpty: k.Rx_fill_ring_empty_descs, TxRingEmpty: k.Tx_ring_empty_descs,
			})
		}
		s.Workers = append(s.Workers, ws)
	}
	if d.ftp != nil {
		s.FTP = metrics.FTPSnapshot(d.ftp.Stats().Total)
	}
	if d.events != nil {
		s.Events = metrics.EventsSnapshot(d.events.Stats())
	}
	return s
}

// poolCapacity is the number of ports (and ICMP identifiers) each pool
// address offers: its outbound rule's port range.
func poolCapacity(cfg *config.Config) map[netip.Addr]int64 {
	m := map[netip.Addr]int64{}
	for _, o := range cfg.NAT.Outbound {
		for _, a := range o.Pool {
			m[a] += int64(o.Ports.Hi) - int64(o.Ports.Lo) + 1
		}
	}
	return m
}

// Sessions lists the sessions q selects (control.Handler's view).
func (d *Dataplane) Sessions(q control.SessionQuery) (control.SessionList, error) {
	return control.ListSessions(d.table, d.clock(), q, d.sessionNames())
}

// Clear ends the sessions f selects, each released as its expiry would
// release it (nat.NAT.Delete): ports, bindings and port blocks go back,
// and each session's delete event is recorded.
func (d *Dataplane) Clear(f control.SessionFilter) (control.ClearResult, error) {
	return control.ClearSessions(d.table, d.clock(), f, d.sessionNames(), d.nat.Delete)
}

// Expectations lists the ALG's open expectations.
func (d *Dataplane) Expectations() []control.Expectation {
	return control.ListExpectations(d.table, d.clock(), d.sessionNames())
}

// sessionNames names the rules and interfaces sessions record.
func (d *Dataplane) sessionNames() control.Names {
	return control.Names{Rule: d.nat.Rule, Epoch: d.start, Ingress: func(i uint16) string {
		if int(i) < len(d.names) {
			return d.names[i]
		}
		return fmt.Sprint(i)
	}}
}

// Rules describes the NAT rules running now and when they were applied.
func (d *Dataplane) Rules() control.Rules {
	return control.ListRules(d.Config(), time.Unix(0, d.loaded.Load()))
}

// Mappings lists the effective port-mapping table of the running
// configuration with the FTP ALG's counts per mapping.
func (d *Dataplane) Mappings() []control.Mapping {
	var st *alg.Stats
	if d.ftp != nil {
		s := d.ftp.Stats()
		st = &s
	}
	return control.ListMappings(d.Config(), st)
}
