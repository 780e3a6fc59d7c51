package afxdp

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/pipeline"
	"golang.org/x/sys/unix"
)

// headroom is where the kernel puts a received packet in its frame
// (XDP_PACKET_HEADROOM with a UMEM headroom of 0); Alloc uses the same
// layout so every Handle has the same offset in its frame.
const headroom = unix.XDP_PACKET_HEADROOM

// minFrame is the shortest frame Transmit sends: an Ethernet header.
const minFrame = 14

// fillBatch is how many frames the fill ring must lack before a refill
// tops it up (at most a sixteenth of the ring); Receive counts the frames
// it took and those the rx ring still holds. Every refill reads the
// kernel's consumer index and publishes the producer's: two cache lines
// the kernel's CPU also writes and reads, a miss each on the worker's CPU.
// Counting what the ring lacks from the frames received, a worker refills
// once per fillBatch frames instead of twice a poll (Receive and Flush
// both refilled): on veth, at 0.5 Mpps through one worker, refill had
// taken 3 % of the worker's CPU, most of it waiting on those two lines.
const fillBatch = 256

// Port is one AF_XDP socket: queue q of one interface, owned by the worker
// that opened it. It implements pipeline.Port. Its frames come from, and go
// back to, the worker's shared UMEM, so a frame received on one Port of a
// worker may be transmitted on any other.
type Port struct {
	name  string
	mac   [6]byte
	iface *Interface
	umem  []byte
	pool  *framePool
	neigh *neighTable
	xsk   *xsk
	// owed is how many frames the fill ring lacks as far as the port
	// knows: frames received since the last refill, and those a refill
	// found no free frame for. refillAt is the owed count that triggers
	// a refill.
	owed, refillAt uint32

	counters portCounters
}

// portCounters are updated once per burst by the owning worker and read by
// anyone.
type portCounters struct {
	rx, tx, completed          atomic.Uint64
	kicks, kickAgain, kickErrs atomic.Uint64
	wakeups, fillStarved       atomic.Uint64
	txRingFull, txRunts        atomic.Uint64
}

// PortStats are a Port's counters.
type PortStats struct {
	// Rx and Tx count frames received and queued for transmission;
	// Completed counts transmissions the kernel reported done.
	Rx, Tx, Completed uint64
	// Kicks counts sendto calls that pushed the tx ring; KickAgain those
	// that left work for the next kick (EAGAIN, EBUSY, ENOBUFS); KickErrors
	// those that failed otherwise (such as ENETDOWN: interface down).
	Kicks, KickAgain, KickErrors uint64
	// Wakeups counts fill-ring wakeups (zero-copy drivers only).
	Wakeups uint64
	// FillStarved counts refills that found no free frame.
	FillStarved uint64
	// TxRingFull counts Transmit calls that could not take every frame.
	TxRingFull uint64
	// TxRunts counts frames shorter than an Ethernet header that Transmit
	// released instead of sending.
	TxRunts uint64
	// Kernel holds the socket's own drop counters (XDP_STATISTICS).
	Kernel unix.XDPStatistics
}

// Name returns "ifname/qN".
func (p *Port) Name() string { return p.name }

// MAC returns the interface's hardware address.
func (p *Port) MAC() [6]byte { return p.mac }

// Interface returns the name of the interface the port is a queue of.
func (p *Port) Interface() string { return p.iface.name }

// FD returns the socket's file descriptor (for polling by callers that run
// their own loop).
func (p *Port) FD() int { return p.xsk.fd }

// Receive fills fs with up to len(fs) received frames and returns how many.
// Buf starts at the packet and reaches to the end of the frame (cap is the
// frame size less the 256-byte headroom); Handle is the packet's UMEM
// address.
func (p *Port) Receive(fs []pipeline.Frame) int {
	s := p.xsk
	n := s.rx.avail(uint32(len(fs)))
	if n > 0 {
		pool := p.pool
		idx := s.rx.cachedCons
		prefetchRx(p.umem, s.rxDescs, idx, n)
		for i := range n {
			d := s.rxDescs[(idx+i)&s.rx.mask]
			if !pool.take(d.Addr, frameKernel, frameUser) {
				pool.bad(d.Addr, frameKernel, frameUser)
			}
			end := (d.Addr | pool.mask) + 1
			fs[i] = pipeline.Frame{Buf: p.umem[d.Addr : d.Addr+uint64(d.Len) : end], Handle: d.Addr}
		}
		s.rx.release(n)
		p.counters.rx.Add(uint64(n))
		p.owed += n
	}
	// Frames still waiting in the rx ring took fill slots too: when the
	// worker falls behind, the kernel may have emptied the fill ring long
	// before the worker counts those frames as received.
	if p.owed+(s.rx.cachedProd-s.rx.cachedCons) >= p.refillAt {
		p.refill()
	}
	return int(n)
}

// Transmit queues fs on the tx ring and returns how many it took. When the
// ring is full it kicks the kernel once to make room before giving up. A
// frame shorter than an Ethernet header is taken but released, not sent.
func (p *Port) Transmit(fs []pipeline.Frame) int {
	s := p.xsk
	want := uint32(len(fs))
	if want == 0 {
		return 0
	}
	free := s.tx.free(want)
	if free < want {
		p.kick()
		free = s.tx.free(want)
	}
	n := min(free, want)
	if n < want {
		p.counters.txRingFull.Add(1)
	}
	pool := p.pool
	idx := s.tx.cachedProd
	queued := uint32(0)
	for i := range n {
		f := &fs[i]
		if uint64(len(f.Buf)) > pool.mask+1-f.Handle&pool.mask {
			badLength(f.Handle, len(f.Buf))
		}
		if !pool.take(f.Handle, frameUser, frameTx) {
			pool.bad(f.Handle, frameUser, frameTx)
		}
		if len(f.Buf) < minFrame {
			// The kernel would skip such a descriptor without ever
			// completing it, and the frame would be lost for good.
			pool.push(f.Handle, frameTx)
			p.counters.txRunts.Add(1)
			continue
		}
		s.txDescs[(idx+queued)&s.tx.mask] = desc{Addr: f.Handle, Len: uint32(len(f.Buf))}
		queued++
	}
	if queued > 0 {
		s.tx.submit(queued)
		p.counters.tx.Add(uint64(queued))
	}
	return int(n)
}

// Release returns frames to the worker's free stack without sending them.
func (p *Port) Release(fs []pipeline.Frame) {
	for i := range fs {
		if !p.pool.push(fs[i].Handle, frameUser) {
			p.pool.bad(fs[i].Handle, frameUser, frameFree)
		}
	}
}

// Flush kicks the kernel if the tx ring holds unsent frames and the kernel
// asked to be woken (need_wakeup; in copy mode it always asks, since the
// sendto itself does the sending), recycles completed transmissions and
// tops up the fill ring.
func (p *Port) Flush() {
	s := p.xsk
	// A sendto in copy mode transmits at most 32 frames (the kernel's
	// TX_BATCH_SIZE) and reports EAGAIN when more wait: kick until the
	// ring is empty or a kick sends nothing, so that a burst leaves in
	// this poll instead of a batch per poll.
	for range maxKicks {
		n := s.tx.pending()
		if n == 0 || !s.tx.needWakeup() {
			break
		}
		p.kick()
		if s.tx.pending() == n {
			break
		}
	}
	p.complete()
	if p.owed >= p.refillAt {
		p.refill()
	}
}

// NextHop returns addr's next hop on this interface; see pipeline.Port.
func (p *Port) NextHop(addr uint32) pipeline.Hop { return p.neigh.nextHop(addr) }

// MTU returns the interface's MTU, as the kernel last reported it.
func (p *Port) MTU() int { return p.neigh.mtu() }

// Addr returns the interface's own address for ICMP errors to dst; see
// pipeline.Port.
func (p *Port) Addr(dst uint32) uint32 { return p.neigh.addr(dst) }

// Broadcast reports whether a is the directed broadcast address of one of
// the interface's connected prefixes; see pipeline.Port.
func (p *Port) Broadcast(a uint32) bool { return p.neigh.broadcast(a) }

// Alloc lends up to len(fs) free frames to the caller, for packets it
// builds itself (generators, benchmarks); it returns how many. Each Buf is
// empty with the capacity of a received frame. The caller passes them to
// Transmit or Release like received frames.
func (p *Port) Alloc(fs []pipeline.Frame) int {
	for i := range fs {
		base, ok := p.pool.pop(frameUser)
		if !ok {
			return i
		}
		a := base + headroom
		fs[i] = pipeline.Frame{Buf: p.umem[a : a : base+p.pool.mask+1], Handle: a}
	}
	return len(fs)
}

// Stats returns the port's counters. Safe to call from any goroutine.
func (p *Port) Stats() PortStats {
	st := PortStats{
		Rx:          p.counters.rx.Load(),
		Tx:          p.counters.tx.Load(),
		Completed:   p.counters.completed.Load(),
		Kicks:       p.counters.kicks.Load(),
		KickAgain:   p.counters.kickAgain.Load(),
		KickErrors:  p.counters.kickErrs.Load(),
		Wakeups:     p.counters.wakeups.Load(),
		FillStarved: p.counters.fillStarved.Load(),
		TxRingFull:  p.counters.txRingFull.Load(),
		TxRunts:     p.counters.txRunts.Load(),
	}
	st.Kernel, _ = p.xsk.stats()
	return st
}

// complete moves transmitted frames from the completion ring back to the
// free stack.
func (p *Port) complete() {
	s := p.xsk
	n := s.comp.avail(s.comp.size)
	if n == 0 {
		return
	}
	idx := s.comp.cachedCons
	for i := range n {
		if a := s.compDescs[(idx+i)&s.comp.mask]; !p.pool.push(a, frameTx) {
			p.pool.bad(a, frameTx, frameFree)
		}
	}
	s.comp.release(n)
	p.counters.completed.Add(uint64(n))
}

// refill gives free frames to the kernel for receiving, as many as the
// fill ring has room for. What it could not give stays owed, so the next
// Receive or Flush tries again.
func (p *Port) refill() {
	s := p.xsk
	n := min(s.fill.free(s.fill.size), uint32(p.pool.available()))
	p.owed -= min(p.owed, n)
	if n == 0 {
		if p.pool.available() == 0 {
			p.counters.fillStarved.Add(1)
		}
		return
	}
	idx := s.fill.cachedProd
	for i := range n {
		addr, _ := p.pool.pop(frameKernel)
		s.fillDescs[(idx+i)&s.fill.mask] = addr
	}
	s.fill.submit(n)
	if s.fill.needWakeup() {
		// Zero-copy drivers sleep when the fill ring runs dry; a
		// non-blocking recvfrom wakes them (copy mode never asks).
		p.counters.wakeups.Add(1)
		unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	}
}

// maxKicks bounds the kicks of one Flush: a full 2048-descriptor ring in
// copy mode's batches of 32, twice over.
const maxKicks = 128

// kick asks the kernel to transmit what the tx ring holds. Errors are
// counted, never returned or panicked: the frames stay on the ring and the
// next kick retries them.
func (p *Port) kick() {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(p.xsk.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	p.counters.kicks.Add(1)
	switch e {
	case 0:
	case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
		p.counters.kickAgain.Add(1)
	default:
		p.counters.kickErrs.Add(1)
	}
}

//go:noinline
func badLength(handle uint64, n int) {
	panic("afxdp: frame " + itoa(handle) + " holds " + itoa(uint64(n)) + " bytes past its end")
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(b[i:])
}

var _ pipeline.Port = (*Port)(nil)
