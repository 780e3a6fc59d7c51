package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/metrics"
)

// observer is what the running daemon shows of itself: the control socket
// (it implements control.Handler), the Prometheus endpoint, the drop
// capture, and the reloads, which it serialises (SIGHUP and `fastnat
// reload` may arrive together).
type observer struct {
	file    string
	log     *slog.Logger
	capture *dropCapture // nil: --pcap-drops not given

	d      *daemon
	ifaces []string        // interface names, in the order of every worker's ports
	ports  [][]*afxdp.Port // per worker
	queues []int           // per worker
	cfg    atomic.Pointer[config.Config]

	mu                sync.Mutex // held by reload
	reloadOK, refused atomic.Uint64

	ctl  *control.Server
	prom *metrics.Server
}

// newObserver prepares the observer of the daemon about to start with cfg
// read from file; with pcapDrops it opens the drop capture, whose tap the
// daemon's workers get.
func newObserver(file string, cfg *config.Config, pcapDrops string, log *slog.Logger) (*observer, error) {
	o := &observer{file: file, log: log}
	o.cfg.Store(cfg)
	if pcapDrops != "" {
		c, err := openDropCapture(pcapDrops, defaultCaptureRate, cfg.Dataplane.FrameSize)
		if err != nil {
			return nil, err
		}
		o.capture = c
		log.Info("capturing dropped frames", "file", pcapDrops, "max_per_second", defaultCaptureRate)
	}
	return o, nil
}

// dropTap is the workers' pipeline.Config.DropTap: nil without a capture.
func (o *observer) dropTap() func(frame []byte, reason string) {
	if o.capture == nil {
		return nil
	}
	return o.capture.tap
}

// serve starts the control socket and the metrics endpoint of d, as the
// configuration asks.
func (o *observer) serve(d *daemon) error {
	o.d = d
	cfg := o.cfg.Load()
	for _, ic := range cfg.Interfaces {
		o.ifaces = append(o.ifaces, ic.Name)
	}
	for _, x := range d.xsks {
		o.ports = append(o.ports, x.Ports())
		o.queues = append(o.queues, x.Queue())
	}
	if cfg.Control.Socket != "" {
		s, err := control.Listen(cfg.Control.Socket, o)
		if err != nil {
			return err
		}
		o.ctl = s
		o.log.Info("control socket", "path", cfg.Control.Socket)
	}
	if cfg.Metrics.Listen != "" {
		s, err := metrics.Serve(cfg.Metrics.Listen, metrics.NewCollector(o.Stats))
		if err != nil {
			o.stopServing()
			return err
		}
		o.prom = s
		o.log.Info("metrics", "listen", s.Addr().String())
	}
	return nil
}

// stopServing closes the control socket and the metrics endpoint. Call it
// before the daemon stops: both read the daemon's sockets and tables.
func (o *observer) stopServing() {
	if o.ctl != nil {
		if err := o.ctl.Close(); err != nil {
			o.log.Warn("control socket close", "err", err)
		}
		o.ctl = nil
	}
	if o.prom != nil {
		if err := o.prom.Close(); err != nil {
			o.log.Warn("metrics close", "err", err)
		}
		o.prom = nil
	}
}

// closeCapture ends the drop capture. Call it after the workers stopped.
func (o *observer) closeCapture() {
	if o.capture == nil {
		return
	}
	st := o.capture.stats()
	if err := o.capture.close(); err != nil {
		o.log.Warn("pcap drops", "err", err)
	}
	o.log.Info("drop capture closed", "file", st.File, "written", st.Written, "rate_limited", st.RateLimited, "queue_full", st.QueueFull)
	o.capture = nil
}

// reload re-reads the configuration file and applies it for new sessions.
// A file with errors is refused (the error wraps control.ErrRefused and
// holds every positioned problem) and the running configuration stays.
func (o *observer) reload() (control.ReloadResult, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	old := o.cfg.Load()
	if err := o.d.reload(o.file); err != nil {
		o.refused.Add(1)
		o.log.Error("reload refused; keeping the running configuration", "file", o.file, "err", err)
		return control.ReloadResult{}, fmt.Errorf("%w: %w", control.ErrRefused, err)
	}
	cfg := o.d.cfg
	o.cfg.Store(cfg)
	o.reloadOK.Add(1)
	if cfg.Control != old.Control || cfg.Metrics != old.Metrics || len(cfg.Interfaces) != len(old.Interfaces) ||
		cfg.Dataplane.Workers != old.Dataplane.Workers || cfg.Flows != old.Flows || cfg.ALG.FTP.Enabled != old.ALG.FTP.Enabled {
		o.log.Warn("reload: interfaces, [dataplane], [flows], [control], [metrics] and turning the FTP ALG on or off take effect only at restart")
	}
	return control.ReloadResult{File: o.file, PortMappings: len(cfg.PortMappings)}, nil
}

// Stats implements control.Handler; it is also the metrics snapshot.
func (o *observer) Stats() metrics.Snapshot {
	d := o.d
	s := metrics.Snapshot{
		UptimeSeconds: int64(time.Since(d.start) / time.Second),
		ConfigFile:    o.file,
		Table:         metrics.TableSnapshot(d.table.Stats()),
		Sessions:      metrics.CountSessions(d.table),
		Pools:         metrics.PoolSnapshot(d.nat.PoolUse()),
		Bindings:      d.nat.Bindings(),
		Reloads:       metrics.Reloads{OK: o.reloadOK.Load(), Refused: o.refused.Load()},
	}
	for w, pw := range d.workers {
		ws := metrics.WorkerSnapshot(w, o.queues[w], pw.Counters())
		for i, p := range o.ports[w] {
			st := p.Stats()
			k := st.Kernel
			ws.Ports = append(ws.Ports, metrics.Port{
				Interface: o.ifaces[i], Rx: st.Rx, Tx: st.Tx,
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
	if o.capture != nil {
		s.Capture = o.capture.stats()
	}
	return s
}

// Sessions implements control.Handler.
func (o *observer) Sessions(q control.SessionQuery) (control.SessionList, error) {
	return control.ListSessions(o.d.table, o.d.clock(), q)
}

// Expectations implements control.Handler.
func (o *observer) Expectations() []control.Expectation {
	return control.ListExpectations(o.d.table, o.d.clock())
}

// Mappings implements control.Handler.
func (o *observer) Mappings() []control.Mapping {
	var st *alg.Stats
	if o.d.ftp != nil {
		s := o.d.ftp.Stats()
		st = &s
	}
	return control.ListMappings(o.cfg.Load(), st)
}

// Reload implements control.Handler: `fastnat reload` is SIGHUP.
func (o *observer) Reload() (control.ReloadResult, error) { return o.reload() }

var _ control.Handler = (*observer)(nil)

// errNoSocket is returned by the client commands when the configuration
// has no control socket.
var errNoSocket = errors.New("the control socket is off ([control] socket is empty)")
