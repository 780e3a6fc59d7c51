package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// XDPFeatures are what a device's driver says it can do with XDP
// (enum netdev_xdp_act in include/uapi/linux/netdev.h).
type XDPFeatures uint64

// The features fastnat cares about.
const (
	XDPBasic       XDPFeatures = 1 << 0 // runs XDP programs (native mode)
	XDPRedirect    XDPFeatures = 1 << 1 // XDP_REDIRECT, which AF_XDP needs
	XDPZeroCopy    XDPFeatures = 1 << 3 // AF_XDP zero copy (NETDEV_XDP_ACT_XSK_ZEROCOPY)
	XDPHardware    XDPFeatures = 1 << 4
	XDPMultiBuffer XDPFeatures = 1 << 5 // frames larger than a page (RX_SG)
)

// ErrNoFeatures is returned by DeviceXDPFeatures on kernels before 6.3,
// which do not report XDP features.
var ErrNoFeatures = errors.New("kernel does not report XDP features (netdev netlink family, Linux 6.3)")

// The netdev generic netlink family (include/uapi/linux/netdev.h).
const (
	netdevCmdDevGet       = 1
	netdevAttrIfindex     = 1
	netdevAttrXDPFeatures = 3
	netdevGenlVersion     = 1
	netdevFamily          = "netdev"
)

// DeviceXDPFeatures asks the kernel (netdev netlink family, Linux 6.3 and
// later) what the driver of interface name can do with XDP, in the
// network namespace of the calling thread.
func DeviceXDPFeatures(name string) (XDPFeatures, error) {
	fam, err := netlink.GenlFamilyGet(netdevFamily)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, ErrNoFeatures)
	}
	var index int
	if err := withLink(name, func(l netlink.Link) error { index = l.Attrs().Index; return nil }); err != nil {
		return 0, err
	}
	req := nl.NewNetlinkRequest(int(fam.ID), unix.NLM_F_REQUEST)
	// The generic netlink header, written out: nl.Genlmsg serializes
	// four bytes from a two-byte struct, and the kernel refuses a
	// reserved field that is not 0.
	req.AddData(rawData{netdevCmdDevGet, netdevGenlVersion, 0, 0})
	req.AddData(nl.NewRtAttr(netdevAttrIfindex, nl.Uint32Attr(uint32(index))))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("interface %s: netdev dev-get: %w", name, sysErr(err))
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofGenlmsg {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[nl.SizeofGenlmsg:])
		if err != nil {
			return 0, fmt.Errorf("interface %s: netdev dev-get: %w", name, err)
		}
		for _, a := range attrs {
			if a.Attr.Type == netdevAttrXDPFeatures && len(a.Value) >= 8 {
				return XDPFeatures(binary.NativeEndian.Uint64(a.Value)), nil
			}
		}
	}
	return 0, fmt.Errorf("interface %s: %w", name, ErrNoFeatures)
}

// rawData is bytes added to a netlink request as they are.
type rawData []byte

func (r rawData) Len() int          { return len(r) }
func (r rawData) Serialize() []byte { return r }

// ZeroCopy reports whether the worker's sockets run in zero-copy mode
// (XDP_OPTIONS): the NIC receives into and transmits from the UMEM
// directly; false is copy mode. All sockets of a worker share the UMEM
// and so the mode.
func (w *Worker) ZeroCopy() bool {
	if len(w.ports) == 0 {
		return false
	}
	v, err := unix.GetsockoptInt(w.ports[0].xsk.fd, unix.SOL_XDP, unix.XDP_OPTIONS)
	return err == nil && v&unix.XDP_OPTIONS_ZEROCOPY != 0
}
