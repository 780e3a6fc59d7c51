package pipeline

import (
	"time"

	"github.com/fastnat/fastnat/packet"
)

// Frame is one packet buffer lent to a worker by a Port (packet.Frame,
// where packet's burst functions take it). Buf is the packet with
// len(Buf) = packet length and cap(Buf) = the room the frame has from the
// packet's start (frame size less the port's headroom: AF_XDP puts a
// received packet 256 bytes into its frame); Handle is the port's own
// name for the buffer (a UMEM address for AF_XDP, an index for memory
// ports). A worker may change Buf's length within its capacity (the FTP
// ALG grows and shrinks payloads) but never re-points it.
type Frame = packet.Frame

// Port is one queue of one interface, as seen by the worker that owns it.
// Only that worker calls its methods, so implementations need no locking.
//
// All ports of one worker share a frame space: a frame received on any of
// them may be transmitted on, or released to, any of them. AF_XDP ports get
// this from one shared UMEM per worker; memory ports from one shared pool.
type Port interface {
	// Name identifies the port in logs and metrics, such as "eth0/q1".
	Name() string
	// MAC is the port's own hardware address (the source of frames it sends).
	MAC() [6]byte
	// Receive fills fs with up to len(fs) received frames and returns how
	// many. The caller owns them until it passes them to Transmit or Release.
	Receive(fs []Frame) int
	// Transmit queues fs for sending and returns how many it took; ownership
	// of those passes to the port. The caller still owns fs[n:] and must
	// release or retry them.
	Transmit(fs []Frame) int
	// Release returns frames to the free pool without sending them.
	Release(fs []Frame)
	// Alloc lends up to len(fs) free frames of the shared frame space, O(1)
	// each and without allocating, and returns how many: empty (len 0)
	// with the capacity of a received frame. The worker fragments packets
	// into them and copies the ALG's second frames for a sender into them;
	// it passes them to Transmit or Release like received frames.
	Alloc(fs []Frame) int
	// Flush pushes queued transmissions to the device (a kick on AF_XDP)
	// and recycles frames whose transmission has completed.
	Flush()
	// NextHop says where a packet for IPv4 destination addr (host byte
	// order) goes on this port: its neighbour is addr itself when addr is
	// on one of the interface's connected prefixes, else the gateway. It
	// never blocks: when the neighbour's MAC is not known it starts
	// resolution in the background and answers HopPending; HopNoRoute
	// when addr is off-link and there is no gateway.
	NextHop(addr uint32) Hop
	// MTU is the largest IPv4 packet, header included, the interface may
	// send (its link MTU). The worker reads it once per poll, so a change
	// applies within a burst.
	MTU() int
	// Addr returns the interface's own IPv4 address to send ICMP errors to
	// dst from: one whose prefix holds dst if there is one, else the
	// interface's first; 0 when it has none.
	Addr(dst uint32) uint32
	// Broadcast reports whether a is the directed broadcast address of
	// one of the interface's connected prefixes (host part all ones;
	// prefixes of /31 and /32 have none, RFC 3021). The worker asks it
	// only about packets it would answer with an ICMP error.
	Broadcast(a uint32) bool
}

// Hop is a Port's answer about a destination's next hop.
type Hop struct {
	State HopState
	Addr  uint32  // the neighbour: the destination when on-link, else the gateway
	MAC   [6]byte // the neighbour's hardware address, when State is HopResolved
}

// HopState says whether a next hop can be used.
type HopState uint8

// Next-hop states; the zero value is HopNoRoute.
const (
	HopNoRoute  HopState = iota // off-link and no gateway: ICMP net unreachable
	HopPending                  // resolution under way: wait, or host unreachable when it fails
	HopResolved                 // MAC known: send
)

// Waker blocks a worker until one of its ports may have frames to receive, or
// until timeout. The adaptive and interrupt poll modes use it; busy polling
// never does. A worker's ports come with one Waker covering all of them.
type Waker interface {
	Wait(timeout time.Duration)
}
