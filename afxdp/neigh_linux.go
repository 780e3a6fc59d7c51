package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Resolver timing.
const (
	resyncEvery = time.Second           // full re-read of neighbours, addresses and routes
	retryEvery  = time.Second           // at most one resolution request per address
	recvTimeout = 10 * time.Millisecond // how long a miss waits to be picked up, at most
)

// resyncInterval is resyncEvery; a test lengthens it to see a kick, not a
// resync, wake a sleeping resolver.
var resyncInterval = resyncEvery

// nativeEndian is the byte order of netlink headers and attributes.
var nativeEndian = binary.NativeEndian

// usableStates are the neighbour states whose link-layer address the kernel
// itself would send to.
const usableStates = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY |
	netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP

// resolver keeps one interface's neighTable in step with the kernel's
// neighbour table and resolves misses. It runs one goroutine
// (RoutineResolve) that listens for neighbour and address changes on a
// netlink socket, sweeps the table's miss requests, and re-reads
// everything every resyncEvery.
//
// It sleeps in the Go runtime's poller (waiter) on an epoll instance over
// the netlink socket and an eventfd, so that an idle resolver holds no P
// and costs no wakeups: after recvTimeout without an event or a miss it
// tells the table it sleeps (neighTable.asleep) and sleeps until the next
// resync, and the first miss after that writes the eventfd (kick). A miss
// therefore waits at most recvTimeout, as when it swept every recvTimeout,
// and kicks come at most once per recvTimeout.
//
// A miss is resolved by the kernel itself: an RTM_NEWNEIGH request with
// NTF_USE ("ip neigh replace ADDR dev IF use") makes the kernel create an
// INCOMPLETE entry and send an ARP request from the host stack, exactly as
// if a local packet were waiting, without sending any payload. The answer
// arrives as a neighbour event. The same request on a STALE entry makes the
// kernel re-probe it by unicast, which keeps in use the entries whose
// traffic the kernel never sees because fastnat forwards it.
type resolver struct {
	t        *neighTable
	h        *netlink.Handle
	ifindex  int
	gateway  uint32   // configured; 0: from the default route
	nl       int      // the netlink socket
	kickFD   int      // the eventfd a miss writes while the resolver sleeps
	kick     *os.File // the same, for the workers' writes (safe after Close)
	wake     *waiter  // epoll over nl and kickFD
	events   [2]unix.EpollEvent
	got      int   // bytes the last read took, or -1
	err      error // its error
	buf      []byte
	done     chan struct{}
	finished chan struct{}

	macs     map[uint32][6]byte
	onLink   []prefix4
	addrs    []uint32
	mtu      int
	gw       uint32
	tried    map[uint32]time.Time
	lastSync time.Time
	every    time.Duration // resyncInterval
}

func startResolver(t *neighTable, h *netlink.Handle, ifindex int, gateway netip.Addr) (*resolver, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open neighbour event socket: %w", sysErr(err))
	}
	groups := uint32(1<<(unix.RTNLGRP_NEIGH-1) | 1<<(unix.RTNLGRP_IPV4_IFADDR-1) | 1<<(unix.RTNLGRP_LINK-1))
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("subscribe to neighbour events: %w", sysErr(err))
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	r := &resolver{
		t: t, h: h, ifindex: ifindex, nl: fd, kickFD: -1, buf: make([]byte, 1<<16), every: resyncInterval,
		done: make(chan struct{}), finished: make(chan struct{}),
		macs: map[uint32][6]byte{}, tried: map[uint32]time.Time{},
	}
	if err := r.openWake(); err != nil {
		r.close()
		return nil, err
	}
	if gateway.IsValid() {
		r.gateway = addr4(gateway)
	}
	if err := r.resync(time.Now()); err != nil {
		r.close()
		return nil, err
	}
	t.kick = r.wakeUp
	go r.RoutineResolve()
	return r, nil
}

// openWake makes the eventfd and the epoll instance the resolver sleeps on.
func (r *resolver) openWake() error {
	k, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", sysErr(err))
	}
	r.kickFD, r.kick = k, os.NewFile(uintptr(k), "neighbour kick")
	if err := unix.SetNonblock(r.nl, true); err != nil {
		return fmt.Errorf("neighbour event socket: %w", err)
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll_create1: %w", sysErr(err))
	}
	for _, fd := range []int{r.nl, k} {
		if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			unix.Close(ep)
			return fmt.Errorf("epoll_ctl: %w", sysErr(err))
		}
	}
	r.wake, err = newWaiter(ep, "neighbour events", r.read)
	return err
}

// wakeUp writes the eventfd: a miss arrived while the resolver sleeps.
// Workers call it (through neighTable.kick), also after stop, when the
// write fails harmlessly on the closed file.
func (r *resolver) wakeUp() {
	var one [8]byte
	one[0] = 1 // eventfd adds the 8 bytes as a number; any non-zero one wakes
	_, _ = r.kick.Write(one[:])
}

// close releases the descriptors; the goroutine has stopped.
func (r *resolver) close() {
	if r.wake != nil {
		r.wake.Close()
	}
	if r.kick != nil {
		r.kick.Close()
	}
	unix.Close(r.nl)
}

// sleep waits for a neighbour event or, after recvTimeout with neither an
// event nor a miss, until the next resync or a miss's kick.
func (r *resolver) sleep() {
	r.got, r.err = -1, nil
	if r.wake.wait(recvTimeout) || r.t.hasRequests() {
		return
	}
	r.t.asleep.Store(true)
	// A miss stored before asleep was seen: the table holds it now.
	if !r.t.hasRequests() {
		r.wake.wait(max(time.Until(r.lastSync.Add(r.every)), 0))
	}
	r.t.asleep.Store(false)
}

// RoutineResolve is the resolver's goroutine; it returns after stop.
func (r *resolver) RoutineResolve() {
	defer close(r.finished)
	for {
		select {
		case <-r.done:
			return
		default:
		}
		resync, dirty := false, false
		r.sleep()
		switch err := r.err; {
		case r.got >= 0:
			resync, dirty = r.handle(r.buf[:r.got])
		case err == nil: // a kick, or the time passed
		case errors.Is(err, unix.ENOBUFS):
			resync = true // events were lost
		default:
			time.Sleep(recvTimeout) // a broken socket must not spin; resync still runs
		}
		now := time.Now()
		r.t.takeRequests(func(a uint32) { r.resolve(a, now) })
		if resync || now.Sub(r.lastSync) >= r.every {
			_ = r.resync(now) // a failed dump keeps the last good view
		} else if dirty {
			r.publish()
		}
	}
}

// read is the waiter's readiness test: it takes one message batch off the
// netlink socket for RoutineResolve, or a kick; false while there is
// neither.
func (r *resolver) read(ep uintptr) bool {
	_, _ = unix.EpollWait(int(ep), r.events[:], 0) // keeps the epoll instance's ready list short
	n, _, err := unix.Recvfrom(r.nl, r.buf, unix.MSG_DONTWAIT)
	switch {
	case err == nil:
		r.got = n
		return true
	case !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR):
		r.err = err
		return true
	}
	var v [8]byte
	k, _ := unix.Read(r.kickFD, v[:])
	return k == len(v)
}

// handle applies a batch of netlink events; it reports whether a full
// resync is due (addresses changed) and whether the neighbours changed.
func (r *resolver) handle(b []byte) (resync, dirty bool) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return true, false
	}
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWADDR, unix.RTM_DELADDR:
			resync = true
		case unix.RTM_NEWLINK:
			// The MTU (or anything else of the link) may have changed.
			if len(m.Data) >= unix.SizeofIfInfomsg && int(int32(nativeEndian.Uint32(m.Data[4:]))) == r.ifindex {
				resync = true
			}
		case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
			ev, ok := parseNeigh(m.Data)
			if ok && r.apply(ev, m.Header.Type == unix.RTM_DELNEIGH) {
				dirty = true
			}
		}
	}
	return resync, dirty
}

// neighEvent is the part of a neighbour message the resolver uses.
type neighEvent struct {
	ifindex int
	state   int
	addr    uint32 // 0: not IPv4
	mac     [6]byte
	hasMAC  bool
}

// parseNeigh decodes the body of an RTM_NEWNEIGH or RTM_DELNEIGH message:
// struct ndmsg, then route attributes, of which NDA_DST and NDA_LLADDR
// matter. Malformed input yields ok = false, never a panic (the netlink
// package's own decoder panics on a truncated attribute).
func parseNeigh(b []byte) (ev neighEvent, ok bool) {
	if len(b) < unix.SizeofNdMsg {
		return ev, false
	}
	family := b[0]
	ev.ifindex = int(nativeEndian.Uint32(b[4:]))
	ev.state = int(nativeEndian.Uint16(b[8:]))
	for b = b[unix.SizeofNdMsg:]; len(b) >= unix.SizeofRtAttr; {
		l := int(nativeEndian.Uint16(b))
		typ := nativeEndian.Uint16(b[2:])
		if l < unix.SizeofRtAttr || l > len(b) {
			return ev, false
		}
		v := b[unix.SizeofRtAttr:l]
		switch typ {
		case unix.NDA_DST:
			if family == unix.AF_INET && len(v) == 4 {
				ev.addr = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
			}
		case unix.NDA_LLADDR:
			if len(v) == 6 {
				copy(ev.mac[:], v)
				ev.hasMAC = true
			}
		}
		next := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if next >= len(b) {
			break
		}
		b = b[next:]
	}
	return ev, true
}

// apply records one neighbour; it reports whether the view changed.
func (r *resolver) apply(ev neighEvent, deleted bool) bool {
	if ev.ifindex != r.ifindex || ev.addr == 0 {
		return false
	}
	old, had := r.macs[ev.addr]
	if deleted || ev.state&usableStates == 0 || !ev.hasMAC {
		delete(r.macs, ev.addr)
		return had
	}
	r.macs[ev.addr] = ev.mac
	return !had || old != ev.mac
}

// neighEventOf converts a dumped neighbour.
func neighEventOf(n *netlink.Neigh) neighEvent {
	ev := neighEvent{ifindex: n.LinkIndex, state: n.State}
	if ip := n.IP.To4(); ip != nil {
		ev.addr = uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	}
	if len(n.HardwareAddr) == 6 {
		copy(ev.mac[:], n.HardwareAddr)
		ev.hasMAC = true
	}
	return ev
}

// resync re-reads the interface's neighbours, prefixes and default route.
func (r *resolver) resync(now time.Time) error {
	r.lastSync = now
	neighs, err := r.h.NeighList(r.ifindex, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list neighbours: %w", sysErr(err))
	}
	macs := make(map[uint32][6]byte, len(neighs))
	r.macs = macs
	for i := range neighs {
		ev := neighEventOf(&neighs[i])
		r.apply(ev, false)
		if ev.state&netlink.NUD_STALE != 0 && ev.addr != 0 {
			r.resolve(ev.addr, now)
		}
	}
	l, err := r.h.LinkByIndex(r.ifindex)
	if err != nil {
		return fmt.Errorf("interface %d: %w", r.ifindex, ErrNoInterface)
	}
	addrs, err := r.h.AddrList(l, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("list addresses: %w", sysErr(err))
	}
	r.mtu = l.Attrs().MTU
	r.onLink, r.addrs = r.onLink[:0:0], r.addrs[:0:0]
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			r.onLink = append(r.onLink, p)
			r.addrs = append(r.addrs, addr4(netip.AddrFrom4([4]byte(a.IPNet.IP.To4()))))
		}
	}
	r.gw = r.gateway
	if r.gw == 0 {
		routes, err := r.h.RouteList(l, netlink.FAMILY_V4)
		if err == nil || errors.Is(err, netlink.ErrDumpInterrupted) {
			for _, rt := range routes {
				if isDefault(rt.Dst) && rt.Gw.To4() != nil {
					r.gw = addr4(netip.AddrFrom4([4]byte(rt.Gw.To4())))
					break
				}
			}
		}
	}
	for a, t := range r.tried {
		if now.Sub(t) > 10*retryEvery {
			delete(r.tried, a)
		}
	}
	r.publish()
	return nil
}

func prefixOf(n *net.IPNet) (prefix4, bool) {
	if n == nil || n.IP.To4() == nil {
		return prefix4{}, false
	}
	ones, bits := n.Mask.Size()
	if bits != 32 {
		return prefix4{}, false
	}
	return newPrefix4(netip.PrefixFrom(netip.AddrFrom4([4]byte(n.IP.To4())), ones)), true
}

func isDefault(dst *net.IPNet) bool {
	if dst == nil {
		return true
	}
	ones, _ := dst.Mask.Size()
	return ones == 0
}

// publish hands the workers a fresh snapshot.
func (r *resolver) publish() {
	macs := make(map[uint32][6]byte, len(r.macs))
	for a, m := range r.macs {
		macs[a] = m
	}
	mtu := r.mtu
	if mtu <= 0 {
		mtu = defaultMTU
	}
	r.t.snap.Store(&neighSnapshot{
		onLink:  append([]prefix4(nil), r.onLink...),
		addrs:   append([]uint32(nil), r.addrs...),
		gateway: r.gw,
		macs:    macs,
		mtu:     mtu,
	})
}

// resolve asks the kernel to resolve (or re-probe) a, once per retryEvery.
func (r *resolver) resolve(a uint32, now time.Time) {
	if t, ok := r.tried[a]; ok && now.Sub(t) < retryEvery {
		return
	}
	r.tried[a] = now
	b := netipAddr(a).As4()
	_ = r.h.NeighSet(&netlink.Neigh{
		LinkIndex: r.ifindex,
		Family:    netlink.FAMILY_V4,
		IP:        net.IP(b[:]),
		State:     netlink.NUD_NONE,
		Flags:     netlink.NTF_USE,
	})
}

// stop ends the goroutine and closes the socket.
func (r *resolver) stop() {
	close(r.done)
	r.wakeUp()
	<-r.finished
	r.close()
}
