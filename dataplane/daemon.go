package dataplane

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
	"github.com/fastnat/fastnat/internal/sdnotify"
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
// the control socket, the Prometheus endpoint, the drop capture, and the
// service manager: under systemd (Type=notify) it reports READY=1 once it
// serves, RELOADING=1 and READY=1 around every reload, STOPPING=1 when it
// stops, and, when the unit sets WatchdogSec, WATCHDOG=1 as long as every
// worker makes progress (Dataplane.Alive), so that systemd restarts a
// daemon whose workers hang. It implements control.Handler.
type Daemon struct {
	file    string
	log     *slog.Logger
	capture *dropCapture // nil: no drop capture
	dp      *Dataplane

	mu                        sync.Mutex // held by Reload
	reloadOK, refused, failed atomic.Uint64
	lastReload                atomic.Pointer[metrics.LastReload]

	ctl  *control.Server
	prom *metrics.Server

	watchdogStop chan struct{} // nil: no watchdog
	watchdogDone chan struct{}
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
	d.lastReload.Store(&metrics.LastReload{Time: time.Now().Unix(), OK: true})
	if err := d.serve(cfg); err != nil {
		_ = d.dp.Close()
		return nil, err
	}
	d.notify(sdnotify.Ready + "\n" + d.status("serving"))
	if iv := sdnotify.WatchdogInterval(); iv > 0 {
		d.watchdogStop, d.watchdogDone = make(chan struct{}), make(chan struct{})
		go d.routineWatchdog(iv)
	}
	return d, nil
}

// status is a STATUS= line for systemctl status.
func (d *Daemon) status(what string) string {
	return fmt.Sprintf("STATUS=%s %s with %d workers", what, d.file, d.dp.Workers())
}

// notify tells the service manager state; not under systemd it does
// nothing.
func (d *Daemon) notify(state string) {
	if _, err := sdnotify.Notify(state); err != nil {
		d.log.Warn("notify systemd", "err", err)
	}
}

// routineWatchdog sends WATCHDOG=1 every interval while every worker
// makes progress, and stops sending (systemd then restarts the service)
// when one does not.
func (d *Daemon) routineWatchdog(interval time.Duration) {
	defer close(d.watchdogDone)
	d.log.Info("watchdog", "interval", interval.String())
	_ = d.dp.Alive() // the first call records where the workers are
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-d.watchdogStop:
			return
		case <-t.C:
		}
		if err := d.dp.Alive(); err != nil {
			d.log.Error("watchdog: not telling systemd the daemon is alive", "err", err)
			continue
		}
		d.notify(sdnotify.Watchdog)
	}
}

// Dataplane returns the daemon's dataplane.
func (d *Daemon) Dataplane() *Dataplane { return d.dp }

// serve starts the control socket and the metrics endpoint, as cfg asks.
func (d *Daemon) serve(cfg *config.Config) error {
	if cfg.Control.Socket != "" {
		gid := -1
		if name := cfg.Control.Group; name != "" {
			g, err := user.LookupGroup(name)
			if err != nil {
				return fmt.Errorf("[control] group: %w", err)
			}
			if gid, err = strconv.Atoi(g.Gid); err != nil {
				return fmt.Errorf("[control] group %s: gid %q: %w", name, g.Gid, err)
			}
		}
		s, err := control.ListenGroup(cfg.Control.Socket, gid, d)
		if err != nil {
			return err
		}
		s.ServeEvents(d.dp.Events())
		d.ctl = s
		d.log.Info("control socket", "path", cfg.Control.Socket, "group", cfg.Control.Group)
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

// Close tells the service manager the daemon is stopping, stops serving,
// closes the dataplane (detaching first) and the drop capture.
func (d *Daemon) Close() error {
	d.notify(sdnotify.Stopping)
	if d.watchdogStop != nil {
		close(d.watchdogStop)
		<-d.watchdogDone
	}
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
	d.notify(sdnotify.Reloading + "\n" + d.status("reloading"))
	cfg, err := config.Load(d.file)
	var pending []control.Pending
	if err == nil {
		pending, err = d.dp.Reload(cfg)
	}
	if err != nil {
		d.lastReload.Store(&metrics.LastReload{Time: time.Now().Unix(), Error: err.Error()})
		d.notify(sdnotify.Ready + "\n" + d.status("reload refused; serving the previous configuration of"))
	} else {
		d.lastReload.Store(&metrics.LastReload{Time: time.Now().Unix(), OK: true})
		d.notify(sdnotify.Ready + "\n" + d.status("serving"))
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
	s.LastReload = *d.lastReload.Load()
	if d.capture != nil {
		s.Capture = d.capture.stats()
	}
	return s
}

// Sessions implements control.Handler.
func (d *Daemon) Sessions(q control.SessionQuery) (control.SessionList, error) {
	return d.dp.Sessions(q)
}

// Clear implements control.Handler.
func (d *Daemon) Clear(f control.SessionFilter) (control.ClearResult, error) { return d.dp.Clear(f) }

// Expectations implements control.Handler.
func (d *Daemon) Expectations() []control.Expectation { return d.dp.Expectations() }

// Mappings implements control.Handler.
func (d *Daemon) Mappings() []control.Mapping { return d.dp.Mappings() }

// Rules implements control.Handler: the running rules, and when they were
// applied.
func (d *Daemon) Rules() control.Rules { return d.dp.Rules() }

// Explain implements control.Explainer.
func (d *Daemon) Explain(q control.ExplainQuery) (control.ExplainResult, error) {
	return d.dp.Explain(q)
}

var (
	_ control.Handler   = (*Daemon)(nil)
	_ control.Explainer = (*Daemon)(nil)
)
