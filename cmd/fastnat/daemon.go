package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/pipeline"
)

// daemon is a running dataplane: interfaces with their XDP programs, one
// pipeline worker per queue, the FTP ALG goroutine, and what they share.
type daemon struct {
	log     *slog.Logger
	cfg     *config.Config
	table   *flowtable.Table
	nat     *nat.NAT
	ftp     *alg.FTP
	ifaces  []*afxdp.Interface
	addrs   *afxdp.Addresses
	xsks    []*afxdp.Worker
	workers []*pipeline.Worker
	algStop chan struct{}
	wg      sync.WaitGroup
	start   time.Time
}

// clock is the coarse time every worker reads once per burst.
func (d *daemon) clock() flowtable.Time { return flowtable.Time(time.Since(d.start) / time.Second) }

// natRules translates the configuration into the engine's rules.
func natRules(cfg *config.Config) nat.Rules {
	r := nat.Rules{
		PortMap: cfg.PortMap,
		FTPALG:  cfg.ALG.FTP.Enabled,
		Timeouts: nat.Timeouts{
			TCPSyn: cfg.Timeouts.TCPSyn, TCPEstablished: cfg.Timeouts.TCPEstablished,
			TCPTransitory: cfg.Timeouts.TCPTransitory, UDP: cfg.Timeouts.UDP,
			ICMP: cfg.Timeouts.ICMP, Expectation: cfg.Timeouts.Expectation,
		},
	}
	for _, o := range cfg.NAT.Outbound {
		r.Outbound = append(r.Outbound, nat.Outbound{
			Inside: o.Inside, Pool: o.Pool, PortLo: o.Ports.Lo, PortHi: o.Ports.Hi,
			EndpointIndependent: o.Mapping == config.EndpointIndependent,
		})
	}
	for _, s := range cfg.NAT.Server {
		r.Servers = append(r.Servers, nat.Server{Proto: s.Proto, Public: s.Public, Inside: s.Inside})
	}
	return r
}

// publicAddrs are the addresses the NAT answers for: pools and server
// public addresses, each once.
func publicAddrs(cfg *config.Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, o := range cfg.NAT.Outbound {
		for _, a := range o.Pool {
			add(a)
		}
	}
	for _, s := range cfg.NAT.Server {
		add(s.Public.Addr())
	}
	return out
}

// filter is what the XDP programs steer to fastnat for cfg.
func filter(cfg *config.Config, public []netip.Addr) (afxdp.Filter, error) {
	f := afxdp.Filter{Public: public}
	for _, o := range cfg.NAT.Outbound {
		f.Inside = append(f.Inside, o.Inside...)
	}
	for _, s := range cfg.NAT.Server {
		f.Inside = append(f.Inside, netip.PrefixFrom(s.Inside.Addr(), 32))
	}
	host, err := afxdp.HostAddrs()
	if err != nil {
		return f, err
	}
	isPublic := map[netip.Addr]bool{}
	for _, a := range public {
		isPublic[a] = true
	}
	for _, a := range host {
		if !isPublic[a] {
			f.Local = append(f.Local, a)
		}
	}
	return f, nil
}

func xdpMode(m config.XDPMode) afxdp.Mode {
	switch m {
	case config.XDPNative:
		return afxdp.ModeNative
	case config.XDPGeneric:
		return afxdp.ModeGeneric
	}
	return afxdp.ModeAuto
}

func pollMode(m config.PollMode) pipeline.PollMode {
	switch m {
	case config.PollBusy:
		return pipeline.PollBusy
	case config.PollInterrupt:
		return pipeline.PollInterrupt
	}
	return pipeline.PollAdaptive
}

// startDaemon brings the dataplane up; dropTap (nil: none) sees every
// frame a worker drops. On error everything it had set up is torn down
// again.
func startDaemon(cfg *config.Config, log *slog.Logger, dropTap func(frame []byte, reason string)) (_ *daemon, err error) {
	d := &daemon{log: log, cfg: cfg, start: time.Now(), algStop: make(chan struct{})}
	defer func() {
		if err != nil {
			d.teardown()
		}
	}()
	d.table, err = flowtable.New(flowtable.Config{MaxSessions: cfg.Flows.Max})
	if err != nil {
		return nil, err
	}
	// Interfaces and the queues every worker owns one of.
	queues := cfg.Interfaces[0].Queues
	for _, ic := range cfg.Interfaces {
		role := afxdp.Inside
		if ic.Role == config.RoleOutside {
			role = afxdp.Outside
		}
		iface, err := afxdp.Load(afxdp.IfaceSpec{Name: ic.Name, Role: role, Mode: xdpMode(cfg.Dataplane.XDPMode), Gateway: ic.Gateway})
		if err != nil {
			return nil, err // Load's errors name the interface
		}
		d.ifaces = append(d.ifaces, iface)
	}
	if queues == nil {
		for q := 0; q < d.ifaces[0].Queues(); q++ {
			queues = append(queues, q)
		}
	}
	workers := cfg.Dataplane.Workers
	if workers == 0 || workers > len(queues) {
		workers = len(queues)
	}
	for i, iface := range d.ifaces {
		for _, q := range queues[:workers] {
			if q >= iface.Queues() {
				return nil, fmt.Errorf("interface %s has %d queues, queue %d requested: %w", cfg.Interfaces[i].Name, iface.Queues(), q, afxdp.ErrQueueMismatch)
			}
		}
	}
	d.nat, err = nat.New(natRules(cfg), d.table, workers)
	if err != nil {
		return nil, err
	}
	// The public addresses go on the outside interface so the kernel
	// answers ARP for them; the XDP program takes the IPv4 traffic.
	d.addrs, err = afxdp.NewAddresses()
	if err != nil {
		return nil, err
	}
	public := publicAddrs(cfg)
	f, err := filter(cfg, public)
	if err != nil {
		return nil, err
	}
	for _, ic := range cfg.Interfaces {
		if ic.Role != config.RoleOutside {
			continue
		}
		for _, a := range public {
			if err := d.addrs.Add(ic.Name, a); err != nil {
				return nil, fmt.Errorf("public address %v: %w", a, err)
			}
		}
	}
	var links []*pipeline.ALGLink
	if cfg.ALG.FTP.Enabled {
		d.ftp, err = alg.New(alg.Config{Enabled: true, AllowThirdParty: cfg.ALG.FTP.AllowThirdParty,
			MaxExpectations: cfg.ALG.FTP.MaxExpectations, Log: log}, d.table, d.nat)
		if err != nil {
			return nil, err
		}
		d.nat.OnSessionEnd(d.ftp.SessionEnded)
		d.nat.OnExpectationUsed(d.ftp.ExpectationUsed)
	}
	for w := 0; w < workers; w++ {
		q := queues[w]
		xw, err := afxdp.Open(d.ifaces, q, afxdp.Options{FrameSize: cfg.Dataplane.FrameSize, FramesPerQueue: cfg.Dataplane.FramesPerQueue})
		if err != nil {
			return nil, fmt.Errorf("queue %d: %w", q, err)
		}
		d.xsks = append(d.xsks, xw)
		var specs []pipeline.PortSpec
		for i, p := range xw.PipelinePorts() {
			side := nat.Inside
			if cfg.Interfaces[i].Role == config.RoleOutside {
				side = nat.Outside
			}
			specs = append(specs, pipeline.PortSpec{Port: p, Side: side})
		}
		var link *pipeline.ALGLink
		if d.ftp != nil {
			link, err = pipeline.NewALGLink(1024)
			if err != nil {
				return nil, err
			}
			links = append(links, link)
		}
		d.workers = append(d.workers, pipeline.NewWorker(pipeline.Config{
			ID: w, Ports: specs, Waker: xw, Poll: pollMode(cfg.Dataplane.Poll), Batch: cfg.Dataplane.Batch,
			NAT: d.nat.Engine(w), Table: d.table, ALG: link, Clock: d.clock, DropTap: dropTap,
		}))
	}
	for _, iface := range d.ifaces {
		if err := iface.SetFilter(f); err != nil {
			return nil, err
		}
	}
	if d.ftp != nil {
		in, out := make([]*alg.Ring, len(links)), make([]*alg.Ring, len(links))
		for i, l := range links {
			in[i], out[i] = l.To, l.From
		}
		runner, err := alg.NewRunner(d.ftp, in, out, 64, d.clock)
		if err != nil {
			return nil, err
		}
		for _, l := range links {
			l.Wake = runner.Wake
		}
		d.wg.Add(1)
		go func() { defer d.wg.Done(); runner.Run(d.algStop) }()
	}
	for w, pw := range d.workers {
		cpu := -1
		if w < len(cfg.Dataplane.CPUs) {
			cpu = cfg.Dataplane.CPUs[w]
		}
		d.wg.Add(1)
		go d.routineWorker(w, cpu, pw)
	}
	for _, iface := range d.ifaces {
		if err := iface.Attach(); err != nil {
			return nil, err
		}
	}
	// One line per interface and queue served, with the XDP mode the
	// kernel actually took.
	for w, q := range queues[:workers] {
		for i, ic := range cfg.Interfaces {
			log.Info("serving", "interface", ic.Name, "queue", q, "worker", w, "role", ic.Role.String(), "xdp", d.ifaces[i].Mode().String())
		}
	}
	log.Info("fastnat running", "workers", workers, "flows", cfg.Flows.Max, "public", fmt.Sprint(public), "ftp_alg", cfg.ALG.FTP.Enabled)
	return d, nil
}

// routineWorker runs one pipeline worker on a locked OS thread, pinned to
// cpu when cpu ≥ 0.
func (d *daemon) routineWorker(w, cpu int, pw *pipeline.Worker) {
	defer d.wg.Done()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cpu >= 0 {
		if err := afxdp.PinCPU(cpu); err != nil {
			d.log.Warn("cpu pinning failed", "worker", w, "cpu", cpu, "err", err)
		}
	}
	d.log.Debug("worker started", "worker", w, "cpu", cpu)
	pw.Run()
	d.log.Debug("worker stopped", "worker", w)
}

// reload re-reads the configuration: new rules, port mappings, timeouts
// and ALG policy apply to new sessions; existing sessions keep theirs.
func (d *daemon) reload(path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if err := d.nat.Reload(natRules(cfg)); err != nil {
		return err
	}
	public := publicAddrs(cfg)
	for _, ic := range cfg.Interfaces {
		if ic.Role == config.RoleOutside {
			for _, a := range public {
				if err := d.addrs.Add(ic.Name, a); err != nil {
					d.log.Warn("public address", "addr", a, "err", err)
				}
			}
		}
	}
	f, err := filter(cfg, public)
	if err != nil {
		return err
	}
	for _, iface := range d.ifaces {
		if err := iface.SetFilter(f); err != nil {
			return err
		}
	}
	if d.ftp != nil {
		d.ftp.SetPolicy(alg.Policy{AllowThirdParty: cfg.ALG.FTP.AllowThirdParty, MaxExpectations: cfg.ALG.FTP.MaxExpectations})
	} else if cfg.ALG.FTP.Enabled {
		d.log.Warn("[alg.ftp] enabled takes effect at restart: the ALG was off when fastnat started")
	}
	d.cfg = cfg
	d.log.Info("configuration reloaded", "file", path, "port_mappings", len(cfg.PortMappings))
	return nil
}

// stop detaches the XDP programs first (traffic goes back to the kernel),
// then stops the workers and the ALG and frees everything.
func (d *daemon) stop() error {
	var errs []error
	for _, iface := range d.ifaces {
		if err := iface.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.ifaces = nil
	for _, w := range d.workers {
		w.Stop()
	}
	close(d.algStop)
	d.wg.Wait()
	for i, w := range d.workers {
		d.log.Info("worker totals", append([]any{"worker", i}, counterAttrs(w.Counters())...)...)
	}
	d.teardown()
	return errors.Join(errs...)
}

// teardown frees what is left: sockets, interfaces, added addresses.
func (d *daemon) teardown() {
	for _, x := range d.xsks {
		_ = x.Close()
	}
	d.xsks = nil
	for _, iface := range d.ifaces {
		_ = iface.Close()
	}
	d.ifaces = nil
	if d.addrs != nil {
		_ = d.addrs.Close()
		d.addrs = nil
	}
}

// counterAttrs lists a worker's non-zero counters as log attributes.
func counterAttrs(c *pipeline.Counters) []any {
	a := []any{"rx", c.RxPackets.Load(), "tx", c.TxPackets.Load(), "alg_diverted", c.ALGDiverted.Load()}
	for i := range c.Parse {
		if n := c.Parse[i].Load(); n > 0 && packet.Result(i) != packet.OK {
			a = append(a, "parse_"+packet.Result(i).String(), n)
		}
	}
	for i := range c.Verdict {
		if n := c.Verdict[i].Load(); n > 0 {
			a = append(a, "nat_"+nat.Verdict(i).String(), n)
		}
	}
	for i := range c.Drop {
		if n := c.Drop[i].Load(); n > 0 {
			a = append(a, pipeline.DropReason(i).String(), n)
		}
	}
	return a
}
