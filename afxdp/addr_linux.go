package afxdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// labelSuffix marks the addresses fastnat adds ("eth1:fn"), so that a
// restart after a crash recognises and adopts them.
const labelSuffix = ":fn"

// Addresses adds the NAT's public addresses to its outside interfaces, so
// that the kernel answers ARP for them, and removes on Close exactly the
// ones it added (or adopted from a crashed run, by label). Addresses an
// operator configured stay. Safe for concurrent use.
type Addresses struct {
	mu    sync.Mutex
	h     *netlink.Handle
	owned []ownedAddr
}

type ownedAddr struct {
	link string
	addr *netlink.Addr
}

// NewAddresses opens a netlink handle in the calling thread's network
// namespace.
func NewAddresses() (*Addresses, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", sysErr(err))
	}
	return &Addresses{h: h}, nil
}

// Add puts addr/32 on interface name unless it is there already. An address
// carried by another interface is an ErrAddrConflict.
func (a *Addresses) Add(name string, addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	addr = addr.Unmap()
	if !addr.Is4() {
		return fmt.Errorf("address %v is not IPv4: %w", addr, ErrInvalidOptions)
	}
	l, err := linkByName(a.h, name)
	if err != nil {
		return err
	}
	all, err := a.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses: %w", sysErr(err))
	}
	label := fastnatLabel(name)
	for i := range all {
		have := &all[i]
		ip, ok := netip.AddrFromSlice(have.IP.To4())
		if !ok || ip != addr {
			continue
		}
		if have.LinkIndex != l.Attrs().Index {
			other := fmt.Sprint(have.LinkIndex)
			if ol, err := a.h.LinkByIndex(have.LinkIndex); err == nil {
				other = ol.Attrs().Name
			}
			return fmt.Errorf("public address %v for %s is configured on %s: %w", addr, name, other, ErrAddrConflict)
		}
		if label != "" && have.Label == label && !a.owns(name, addr) {
			a.owned = append(a.owned, ownedAddr{name, have})
		}
		return nil
	}
	b := addr.As4()
	na := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(b[:]), Mask: net.CIDRMask(32, 32)}, Label: label}
	if err := a.h.AddrAdd(l, na); err != nil {
		return fmt.Errorf("add %v to %s: %w", addr, name, sysErr(err))
	}
	a.owned = append(a.owned, ownedAddr{name, na})
	return nil
}

// owns reports whether addr on link name is one Add added or adopted.
func (a *Addresses) owns(name string, addr netip.Addr) bool {
	for _, o := range a.owned {
		if ip, _ := netip.AddrFromSlice(o.addr.IP.To4()); o.link == name && ip == addr {
			return true
		}
	}
	return false
}

// Remove takes addr off interface name if Add put it there (or adopted it
// from a crashed run); an address fastnat did not add is left alone.
func (a *Addresses) Remove(name string, addr netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	addr = addr.Unmap()
	keep := a.owned[:0]
	var errs []error
	for _, o := range a.owned {
		ip, _ := netip.AddrFromSlice(o.addr.IP.To4())
		if o.link != name || ip != addr {
			keep = append(keep, o)
			continue
		}
		l, err := a.h.LinkByName(o.link)
		if err != nil {
			continue // the interface is gone, and its addresses with it
		}
		if err := a.h.AddrDel(l, o.addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %v from %s: %w", addr, name, sysErr(err)))
			keep = append(keep, o)
		}
	}
	a.owned = keep
	return errors.Join(errs...)
}

// fastnatLabel returns the label for addresses fastnat adds to name, or ""
// when it would not fit IFNAMSIZ.
func fastnatLabel(name string) string {
	if len(name)+len(labelSuffix) >= unix.IFNAMSIZ {
		return ""
	}
	return name + labelSuffix
}

// Close removes the addresses Add added.
func (a *Addresses) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for _, o := range a.owned {
		l, err := a.h.LinkByName(o.link)
		if err != nil {
			continue // the interface is gone, and its addresses with it
		}
		if err := a.h.AddrDel(l, o.addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("remove %v from %s: %w", o.addr.IPNet, o.link, err))
		}
	}
	a.owned = nil
	if a.h != nil {
		a.h.Close()
		a.h = nil
	}
	return errors.Join(errs...)
}

// HostAddrs returns the IPv4 addresses of every interface of the host (of
// the calling thread's network namespace): the Local set of a Filter.
func HostAddrs() ([]netip.Addr, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", sysErr(err))
	}
	defer h.Close()
	return hostAddrs(h)
}

// HostAddrs is the package's HostAddrs in the network namespace a was
// opened in, whatever the calling thread's namespace.
func (a *Addresses) HostAddrs() ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return hostAddrs(a.h)
}

func hostAddrs(h *netlink.Handle) ([]netip.Addr, error) {
	all, err := hostPrefixes(h)
	out := make([]netip.Addr, len(all))
	for i, p := range all {
		out[i] = p.Addr()
	}
	return out, err
}

// HostPrefixes is HostAddrs with each address's prefix length (as
// "ip addr" shows it: 10.77.0.1/24), in the network namespace a was
// opened in.
func (a *Addresses) HostPrefixes() ([]netip.Prefix, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return hostPrefixes(a.h)
}

func hostPrefixes(h *netlink.Handle) ([]netip.Prefix, error) {
	all, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", sysErr(err))
	}
	var out []netip.Prefix
	for _, a := range all {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || a.IPNet == nil {
			continue
		}
		if ones, _ := a.Mask.Size(); ones <= 32 {
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out, nil
}
