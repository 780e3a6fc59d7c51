package dataplane

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/pipeline"
)

// Options are what a Dataplane takes besides its configuration.
type Options struct {
	// Log receives the dataplane's messages; nil discards them.
	Log *slog.Logger
	// DropTap, when set, sees every frame a worker drops (see
	// pipeline.Config.DropTap for its rules).
	DropTap func(frame []byte, reason string)
}

// Dataplane is a running packet path: interfaces with their XDP programs,
// one pipeline worker per queue, the FTP ALG goroutine, and what they
// share. Build it with New; Close it once.
type Dataplane struct {
	log     *slog.Logger
	opts    Options
	cfg     atomic.Pointer[config.Config] // the configuration running now
	loaded  atomic.Int64                  // when cfg was applied, ns since the epoch
	start   time.Time
	table   *flowtable.Table
	nat     *nat.NAT
	ftp     *alg.FTP // nil: the ALG is off
	ifaces  []*afxdp.Interface
	addrs   *afxdp.Addresses
	xsks    []*afxdp.Worker
	workers []*pipeline.Worker
	router  *pipeline.Policy // the workers' RouterConfig; Reload replaces it
	badSum  sync.Map         // interface names logged for bad checksums
	events  *natlog.Hub      // the NAT event log; its rings are the workers'
	algStop chan struct{}
	wg      sync.WaitGroup
	closed  bool

	// Assembly state, filled by New's steps in order.
	names  []string            // interface names, in the order of every worker's ports
	queues []int               // the queue of each worker
	public []netip.Addr        // on the outside interfaces now
	filter afxdp.Filter        // in the XDP programs now
	links  []*pipeline.ALGLink // one per worker when the ALG is on

	beatsMu sync.Mutex
	beats   []uint64 // each worker's Beats at the last Alive

	// commitFault, set by tests, fails Reload's commit step it returns an
	// error for.
	commitFault func(step string) error
}

// New brings the dataplane described by cfg up and returns it running. On
// error everything it had set up is torn down again. It works in the
// network namespace of the calling OS thread.
func New(cfg *config.Config, opts Options) (_ *Dataplane, err error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &Dataplane{log: opts.Log, opts: opts, start: time.Now(), algStop: make(chan struct{})}
	d.cfg.Store(cfg)
	d.loaded.Store(d.start.UnixNano())
	defer func() {
		if err != nil {
			d.halt()
			d.teardown()
		}
	}()
	// The steps, in the order afxdp's lifetime rules require: no packet
	// may find a queue without a socket, so the programs attach last.
	for _, step := range []func(*config.Config) error{
		d.newTable,
		d.loadInterfaces,
		d.checkOffload,
		d.chooseQueues,
		d.newEvents,
		d.addPublicAddrs,
		d.newNAT,
		d.newALG,
		d.openWorkers,
		d.setFilters,
		d.startALG,
		d.startWorkers,
		d.attach,
	} {
		if err := step(cfg); err != nil {
			return nil, err
		}
	}
	d.logServing(cfg)
	return d, nil
}

// clock is the coarse time every worker reads once per burst.
func (d *Dataplane) clock() flowtable.Time { return flowtable.Time(time.Since(d.start) / time.Second) }

// Config returns the configuration running now (the last one New or a
// successful Reload applied).
func (d *Dataplane) Config() *config.Config { return d.cfg.Load() }

// Workers returns the number of workers running.
func (d *Dataplane) Workers() int { return len(d.workers) }

// newTable allocates the flow table for [flows] max sessions.
func (d *Dataplane) newTable(cfg *config.Config) (err error) {
	d.table, err = flowtable.New(flowtable.Config{MaxSessions: cfg.Flows.Max})
	return err
}

// loadInterfaces loads the XDP program of every configured interface
// (not attached yet).
func (d *Dataplane) loadInterfaces(cfg *config.Config) error {
	for _, ic := range cfg.Interfaces {
		role := afxdp.Inside
		if ic.Role == config.RoleOutside {
			role = afxdp.Outside
		}
		iface, err := afxdp.Load(afxdp.IfaceSpec{Name: ic.Name, Role: role, Mode: xdpMode(cfg.Dataplane.XDPMode), Gateway: ic.Gateway})
		if err != nil {
			return err // Load's errors name the interface
		}
		d.ifaces = append(d.ifaces, iface)
		d.names = append(d.names, ic.Name)
	}
	return nil
}

// checkOffload warns about every interface that is a veth whose peer
// transmits with checksum offload: its TCP and UDP frames arrive with
// unfinished checksums, which fastnat would forward as they are, and
// every TCP and UDP flow through it would fail while ping works. It never
// fails the start.
func (d *Dataplane) checkOffload(cfg *config.Config) error {
	for _, ic := range cfg.Interfaces {
		po, err := afxdp.CheckPeerOffload(ic.Name)
		switch {
		case err != nil:
			d.log.Warn("cannot check the veth peer's checksum offload", "interface", ic.Name, "err", err)
		case po.Visible && po.TxChecksum:
			fix := "ethtool -K " + po.Peer + " tx off"
			if po.Netns != "" {
				fix = "ip netns exec " + po.Netns + " " + fix
			}
			d.log.Warn("veth peer transmits with checksum offload: its TCP and UDP packets reach fastnat with unfinished checksums and will be dropped as bad_l4_checksum; turn it off",
				"interface", ic.Name, "peer", po.Peer, "netns", po.Netns, "fix", fix)
		case po.Veth && !po.Visible:
			d.log.Info("interface is a veth whose peer fastnat cannot see; make sure the peer transmits without checksum offload (ethtool -K PEER tx off)", "interface", ic.Name)
		}
	}
	return nil
}

// badChecksum is every worker's OnBadChecksum: it logs, once per
// interface, that packets arrive there with wrong TCP or UDP checksums,
// and the fix.
func (d *Dataplane) badChecksum(p pipeline.Port) {
	name := p.Name()
	if ap, ok := p.(*afxdp.Port); ok {
		name = ap.Interface()
	}
	if _, seen := d.badSum.LoadOrStore(name, true); seen {
		return
	}
	d.log.Warn("TCP/UDP packets with wrong checksums arrive here and are dropped (bad_l4_checksum): the sending peer (a veth, virtio or tap device) transmits with checksum offload; turn it off on the peer: ethtool -K PEER tx off",
		"interface", name)
}

// chooseQueues picks the queue of every worker: the first interface's
// queues (all of them by default), as many as [dataplane] workers asks,
// each of which every interface must have. Asking for more workers than
// there are queues runs one per queue, with a warning.
func (d *Dataplane) chooseQueues(cfg *config.Config) error {
	var asked int
	d.queues, asked = cfg.WorkerQueues(d.ifaces[0].Queues())
	if asked > len(d.queues) {
		d.log.Warn("fewer workers than [dataplane] workers asks: one per queue of the first interface",
			"asked", asked, "running", len(d.queues), "interface", cfg.Interfaces[0].Name, "queues", d.ifaces[0].Queues(),
			"fix", fmt.Sprintf("ethtool -L %s combined %d (on every interface), or workers = %d", cfg.Interfaces[0].Name, asked, len(d.queues)))
	}
	for i, iface := range d.ifaces {
		for _, q := range d.queues {
			if q >= iface.Queues() {
				return fmt.Errorf("interface %s has %d queues, queue %d requested: %w", cfg.Interfaces[i].Name, iface.Queues(), q, afxdp.ErrQueueMismatch)
			}
		}
	}
	return nil
}

// newNAT compiles the rules, with the host's addresses (the public ones
// added), into the NAT shared by every worker and makes it record its
// events into the event log.
func (d *Dataplane) newNAT(cfg *config.Config) (err error) {
	local, err := d.addrs.HostPrefixes()
	if err != nil {
		return err
	}
	if d.nat, err = nat.New(natRules(cfg, local), d.table, len(d.queues)); err != nil {
		return err
	}
	return d.nat.LogTo(d.events, d.start)
}

// addPublicAddrs puts the public addresses on the outside interfaces, so
// that the kernel answers ARP for them; the XDP program takes their IPv4
// traffic.
func (d *Dataplane) addPublicAddrs(cfg *config.Config) (err error) {
	d.addrs, err = afxdp.NewAddresses()
	if err != nil {
		return err
	}
	d.public = publicAddrs(cfg)
	for _, ic := range cfg.Interfaces {
		if ic.Role != config.RoleOutside {
			continue
		}
		for _, a := range d.public {
			if err := d.addrs.Add(ic.Name, a); err != nil {
				return fmt.Errorf("public address %v: %w", a, err)
			}
		}
	}
	return nil
}

// newALG creates the FTP ALG when [alg.ftp] enables it.
func (d *Dataplane) newALG(cfg *config.Config) (err error) {
	if !cfg.ALG.FTP.Enabled {
		return nil
	}
	d.ftp, err = alg.New(alg.Config{Enabled: true, AllowThirdParty: cfg.ALG.FTP.AllowThirdParty,
		MaxExpectations: cfg.ALG.FTP.MaxExpectations, Log: d.log}, d.table, d.nat)
	if err != nil {
		return err
	}
	d.nat.OnSessionEnd(d.ftp.SessionEnded)
	d.nat.OnExpectationUsed(d.ftp.ExpectationUsed)
	return nil
}

// openWorkers opens every worker's sockets (one per interface on its
// queue, sharing one UMEM) and builds its pipeline worker.
func (d *Dataplane) openWorkers(cfg *config.Config) error {
	d.router = pipeline.NewPolicy(routerConfig(cfg))
	for w, q := range d.queues {
		xw, err := afxdp.Open(d.ifaces, q, afxdp.Options{FrameSize: cfg.Dataplane.FrameSize, FramesPerQueue: cfg.Dataplane.FramesPerQueue})
		if err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
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
				return err
			}
			d.links = append(d.links, link)
		}
		d.workers = append(d.workers, pipeline.NewWorker(pipeline.Config{
			ID: w, Ports: specs, Waker: xw, Poll: pollMode(cfg.Dataplane.Poll), Batch: cfg.Dataplane.Batch,
			NAT: d.nat.Engine(w), Table: d.table, ALG: link, Clock: d.clock, DropTap: d.opts.DropTap,
			Frames: cfg.Dataplane.FramesPerQueue * len(d.ifaces), Router: d.router, OnBadChecksum: d.badChecksum,
		}))
	}
	return nil
}

// setFilters tells every XDP program which traffic is fastnat's.
func (d *Dataplane) setFilters(cfg *config.Config) error {
	f, err := filter(cfg, d.public, d.addrs)
	if err != nil {
		return err
	}
	for _, iface := range d.ifaces {
		if err := iface.SetFilter(f); err != nil {
			return err
		}
	}
	d.filter = f
	return nil
}

// startALG starts the FTP ALG's goroutine over every worker's link.
func (d *Dataplane) startALG(*config.Config) error {
	if d.ftp == nil {
		return nil
	}
	in, out := make([]*alg.Ring, len(d.links)), make([]*alg.Ring, len(d.links))
	for i, l := range d.links {
		in[i], out[i] = l.To, l.From
	}
	runner, err := alg.NewRunner(d.ftp, in, out, 64, d.clock)
	if err != nil {
		return err
	}
	for _, l := range d.links {
		l.Wake = runner.Wake
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); runner.Run(d.algStop) }()
	return nil
}

// startWorkers starts every worker on its own locked OS thread, pinned as
// [dataplane] cpus asks.
func (d *Dataplane) startWorkers(cfg *config.Config) error {
	for w, pw := range d.workers {
		cpu := -1
		if w < len(cfg.Dataplane.CPUs) {
			cpu = cfg.Dataplane.CPUs[w]
		}
		d.wg.Add(1)
		go d.routineWorker(w, cpu, pw)
	}
	return nil
}

// attach attaches every interface's XDP program: traffic starts flowing.
func (d *Dataplane) attach(*config.Config) error {
	for _, iface := range d.ifaces {
		if err := iface.Attach(); err != nil {
			return err
		}
	}
	return nil
}

// logServing logs one line per interface and queue served, with the XDP
// mode the kernel actually took and whether the socket copies, and a
// summary.
func (d *Dataplane) logServing(cfg *config.Config) {
	for w, q := range d.queues {
		umem := "copy"
		if d.xsks[w].ZeroCopy() {
			umem = "zero-copy"
		}
		for i, ic := range cfg.Interfaces {
			d.log.Info("serving", "interface", ic.Name, "queue", q, "worker", w, "role", ic.Role.String(),
				"xdp", d.ifaces[i].Mode().String(), "umem", umem, "mtu", d.ifaces[i].MTU())
		}
	}
	d.log.Info("fastnat running", "workers", len(d.workers), "flows", cfg.Flows.Max, "public", fmt.Sprint(d.public), "ftp_alg", cfg.ALG.FTP.Enabled)
}

// ErrStuck is returned by Alive when a worker has stopped making
// progress.
var ErrStuck = errors.New("worker stuck")

// Alive reports whether every worker's loop has run since the previous
// call (a worker beats every 64 polls and every sleep, busy or idle); the
// daemon's watchdog calls it at intervals of seconds. The first call only
// records.
func (d *Dataplane) Alive() error {
	d.beatsMu.Lock()
	defer d.beatsMu.Unlock()
	first := d.beats == nil
	if first {
		d.beats = make([]uint64, len(d.workers))
	}
	var stuck []string
	for w, pw := range d.workers {
		b := pw.Beats()
		if !first && b == d.beats[w] {
			stuck = append(stuck, fmt.Sprint(w))
		}
		d.beats[w] = b
	}
	if len(stuck) > 0 {
		return fmt.Errorf("%w: worker %s made no progress", ErrStuck, strings.Join(stuck, ", "))
	}
	return nil
}

// routineWorker runs one pipeline worker on a locked OS thread, pinned to
// cpu when cpu ≥ 0.
func (d *Dataplane) routineWorker(w, cpu int, pw *pipeline.Worker) {
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

// Close detaches the XDP programs first (traffic goes back to the kernel),
// then stops the workers and the ALG, logs each worker's totals and frees
// everything, the public addresses it added included. Calls after the
// first do nothing.
func (d *Dataplane) Close() error {
	if d.closed {
		return nil
	}
	d.closed = true
	var errs []error
	for _, iface := range d.ifaces {
		if err := iface.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.ifaces = nil
	d.halt()
	for i, w := range d.workers {
		d.log.Info("worker totals", append([]any{"worker", i}, counterAttrs(w.Counters())...)...)
	}
	d.teardown()
	return errors.Join(errs...)
}

// halt stops the workers and the ALG and waits for them.
func (d *Dataplane) halt() {
	for _, w := range d.workers {
		w.Stop()
	}
	select {
	case <-d.algStop:
	default:
		close(d.algStop)
	}
	d.wg.Wait()
}

// teardown frees what is left once nothing runs (halt): sockets,
// interfaces, added addresses, the event log, the flow table's memory.
func (d *Dataplane) teardown() {
	d.closeEvents()
	if d.table != nil {
		d.table.Close()
	}
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
	for i := range c.Event {
		if n := c.Event[i].Load(); n > 0 {
			a = append(a, pipeline.Event(i).String(), n)
		}
	}
	return a
}
