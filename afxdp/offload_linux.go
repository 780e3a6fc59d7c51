package afxdp

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// PeerOffload is what CheckPeerOffload found out about an interface's
// veth peer: whether the peer transmits with checksum offload, which
// leaves TCP and UDP checksums unfinished in the frames fastnat reads
// (see the package doc, "veth").
type PeerOffload struct {
	Veth bool // the interface is a veth (nothing else is known otherwise)
	// Peer is the peer's name and Netns the named network namespace
	// (under /run/netns) that holds it, "" for the caller's own; both
	// empty when the peer could not be found.
	Peer, Netns string
	// Visible reports that the peer was found and its features read;
	// TxChecksum is then whether it transmits with checksum offload.
	Visible    bool
	TxChecksum bool
}

// CheckPeerOffload looks at interface name (in the calling thread's
// network namespace) and, if it is a veth, at its peer: in the same
// namespace, or in a named one (ip netns) that the kernel's link-netnsid
// points to. A peer in an unnamed namespace cannot be found; Visible is
// then false.
func CheckPeerOffload(name string) (PeerOffload, error) {
	var po PeerOffload
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return po, fmt.Errorf("open netlink: %w", sysErr(err))
	}
	defer h.Close()
	l, err := linkByName(h, name)
	if err != nil {
		return po, err
	}
	if l.Type() != "veth" {
		return po, nil
	}
	po.Veth = true
	peerIndex, nsid := l.Attrs().ParentIndex, l.Attrs().NetNsID
	if peerIndex == 0 {
		return po, nil
	}
	if nsid < 0 {
		// The peer lives beside the interface.
		p, err := h.LinkByIndex(peerIndex)
		if err != nil {
			return po, nil
		}
		po.Peer = p.Attrs().Name
		on, err := txChecksum(-1, po.Peer)
		if err != nil {
			return po, fmt.Errorf("interface %s: read the tx checksum offload of its peer %s: %w", name, po.Peer, sysErr(err))
		}
		po.Visible, po.TxChecksum = true, on
		return po, nil
	}
	named, _ := filepath.Glob("/run/netns/*")
	for _, path := range named {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			continue
		}
		id, err := h.GetNetNsIdByFd(int(ns))
		if err != nil || id != nsid {
			ns.Close()
			continue
		}
		po.Netns = filepath.Base(path)
		defer ns.Close()
		ph, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			return po, nil
		}
		defer ph.Close()
		p, err := ph.LinkByIndex(peerIndex)
		if err != nil {
			return po, nil
		}
		po.Peer = p.Attrs().Name
		on, err := txChecksum(int(ns), po.Peer)
		if err != nil {
			return po, fmt.Errorf("interface %s: read the tx checksum offload of its peer %s in netns %s: %w", name, po.Peer, po.Netns, sysErr(err))
		}
		po.Visible, po.TxChecksum = true, on
		return po, nil
	}
	return po, nil
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd, data uint32
}

// txChecksum asks the kernel (ETHTOOL_GTXCSUM) whether interface name,
// in network namespace ns (-1: the calling thread's), transmits with
// checksum offload.
func txChecksum(ns int, name string) (bool, error) {
	fd, err := socketIn(ns)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: unix.ETHTOOL_GTXCSUM}
	if err := ethtool(fd, name, unsafe.Pointer(&v)); err != nil {
		return false, err
	}
	return v.data != 0, nil
}

// socketIn opens a datagram socket in network namespace ns (-1: the
// calling thread's). A socket keeps the namespace it was created in, so it
// is made on a locked thread that enters ns and comes back; a thread that
// cannot come back is never unlocked, and Go retires it.
func socketIn(ns int) (int, error) {
	if ns < 0 {
		return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	}
	type result struct {
		fd  int
		err error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			c <- result{-1, err}
			return
		}
		defer orig.Close()
		if err := netns.Set(netns.NsHandle(ns)); err != nil {
			runtime.UnlockOSThread()
			c <- result{-1, err}
			return
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if errBack := netns.Set(orig); errBack != nil {
			if err == nil {
				unix.Close(fd)
			}
			c <- result{-1, errors.Join(err, fmt.Errorf("return to the original netns: %w", errBack))}
			return // thread stays locked and is retired
		}
		runtime.UnlockOSThread()
		c <- result{fd, err}
	}()
	r := <-c
	return r.fd, r.err
}
