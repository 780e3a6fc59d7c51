package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/control"
)

// ErrReload wraps a reload that failed while applying; everything it had
// changed was put back.
var ErrReload = errors.New("reload failed; the running configuration is unchanged")

// restartKeys are the configuration keys that size or bind what New built
// (sockets, UMEM, threads, the table, listeners) and so wait for a
// restart. keep reports whether next differs from running in the key and
// puts running's value into next, so that next describes what runs. A new
// key of that kind is one line here.
var restartKeys = []struct {
	key  string
	keep func(next, running *config.Config) (run, file string, changed bool)
}{
	{"dataplane.workers", func(n, r *config.Config) (string, string, bool) {
		return keep(&n.Dataplane.Workers, r.Dataplane.Workers)
	}},
	{"dataplane.cpus", func(n, r *config.Config) (string, string, bool) {
		return keepSlice(&n.Dataplane.CPUs, r.Dataplane.CPUs)
	}},
	{"dataplane.poll", func(n, r *config.Config) (string, string, bool) { return keep(&n.Dataplane.Poll, r.Dataplane.Poll) }},
	{"dataplane.batch", func(n, r *config.Config) (string, string, bool) { return keep(&n.Dataplane.Batch, r.Dataplane.Batch) }},
	{"dataplane.frames_per_queue", func(n, r *config.Config) (string, string, bool) {
		return keep(&n.Dataplane.FramesPerQueue, r.Dataplane.FramesPerQueue)
	}},
	{"dataplane.frame_size", func(n, r *config.Config) (string, string, bool) {
		return keep(&n.Dataplane.FrameSize, r.Dataplane.FrameSize)
	}},
	{"dataplane.xdp_mode", func(n, r *config.Config) (string, string, bool) {
		return keep(&n.Dataplane.XDPMode, r.Dataplane.XDPMode)
	}},
	{"interface", keepInterfaces},
	{"flows.max", func(n, r *config.Config) (string, string, bool) { return keep(&n.Flows.Max, r.Flows.Max) }},
	{"alg.ftp.enabled", func(n, r *config.Config) (string, string, bool) { return keep(&n.ALG.FTP.Enabled, r.ALG.FTP.Enabled) }},
	{"metrics.listen", func(n, r *config.Config) (string, string, bool) { return keep(&n.Metrics.Listen, r.Metrics.Listen) }},
	{"control.socket", func(n, r *config.Config) (string, string, bool) { return keep(&n.Control.Socket, r.Control.Socket) }},
	{"control.group", func(n, r *config.Config) (string, string, bool) { return keep(&n.Control.Group, r.Control.Group) }},
	{"logging", keepLogging},
}

// keep puts run into *next and reports both values and whether they
// differed.
func keep[T comparable](next *T, run T) (string, string, bool) {
	file := *next
	*next = run
	return show(run), show(file), file != run
}

// keepSlice is keep for slices (replaced, never written through).
func keepSlice[T comparable](next *[]T, run []T) (string, string, bool) {
	file := *next
	*next = run
	return show(run), show(file), !slices.Equal(file, run)
}

// show formats a value for a Pending: strings quoted, empty as "".
func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case fmt.Stringer:
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v)
}

// keepInterfaces compares the [[interface]] tables by what they configure
// (not their lines).
func keepInterfaces(next, run *config.Config) (string, string, bool) {
	describe := func(ifs []config.Interface) string {
		var b strings.Builder
		for i, it := range ifs {
			if i > 0 {
				b.WriteString("; ")
			}
			q := "all"
			if it.Queues != nil {
				q = fmt.Sprint(it.Queues)
			}
			fmt.Fprintf(&b, "%s %s queues %s", it.Name, it.Role, q)
			if it.Gateway.IsValid() {
				fmt.Fprintf(&b, " gateway %s", it.Gateway)
			}
		}
		return b.String()
	}
	r, f := describe(run.Interfaces), describe(next.Interfaces)
	next.Interfaces = run.Interfaces
	return r, f, r != f
}

// effective is cfg as the running dataplane can apply it: every restart
// key keeps its running value, and the keys that differ are listed.
func effective(cfg, running *config.Config) (*config.Config, []control.Pending) {
	eff := *cfg
	var pending []control.Pending
	for _, k := range restartKeys {
		if run, file, changed := k.keep(&eff, running); changed {
			pending = append(pending, control.Pending{Key: k.key, Running: run, File: file})
		}
	}
	return &eff, pending
}

// plan is everything a configuration changes in a running dataplane,
// computed and checked before anything is touched.
type plan struct {
	cfg          *config.Config // effective: what runs once committed
	pending      []control.Pending
	install      func() // the new NAT rules
	restoreRules func() // the running NAT rules, for a rollback
	public       []netip.Addr
	filter       afxdp.Filter
	add, remove  []netip.Addr // public addresses new to the file, gone from it
}

// prepare validates and compiles everything cfg needs: NAT rules, public
// addresses and their diff, the XDP filter (checked against every
// interface). It changes nothing.
func (d *Dataplane) prepare(cfg *config.Config) (*plan, error) {
	running := d.Config()
	eff, pending := effective(cfg, running)
	p := &plan{cfg: eff, pending: pending}
	local, err := d.addrs.HostPrefixes()
	if err != nil {
		return nil, err
	}
	if p.install, err = d.nat.Prepare(natRules(eff, local)); err != nil {
		return nil, err
	}
	if p.restoreRules, err = d.nat.Prepare(natRules(running, local)); err != nil {
		return nil, err
	}
	p.public = publicAddrs(eff)
	if p.filter, err = filter(eff, p.public, d.addrs); err != nil {
		return nil, err
	}
	for _, iface := range d.ifaces {
		if err := iface.CheckFilter(p.filter); err != nil {
			return nil, err
		}
	}
	for _, a := range p.public {
		if !slices.Contains(d.public, a) {
			p.add = append(p.add, a)
		}
	}
	for _, a := range d.public {
		if !slices.Contains(p.public, a) {
			p.remove = append(p.remove, a)
		}
	}
	return p, nil
}

// Reload applies cfg to the running dataplane, all or nothing: it
// prepares everything first (a configuration that cannot apply is an
// error and changes nothing), then commits in steps that each undo
// themselves if a later one fails (ErrReload). New rules, port mappings,
// timeouts, public addresses and ALG policy apply to new sessions;
// existing sessions keep their translation, but those on a public address
// removed from the file no longer receive their replies. Keys that only a
// restart can apply keep their running values and are returned.
func (d *Dataplane) Reload(cfg *config.Config) ([]control.Pending, error) {
	p, err := d.prepare(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.commit(p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrReload, err)
	}
	return p.pending, nil
}

// commit applies a prepared plan. Each fallible step registers its undo;
// if a step fails, the undos run newest first and the dataplane is as it
// was.
func (d *Dataplane) commit(p *plan) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	outside := d.outsideNames()
	step := func(name string) error {
		if d.commitFault != nil {
			return d.commitFault(name)
		}
		return nil
	}
	// New public addresses first, so that the kernel answers ARP for them
	// before the filter takes their traffic.
	if err := step("add addresses"); err != nil {
		return err
	}
	for _, name := range outside {
		for _, a := range p.add {
			if err := d.addrs.Add(name, a); err != nil {
				return fmt.Errorf("public address %v: %w", a, err)
			}
			undo = append(undo, func() { d.logUndo(d.addrs.Remove(name, a)) })
		}
	}
	if err := step("set filters"); err != nil {
		return err
	}
	old := d.filter
	for _, iface := range d.ifaces {
		undo = append(undo, func() { d.logUndo(iface.SetFilter(old)) })
		if err := iface.SetFilter(p.filter); err != nil {
			return err
		}
	}
	if err := step("install rules"); err != nil {
		return err
	}
	p.install()
	undo = append(undo, p.restoreRules)
	if err := step("remove addresses"); err != nil {
		return err
	}
	for _, name := range outside {
		for _, a := range p.remove {
			if err := d.addrs.Remove(name, a); err != nil {
				return fmt.Errorf("public address %v: %w", a, err)
			}
			undo = append(undo, func() { d.logUndo(d.addrs.Add(name, a)) })
		}
	}
	// Past the last step that can fail.
	d.router.Set(routerConfig(p.cfg))
	if d.ftp != nil {
		d.ftp.SetPolicy(alg.Policy{AllowThirdParty: p.cfg.ALG.FTP.AllowThirdParty, MaxExpectations: p.cfg.ALG.FTP.MaxExpectations})
	}
	d.public, d.filter = p.public, p.filter
	d.cfg.Store(p.cfg)
	d.loaded.Store(time.Now().UnixNano())
	return nil
}

// logUndo logs an undo step that failed: the rollback goes on with the
// others.
func (d *Dataplane) logUndo(err error) {
	if err != nil {
		d.log.Error("reload rollback", "err", err)
	}
}

// outsideNames lists the running outside interfaces.
func (d *Dataplane) outsideNames() []string {
	var out []string
	for _, ic := range d.Config().Interfaces {
		if ic.Role == config.RoleOutside {
			out = append(out, ic.Name)
		}
	}
	return out
}
