package dataplane

import (
	"fmt"
	"strings"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/ipfix"
	"github.com/fastnat/fastnat/natlog/syslog"
)

// newEvents builds the NAT event log: one ring per worker and one each
// for `clear sessions` and the FTP ALG (nat.Producers), the exporters
// [logging] names, and the Hub's goroutine. The NAT writes the rings
// (newNAT).
func (d *Dataplane) newEvents(cfg *config.Config) error {
	hub, err := natlog.NewHub(natlog.HubConfig{Producers: nat.Producers(len(d.queues)), Ring: cfg.Logging.Ring, Log: d.log})
	if err != nil {
		return err
	}
	d.events = hub
	for _, x := range cfg.Logging.IPFIX {
		e, err := ipfix.New(ipfix.Config{Collector: x.Collector, Domain: x.Domain, Refresh: x.TemplateRefresh, MaxMessage: x.MaxMessage})
		if err != nil {
			return err
		}
		if err := hub.Add(fmt.Sprintf("ipfix %s", x.Collector), e, natlog.Filter{Types: x.Events}); err != nil {
			e.Close()
			return err
		}
	}
	for _, s := range cfg.Logging.Syslog {
		e, err := syslog.New(syslog.Config{Transport: s.Transport, Address: s.Address, Facility: s.Facility, Hostname: s.Hostname})
		if err != nil {
			return err
		}
		if err := hub.Add(fmt.Sprintf("syslog %s %s", s.Transport, s.Address), e, natlog.Filter{Types: s.Events}); err != nil {
			e.Close()
			return err
		}
	}
	hub.Start()
	return nil
}

// Events returns the NAT event log: the live source of `fastnat events`
// and the rings the NAT records into (nat.NAT.LogTo).
func (d *Dataplane) Events() *natlog.Hub { return d.events }

// closeEvents lets the exporters send what is queued and closes them;
// the workers have stopped.
func (d *Dataplane) closeEvents() {
	if d.events == nil {
		return
	}
	if err := d.events.Close(); err != nil {
		d.log.Warn("event log close", "err", err)
	}
	st := d.events.Stats()
	var made, dropped uint64
	for _, p := range st.Producers {
		made, dropped = made+p.Queued+p.Dropped, dropped+p.Dropped
	}
	d.log.Info("event log totals", "events", made, "ring_dropped", dropped)
	for _, o := range st.Outlets {
		d.log.Info("event exporter totals", "exporter", o.Name, "exported", o.Exported, "queue_dropped", o.Dropped, "failed", o.Failed)
	}
	d.events = nil
}

// keepLogging compares [logging] by what it configures (not its lines):
// the exporters and the rings are built at start.
func keepLogging(next, run *config.Config) (string, string, bool) {
	describe := func(l config.Logging) string {
		var b strings.Builder
		fmt.Fprintf(&b, "ring %d", l.Ring)
		for _, x := range l.IPFIX {
			fmt.Fprintf(&b, "; ipfix %s domain %d refresh %s max %d events %#x", x.Collector, x.Domain, x.TemplateRefresh, x.MaxMessage, x.Events)
		}
		for _, s := range l.Syslog {
			fmt.Fprintf(&b, "; syslog %s %s facility %d host %q events %#x", s.Transport, s.Address, s.Facility, s.Hostname, s.Events)
		}
		return b.String()
	}
	r, f := describe(run.Logging), describe(next.Logging)
	next.Logging = run.Logging
	return r, f, r != f
}
