package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/explain"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/internal/version"
	"github.com/fastnat/fastnat/metrics"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
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

// Explain explains a connection under the running configuration (the
// report `fastnat explain -c FILE` gives offline, knowing the host's
// addresses as the NAT does: nat.Rules.Local) and adds, when the flow
// table holds it, the live session, its expectations and the FTP ALG's
// counters for it. A session asked for by id is explained by its first
// packet as it arrived.
func (d *Dataplane) Explain(q control.ExplainQuery) (control.ExplainResult, error) {
	cfg := d.Config()
	var id, gen uint32
	live := false
	if q.Session != nil {
		id = *q.Session
		var s flowtable.Session
		if id < uint32(d.table.Capacity()) {
			gen = d.table.Gen(id)
			live = d.table.Read(id, gen, &s)
		}
		if !live {
			return control.ExplainResult{}, fmt.Errorf("%w: no live session %d", control.ErrBadRequest, id)
		}
		k := s.Key[flowtable.Orig]
		q.Query = explain.Query{Proto: packet.ProtoName(k.Proto),
			Src: netip.AddrPortFrom(nat.Addr(k.SrcAddr), k.SrcPort), Dst: netip.AddrPortFrom(nat.Addr(k.DstAddr), k.DstPort)}
	}
	local, err := d.addrs.HostPrefixes()
	if err != nil {
		return control.ExplainResult{}, err
	}
	r, err := explain.Explain(cfg, natRules(cfg, local), q.Query)
	if err != nil {
		if errors.Is(err, explain.ErrQuery) {
			err = fmt.Errorf("%w: %w", control.ErrBadRequest, err)
		}
		return control.ExplainResult{}, err
	}
	res := control.ExplainResult{Report: r}
	if !live {
		if t, err := q.Query.Tuple(); err == nil {
			id, _, gen, live = d.table.LookupGen(t)
		}
	}
	if !live {
		return res, nil
	}
	now := d.clock()
	if s, ok := control.SessionOf(d.table, now, id, gen, d.sessionNames()); ok {
		res.Session = &s
		res.Expectations = control.ExpectationsOf(d.table, now, id, gen, d.sessionNames())
		if d.ftp != nil {
			if c, ok := d.ftp.SessionCounters(id, gen); ok {
				res.ALG = metrics.FTPSnapshot(c)
			}
		}
	}
	return res, nil
}
