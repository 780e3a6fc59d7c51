package afxdp

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/fastnat/fastnat/pipeline"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vethAutoMode is what ModeAuto means on veth. Both modes copy; per CPU
// second they move the same number of frames within a few percent
// (TestMeasureRings, see the package doc), but generic mode on veth hands
// every packet to the program as queue 0, so only one worker would ever
// receive; native mode keeps the queue the sender used.
const vethAutoMode = ModeNative

// Capacity of the filter maps.
const (
	maxPublic = 4096
	maxInside = 4096
	maxLocal  = 1024
)

// IFLA_XDP_ATTACHED values.
const (
	xdpAttachedDrv = 1
	xdpAttachedSkb = 2
	xdpAttachedHw  = 3
)

// Interface is one network interface as fastnat uses it: its XDP program
// and maps, its neighbour cache, and its identity. One Interface is shared
// by all workers; each worker opens one socket on it (Open). Its methods
// are control-plane calls, safe for concurrent use.
//
// Load, Attach and Open work in the network namespace of the calling OS
// thread, as the kernel resolves interface indices there.
type Interface struct {
	name   string
	role   Role
	index  int
	mac    [6]byte
	queues int

	mu     sync.Mutex
	mode   Mode // as configured; ModeAuto resolved for veth at Load
	h      *netlink.Handle
	prog   *ebpf.Program
	xsks   *ebpf.Map
	public *ebpf.Map
	inside *ebpf.Map
	local  *ebpf.Map
	link   link.Link
	neigh  *neighTable
	res    *resolver
	closed bool
}

// Load prepares interface spec.Name for fastnat: it creates the XDP program
// for the interface's role and its maps (the socket map and an empty
// filter), and starts the neighbour resolver. Nothing reaches fastnat until
// SetFilter fills the filter and Attach attaches the program; open the
// workers (Open) in between, so that no packet finds a queue without a
// socket.
func Load(spec IfaceSpec) (_ *Interface, err error) {
	if spec.Role != Inside && spec.Role != Outside {
		return nil, fmt.Errorf("interface %s: role %v: %w", spec.Name, spec.Role, ErrInvalidOptions)
	}
	if spec.Mode > ModeGeneric {
		return nil, fmt.Errorf("interface %s: %v: %w", spec.Name, spec.Mode, ErrInvalidOptions)
	}
	if spec.Gateway.IsValid() && !spec.Gateway.Unmap().Is4() {
		return nil, fmt.Errorf("interface %s: gateway %v is not IPv4: %w", spec.Name, spec.Gateway, ErrInvalidOptions)
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("interface %s: open netlink: %w", spec.Name, sysErr(err))
	}
	i := &Interface{name: spec.Name, role: spec.Role, mode: spec.Mode, h: h}
	defer func() {
		if err != nil {
			i.Close()
		}
	}()
	l, err := linkByName(h, spec.Name)
	if err != nil {
		return nil, err
	}
	i.index = l.Attrs().Index
	copy(i.mac[:], l.Attrs().HardwareAddr)
	if i.queues, err = rxQueues(spec.Name, l); err != nil {
		return nil, err
	}
	if i.mode == ModeAuto && l.Type() == "veth" {
		i.mode = vethAutoMode
	}
	_ = rlimit.RemoveMemlock() // only matters before Linux 5.11

	if i.xsks, err = newMap("fastnat_xsks", ebpf.XSKMap, 4, 4, uint32(i.queues), 0); err != nil {
		return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
	}
	pm := programMaps{xsks: i.xsks.FD(), public: -1, inside: -1, local: -1}
	switch spec.Role {
	case Outside:
		if i.public, err = newMap("fastnat_public", ebpf.Hash, 4, 1, maxPublic, 0); err != nil {
			return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
		}
		pm.public = i.public.FD()
	case Inside:
		if i.inside, err = newMap("fastnat_inside", ebpf.LPMTrie, 8, 1, maxInside, unix.BPF_F_NO_PREALLOC); err != nil {
			return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
		}
		if i.local, err = newMap("fastnat_local", ebpf.Hash, 4, 1, maxLocal, 0); err != nil {
			return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
		}
		pm.inside, pm.local = i.inside.FD(), i.local.FD()
	}
	i.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         ProgramName,
		Type:         ebpf.XDP,
		Instructions: programInstructions(spec.Role, pm),
		License:      "Dual MIT/GPL",
	})
	if err != nil {
		return nil, fmt.Errorf("interface %s: load XDP program: %w", spec.Name, sysErr(err))
	}
	i.neigh = newNeighTable()
	if i.res, err = startResolver(i.neigh, h, i.index, spec.Gateway.Unmap()); err != nil {
		return nil, fmt.Errorf("interface %s: %w", spec.Name, err)
	}
	return i, nil
}

func newMap(name string, typ ebpf.MapType, key, value, max, flags uint32) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: name, Type: typ, KeySize: key, ValueSize: value,
		MaxEntries: max, Flags: flags})
	if err != nil {
		return nil, fmt.Errorf("create map %s: %w", name, sysErr(err))
	}
	return m, nil
}

func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("interface %s: %w", name, ErrNoInterface)
		}
		return nil, fmt.Errorf("interface %s: %w", name, sysErr(err))
	}
	return l, nil
}

// Name returns the interface name.
func (i *Interface) Name() string { return i.name }

// Index returns the interface index.
func (i *Interface) Index() int { return i.index }

// Role returns the interface's role.
func (i *Interface) Role() Role { return i.role }

// MAC returns the interface's hardware address.
func (i *Interface) MAC() [6]byte { return i.mac }

// Queues returns the number of receive queues (ethtool channels) the
// interface had at Load.
func (i *Interface) Queues() int { return i.queues }

// Mode returns the XDP mode: as configured, with ModeAuto resolved once
// known (at Load for veth, at Attach otherwise).
func (i *Interface) Mode() Mode {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.mode
}

// NextHop is the interface's next-hop lookup, as every Port on it answers
// it; see pipeline.Port.NextHop.
func (i *Interface) NextHop(addr uint32) pipeline.Hop { return i.neigh.nextHop(addr) }

// MTU returns the interface's MTU, as the kernel last reported it (the
// resolver follows changes).
func (i *Interface) MTU() int { return i.neigh.mtu() }

// Attach attaches the XDP program in the configured mode through a BPF
// link, so that the kernel detaches it when fastnat exits, however it
// exits. A stale fastnat program attached the old way (netlink, which
// outlives its process) is replaced; any other program is an ErrBusy.
func (i *Interface) Attach() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return ErrClosed
	}
	if i.link != nil {
		return nil
	}
	if err := i.removeStale(); err != nil {
		return err
	}
	try := func(flags link.XDPAttachFlags) error {
		l, err := link.AttachXDP(link.XDPOptions{Program: i.prog, Interface: i.index, Flags: flags})
		if err != nil {
			return err
		}
		i.link = l
		return nil
	}
	var err error
	switch i.mode {
	case ModeNative:
		err = try(link.XDPDriverMode)
	case ModeGeneric:
		err = try(link.XDPGenericMode)
	default:
		if err = try(link.XDPDriverMode); err == nil {
			i.mode = ModeNative
		} else if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			if err = try(link.XDPGenericMode); err == nil {
				i.mode = ModeGeneric
			}
		}
	}
	if err != nil {
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("interface %s: attach XDP program (%v): %w: %w", i.name, i.mode, ErrBusy, err)
		}
		return fmt.Errorf("interface %s: attach XDP program (%v): %w", i.name, i.mode, sysErr(err))
	}
	return nil
}

// removeStale detaches a fastnat program left attached through netlink.
func (i *Interface) removeStale() error {
	l, err := i.h.LinkByIndex(i.index)
	if err != nil {
		return fmt.Errorf("interface %s: %w", i.name, ErrNoInterface)
	}
	x := l.Attrs().Xdp
	if x == nil || !x.Attached || x.ProgId == 0 {
		return nil
	}
	name := "?"
	if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId)); err == nil {
		if info, err := p.Info(); err == nil {
			name = info.Name
		}
		p.Close()
	}
	if name != ProgramName {
		return fmt.Errorf("interface %s runs XDP program %q (id %d); remove it first (ip link set dev %s xdp off): %w",
			i.name, name, x.ProgId, i.name, ErrBusy)
	}
	var flags int
	switch x.AttachMode {
	case xdpAttachedDrv:
		flags = unix.XDP_FLAGS_DRV_MODE
	case xdpAttachedSkb:
		flags = unix.XDP_FLAGS_SKB_MODE
	case xdpAttachedHw:
		flags = unix.XDP_FLAGS_HW_MODE
	}
	if err := netlink.LinkSetXdpFdWithFlags(l, -1, flags); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("interface %s: XDP program %d is held by a running fastnat: %w", i.name, x.ProgId, ErrBusy)
		}
		return fmt.Errorf("interface %s: detach stale XDP program %d: %w", i.name, x.ProgId, sysErr(err))
	}
	return nil
}

// SetFilter replaces the sets the XDP program steers by. New entries are
// added before old ones are removed, so an address in both the old and the
// new filter never passes to the kernel in between. Local addresses that
// are also Public are left out: traffic from inside to a public address is
// NAT traffic (hairpin), not traffic for the host. A filter CheckFilter
// refuses changes nothing.
func (i *Interface) SetFilter(f Filter) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return ErrClosed
	}
	sets, err := i.filterSets(f)
	if err != nil {
		return err
	}
	switch i.role {
	case Outside:
		if err := syncMap(i.public, sets.public); err != nil {
			return fmt.Errorf("interface %s: update public addresses: %w", i.name, err)
		}
	case Inside:
		// Local first: a host address must never be redirected, even for
		// the moment between two updates.
		if err := syncMap(i.local, sets.local); err != nil {
			return fmt.Errorf("interface %s: update local addresses: %w", i.name, err)
		}
		if err := syncMap(i.inside, sets.inside); err != nil {
			return fmt.Errorf("interface %s: update inside prefixes: %w", i.name, err)
		}
	}
	return nil
}

// CheckFilter reports whether SetFilter would accept f (IPv4 only, within
// the maps' capacity), without changing anything: a reload checks every
// interface before it touches any.
func (i *Interface) CheckFilter(f Filter) error {
	_, err := i.filterSets(f)
	return err
}

// filterSets are the map contents of a Filter for the interface's role.
type filterSets struct {
	public map[[4]byte]bool
	inside map[lpmKey]bool
	local  map[[4]byte]bool
}

// filterSets validates f for the interface's role and converts it to map
// keys.
func (i *Interface) filterSets(f Filter) (filterSets, error) {
	sets := filterSets{public: map[[4]byte]bool{}, inside: map[lpmKey]bool{}, local: map[[4]byte]bool{}}
	for _, a := range f.Public {
		a = a.Unmap()
		if !a.Is4() {
			return sets, fmt.Errorf("interface %s: public address %v is not IPv4: %w", i.name, a, ErrInvalidOptions)
		}
		sets.public[a.As4()] = true
	}
	switch i.role {
	case Outside:
		if len(sets.public) > maxPublic {
			return sets, fmt.Errorf("interface %s: %d public addresses, at most %d: %w", i.name, len(sets.public), maxPublic, ErrInvalidOptions)
		}
	case Inside:
		for _, p := range f.Inside {
			if !p.IsValid() || !p.Addr().Unmap().Is4() {
				return sets, fmt.Errorf("interface %s: inside prefix %v is not IPv4: %w", i.name, p, ErrInvalidOptions)
			}
			bits := p.Bits()
			if p.Addr().Is4In6() {
				bits -= 96
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits).Masked()
			sets.inside[lpmKey{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As4()}] = true
		}
		for _, a := range f.Local {
			a = a.Unmap()
			if !a.Is4() {
				continue // the filter only looks at IPv4
			}
			if !sets.public[a.As4()] {
				sets.local[a.As4()] = true
			}
		}
		if len(sets.inside) > maxInside || len(sets.local) > maxLocal {
			return sets, fmt.Errorf("interface %s: %d inside prefixes (at most %d), %d local addresses (at most %d): %w",
				i.name, len(sets.inside), maxInside, len(sets.local), maxLocal, ErrInvalidOptions)
		}
	}
	return sets, nil
}

// lpmKey is the key of the inside-prefix LPM trie (struct bpf_lpm_trie_key
// with a 4-byte address).
type lpmKey struct {
	Prefixlen uint32
	Addr      [4]byte
}

// syncMap makes m hold exactly the keys of want (each with value 1).
func syncMap[K comparable](m *ebpf.Map, want map[K]bool) error {
	for k := range want {
		if err := m.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("put %v: %w", k, err)
		}
	}
	var stale []K
	var k K
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("list entries: %w", err)
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete %v: %w", k, err)
		}
	}
	return nil
}

// register points queue's slot of the socket map at socket fd.
func (i *Interface) register(queue, fd int) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return ErrClosed
	}
	if err := i.xsks.Put(uint32(queue), uint32(fd)); err != nil {
		return fmt.Errorf("interface %s: register socket for queue %d: %w", i.name, queue, err)
	}
	return nil
}

// unregister empties queue's slot of the socket map.
func (i *Interface) unregister(queue int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.xsks != nil {
		_ = i.xsks.Delete(uint32(queue))
	}
}

// Close detaches the program, stops the resolver and frees the maps.
// Close the workers first.
func (i *Interface) Close() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		return nil
	}
	i.closed = true
	var errs []error
	if i.link != nil {
		if err := i.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("interface %s: detach XDP program: %w", i.name, err))
		}
		i.link = nil
	}
	if i.res != nil {
		i.res.stop()
	}
	if i.prog != nil {
		if err := i.prog.Close(); err != nil {
			errs = append(errs, fmt.Errorf("interface %s: close program: %w", i.name, err))
		}
	}
	for _, m := range []*ebpf.Map{i.xsks, i.public, i.inside, i.local} {
		if m != nil {
			if err := m.Close(); err != nil {
				errs = append(errs, fmt.Errorf("interface %s: close map: %w", i.name, err))
			}
		}
	}
	if i.h != nil {
		i.h.Close()
	}
	return errors.Join(errs...)
}
