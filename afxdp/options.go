package afxdp

import (
	"fmt"
	"net/netip"
)

// Mode is the XDP attachment mode of an interface.
type Mode uint8

const (
	// ModeAuto is native mode, falling back to generic when the driver has
	// no native XDP. On veth, where native mode brings no zero copy, the
	// two cost the same per packet (see the package doc) and native is
	// kept because only it spreads packets over the receive queues.
	ModeAuto Mode = iota
	// ModeNative runs the program in the driver (XDP_FLAGS_DRV_MODE).
	ModeNative
	// ModeGeneric runs the program on the kernel's skb path
	// (XDP_FLAGS_SKB_MODE); every driver supports it, with a copy.
	ModeGeneric
)

var modeNames = [...]string{ModeAuto: "auto", ModeNative: "native", ModeGeneric: "generic"}

// String returns the configuration spelling of m.
func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "auto", "native" or "generic".
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if s == name {
			return Mode(m), nil
		}
	}
	return 0, fmt.Errorf("xdp mode %q: %w (want auto, native or generic)", s, ErrInvalidOptions)
}

// Role is what an interface is to the NAT, and so which traffic its XDP
// program steers to fastnat.
type Role uint8

const (
	// Inside interfaces face the private networks: IPv4 from an inside
	// prefix to an address that is not the host's own goes to fastnat.
	Inside Role = iota + 1
	// Outside interfaces face the public network: IPv4 to one of the NAT's
	// public addresses goes to fastnat.
	Outside
)

// String returns "inside" or "outside".
func (r Role) String() string {
	switch r {
	case Inside:
		return "inside"
	case Outside:
		return "outside"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// IfaceSpec describes one interface for Load.
type IfaceSpec struct {
	// Name is the kernel's interface name, such as "eth0".
	Name string
	// Role selects the XDP filter.
	Role Role
	// Mode is the XDP attachment mode.
	Mode Mode
	// Gateway is the next hop for destinations outside the interface's
	// connected prefixes. The zero Addr means the gateway of the kernel's
	// default route through this interface, if there is one.
	Gateway netip.Addr
}

// Filter is the set of addresses the XDP programs steer to fastnat. Each
// interface uses the part its role needs; everything else is passed to the
// kernel.
type Filter struct {
	// Public addresses of the NAT (pools and nat server public addresses);
	// on outside interfaces IPv4 to them is redirected.
	Public []netip.Addr
	// Inside prefixes (nat outbound sources and nat server inside
	// addresses); on inside interfaces IPv4 from them is redirected ...
	Inside []netip.Prefix
	// ... unless it is addressed to one of the host's own addresses, which
	// the kernel keeps answering (ssh, ping, routing protocols).
	Local []netip.Addr
}

// Options sizes one worker's UMEM and rings. The zero value of a field
// selects its default.
type Options struct {
	// FrameSize is the size of one UMEM frame: 2048 (default) or 4096. The
	// kernel writes received packets XDP_PACKET_HEADROOM (256) bytes into
	// the frame, so a 2048-byte frame holds packets up to 1792 bytes.
	FrameSize int
	// FramesPerQueue is how many frames the UMEM holds per interface
	// (default 8192); a worker over n interfaces owns n×FramesPerQueue.
	FramesPerQueue int
	// RingSize is the number of descriptors in each of a socket's rx, tx,
	// fill and completion rings: a power of two, at least 32, no larger
	// than FramesPerQueue. The default is half of FramesPerQueue (4096
	// with the default frames), at most MaxDefaultRingSize, so that the
	// fill ring never holds all of an interface's frames. A deep rx ring
	// absorbs the bursts of many TCP flows while the worker is busy
	// transmitting (in copy mode a sendto also runs the receiving host's
	// stack on the worker's CPU): with 2048 descriptors 100 iperf3
	// streams through one worker overflowed it for 3-8 % of their
	// segments, each one a retransmission; with 4096, about half as many;
	// with 8192 (16384 frames per queue) about a quarter as many again
	// (fastnat bench tcp: median 3,600 drops in 5 s against 14,900, eight
	// and nine rounds).
	RingSize int
}

// Defaults of Options.
const (
	DefaultFrameSize      = 2048
	DefaultFramesPerQueue = 8192
	// MaxDefaultRingSize bounds the default ring size that more frames
	// per queue bring.
	MaxDefaultRingSize = 8192
)

func (o Options) withDefaults() (Options, error) {
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
	if o.FramesPerQueue == 0 {
		o.FramesPerQueue = DefaultFramesPerQueue
	}
	if o.RingSize == 0 {
		o.RingSize = MaxDefaultRingSize
		for o.RingSize > 32 && o.RingSize > o.FramesPerQueue/2 {
			o.RingSize /= 2
		}
	}
	switch {
	case o.FrameSize != 2048 && o.FrameSize != 4096:
		return o, fmt.Errorf("frame size %d: %w (want 2048 or 4096)", o.FrameSize, ErrInvalidOptions)
	case o.RingSize < 32 || o.RingSize&(o.RingSize-1) != 0:
		return o, fmt.Errorf("ring size %d: %w (want a power of two, at least 32)", o.RingSize, ErrInvalidOptions)
	case o.FramesPerQueue < o.RingSize:
		return o, fmt.Errorf("frames per queue %d below ring size %d: %w", o.FramesPerQueue, o.RingSize, ErrInvalidOptions)
	case o.FramesPerQueue > 1<<20:
		return o, fmt.Errorf("frames per queue %d: %w (at most %d)", o.FramesPerQueue, ErrInvalidOptions, 1<<20)
	}
	return o, nil
}
