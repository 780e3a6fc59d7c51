package dataplane

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/metrics"
)

// DaemonOptions are what a Daemon takes besides its configuration.
type DaemonOptions struct {
	// Log receives the daemon's and the dataplane's messages; nil discards
	// them.
	Log *slog.Logger
	// PcapDrops, when set, is the pcap file dropped frames are written to
	// (at most 100 a second).
	PcapDrops string
}

// Daemon is a Dataplane as `fastnat run` serves it: its configuration file,
// the control socket, the Prometheus endpoint and the drop capture. It
// implements control.Handler.
type Daemon struct {
	file    string
	log     *slog.Logger
	capture *dropCapture // nil: no drop capture
	dp      *Dataplane

	mu                        sync.Mutex // held by Reload
	reloadOK, refused, failed atomic.Uint64

	ctl  *control.Server
	prom *metrics.Server
}

// Start brings up the dataplane of cfg, read from file, and serves it on
// the control socket and the metrics endpoint the configuration names. On
// error nothing is left running.
func Start(file string, cfg *config.Config, opts DaemonOptions) (_ *Daemon, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Daemon{file: file, log: opts.Log}
	if opts.PcapDrops != "" {
		c, err := openDropCapture(opts.PcapDrops, defaultCaptureRate, cfg.Dataplane.FrameSize)
		if err != nil {
			return nil, err
		}
		d.capture = c
		d.log.Info("capturing dropped frames", "file", opts.PcapDrops, "max_per_second", defaultCaptureRate)
	}
	defer func() {
		if err != nil {
			d.closeCapture()
		}
	}()
	dopts := Options{Log: d.log}
	if d.capture != nil {
		dopts.DropTap = d.capture.tap
	}
	d.dp, err = New(cfg, dopts)
	if err != nil {
		return nil, err
	}
	if err := d.serve(cfg); err != nil {
		_ = d.dp.Close()
		return nil, err
	}
	return d, nil
}

// Dataplane returns the daemon's dataplane.
func (d *Daemon) Dataplane() *Dataplane { return d.dp }

// serve starts the control socket and the metrics endpoint, as cfg asks.
func (d *Daemon) serve(cfg *config.Config) error {
	if cfg.Control.Socket != "" {
		s, err := control.Listen(cfg.Control.Socket, d)
		if err != nil {
			return err
		}
		s.ServeEvents(d.dp.Events())
		d.ctl = s
		d.log.Info("control socket", "path", cfg.Control.Socket)
	}
	if cfg.Metrics.Listen != "" {
		s, err := metrics.Serve(cfg.Metrics.Listen, metrics.NewCollector(d.Stats))
		if err != nil {
			d.stopServing()
			return err
		}
		d.prom = s
		d.log.Info("metrics", "listen", s.Addr().String())
	}
	return nil
}

// stopServing closes the control socket and the metrics endpoint: both
// read the dataplane, so they stop before it does.
func (d *Daemon) stopServing() {
	if d.ctl != nil {
		if err := d.ctl.Close(); err != nil {
			d.log.Warn("control socket close", "err", err)
		}
		d.ctl = nil
	}
	if d.prom != nil {
		if err := d.prom.Close(); err != nil {
			d.log.Warn("metrics close", "err", err)
		}
		d.prom = nil
	}
}

// closeCapture ends the drop capture, after the workers stopped.
func (d *Daemon) closeCapture() {
	if d.capture == nil {
		return
	}
	st := d.capture.stats()
	if err := d.capture.close(); err != nil {
		d.log.Warn("pcap drops", "err", err)
	}
	d.log.Info("drop capture closed", "file", st.File, "written", st.Written, "rate_limited", st.RateLimited, "queue_full", st.QueueFull)
	d.capture = nil
}

// Close stops serving, closes the dataplane (detaching first) and the drop
// capture.
func (d *Daemon) Close() error {
	d.stopServing()
	err := d.dp.Close()
	d.closeCapture()
	return err
}

// Reload re-reads the configuration file and applies it for new sessions
// (control.Handler: `fastnat reload` is SIGHUP), all or nothing. A file
// with errors, or one the dataplane cannot apply, is refused (the error
// wraps control.ErrRefused and holds every positioned problem); a reload
// that failed while applying (ErrReload) was rolled back. Either way the
// running configuration stays. Changed keys that wait for a restart are
// logged and returned.
func (d *Daemon) Reload() (control.ReloadResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cfg, err := config.Load(d.file)
	var pending []control.Pending
	if err == nil {
		pending, err = d.dp.Reload(cfg)
	}
	if errors.Is(err, ErrReload) {
		d.failed.Add(1)
		d.log.Error("reload failed; keeping the running configuration", "file", d.file, "err", err)
		return control.ReloadResult{}, err
	}
	if err != nil {
		d.refused.Add(1)
		d.log.Error("reload refused; keeping the running configuration", "file", d.file, "err", err)
		return control.ReloadResult{}, fmt.Errorf("%w: %w", control.ErrRefused, err)
	}
	d.reloadOK.Add(1)
	d.log.Info("configuration reloaded", "file", d.file, "port_mappings", len(cfg.PortMappings))
	for _, p := range pending {
		d.log.Warn("reload: changed key takes effect only at restart", "key", p.Key, "running", p.Running, "file", p.File)
	}
	return control.ReloadResult{File: d.file, PortMappings: len(cfg.PortMappings), Pending: pending}, nil
}

// Stats is the dataplane's snapshot with the daemon's own counters
// (control.Handler; also the metrics snapshot).
func (d *Daemon) Stats() metrics.Snapshot {
	s := d.dp.Stats()
	s.ConfigFile = d.file
	s.Reloads = metrics.Reloads{OK: d.reloadOK.Load(), Refused: d.refused.Load(), Failed: d.failed.Load()}
	if d.capture != nil {
		s.Capture = d.capture.stats()
	}
	return s
}

// Sessions implements control.Handler.
func (d *Daemon) Sessions(q control.SessionQuery) (control.SessionList, error) {
	return d.dp.Sessions(q)
}

// Expectations implements control.Handler.
func (d *Daemon) Expectations() []control.Expectation { return d.dp.Expectations() }

// Mappings implements control.Handler.
func (d *Daemon) Mappings() []control.Mapping { return d.dp.Mappings() }

// Explain implements control.Explainer.
func (d *Daemon) Explain(q control.ExplainQuery) (control.ExplainResult, error) {
	return d.dp.Explain(q)
}

var (
	_ control.Handler   = (*Daemon)(nil)
	_ control.Explainer = (*Daemon)(nil)
)
