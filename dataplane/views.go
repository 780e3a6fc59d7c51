package dataplane

import (
	"time"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/metrics"
	"github.com/fastnat/fastnat/portmap"
)

// Stats reads every counter of the dataplane into one snapshot: workers
// and their sockets, the flow table, sessions by protocol and application,
// port pools, bindings and the FTP ALG. The Daemon adds what it owns
// (file, reloads, capture).
func (d *Dataplane) Stats() metrics.Snapshot {
	s := metrics.Snapshot{
		UptimeSeconds: int64(time.Since(d.start) / time.Second),
		Table:         metrics.TableSnapshot(d.table.Stats()),
		Sessions:      metrics.CountSessions(d.table),
		Pools:         metrics.PoolSnapshot(d.nat.PoolUse()),
		Bindings:      d.nat.Bindings(),
	}
	for w, pw := range d.workers {
		ws := metrics.WorkerSnapshot(w, d.queues[w], pw.Counters())
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
		st := d.ftp.Stats()
		s.FTP = metrics.FTPSnapshot(st.Total)
		s.FTPMappings = metrics.FTPByMapping(st, ftpEntries(d.Config()))
	}
	if d.events != nil {
		s.Events = metrics.EventsSnapshot(d.events.Stats())
	}
	return s
}

// ftpEntries lists the port-mapping entries of cfg that classify ftp: the
// built-in default (-1) and every [[port_mapping]] of application ftp.
func ftpEntries(cfg *config.Config) []int {
	es := []int{-1}
	for i, m := range cfg.PortMappings {
		if m.App == portmap.AppFTP {
			es = append(es, i)
		}
	}
	return es
}

// Sessions lists the sessions q selects (control.Handler's view).
func (d *Dataplane) Sessions(q control.SessionQuery) (control.SessionList, error) {
	return control.ListSessions(d.table, d.clock(), q)
}

// Expectations lists the ALG's open expectations.
func (d *Dataplane) Expectations() []control.Expectation {
	return control.ListExpectations(d.table, d.clock())
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
