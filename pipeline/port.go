package pipeline

import "time"

// Frame is one packet buffer lent to a worker by a Port. Buf is the packet
// with len(Buf) = packet length and cap(Buf) = the room the frame has from
// the packet's start (frame size less the port's headroom: AF_XDP puts a
// received packet 256 bytes into its frame); Handle is
// the port's own name for the buffer (a UMEM address for AF_XDP, an index
// for memory ports). A worker may change Buf's length within its capacity
// (the FTP ALG grows and shrinks payloads) but never re-points it.
type Frame struct {
	Buf    []byte
	Handle uint64
}

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
	// Alloc lends up to len(fs) free frames, empty with the capacity of a
	// received frame, for packets the worker makes itself (the ALG's
	// answers); it returns how many. They are passed to Transmit or
	// Release like received frames.
	Alloc(fs []Frame) int
	// Flush pushes queued transmissions to the device (a kick on AF_XDP)
	// and recycles frames whose transmission has completed.
	Flush()
	// NextHop returns the MAC address a packet for IPv4 destination addr
	// (host byte order) is sent to on this port: addr's own when addr is on
	// one of the interface's connected prefixes, else the configured
	// gateway's. It never blocks: on a miss it starts resolution in the
	// background and returns ok = false (the caller drops and counts).
	NextHop(addr uint32) (mac [6]byte, ok bool)
}

// Waker blocks a worker until one of its ports may have frames to receive, or
// until timeout. The adaptive and interrupt poll modes use it; busy polling
// never does. A worker's ports come with one Waker covering all of them.
type Waker interface {
	Wait(timeout time.Duration)
}
