package afxdp

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Queues returns the number of receive queues of interface name: the
// combined plus rx-only channels ethtool reports, or, for drivers without
// ethtool channels, the queues the kernel allocated. Workers own queues
// 0..Queues-1 by default.
func Queues(name string) (int, error) {
	var n int
	err := withLink(name, func(l netlink.Link) (err error) {
		n, err = rxQueues(name, l)
		return err
	})
	return n, err
}

// withLink calls fn with interface name, looked up over a netlink handle
// in the calling thread's network namespace.
func withLink(name string, fn func(l netlink.Link) error) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("open netlink: %w", sysErr(err))
	}
	defer h.Close()
	l, err := linkByName(h, name)
	if err != nil {
		return err
	}
	return fn(l)
}

func rxQueues(name string, l netlink.Link) (int, error) {
	ch, err := ethtoolChannels(name)
	if err == nil && ch.combined+ch.rx > 0 {
		return int(ch.combined + ch.rx), nil
	}
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return 0, fmt.Errorf("interface %s: read channels: %w", name, sysErr(err))
	}
	if n := l.Attrs().NumRxQueues; n > 0 {
		return n, nil
	}
	return 1, nil
}

// channels is struct ethtool_channels.
type channels struct {
	cmd                                 uint32
	maxRx, maxTx, maxOther, maxCombined uint32
	rx, tx, other, combined             uint32
}

// ifreqPtr is struct ifreq with the ifr_data member.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func ethtoolChannels(name string) (channels, error) {
	ch := channels{cmd: unix.ETHTOOL_GCHANNELS}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return ch, err
	}
	defer unix.Close(fd)
	return ch, ethtool(fd, name, unsafe.Pointer(&ch))
}

// ethtool makes the SIOCETHTOOL request whose command and result are at
// data (a struct that starts with the ethtool command word) for interface
// name, through socket fd (whose network namespace is the interface's).
func ethtool(fd int, name string, data unsafe.Pointer) error {
	if len(name) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long: %w", name, ErrNoInterface)
	}
	ifr := ifreqPtr{data: data}
	copy(ifr.name[:], name)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(data)
	if e != 0 {
		return e
	}
	return nil
}
