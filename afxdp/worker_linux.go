package afxdp

import (
	"errors"
	"fmt"
	"time"

	"github.com/fastnat/fastnat/pipeline"
	"golang.org/x/sys/unix"
)

// Worker is one worker's share of the dataplane: queue q of every
// interface, one AF_XDP socket (a Port) per interface, all sharing one UMEM
// and one free-frame stack. It implements pipeline.Waker over all its
// sockets. Only the worker's goroutine may use it and its Ports; Close it
// after that goroutine has stopped.
type Worker struct {
	queue   int
	umem    []byte
	pool    *framePool
	ports   []*Port
	pollfds []unix.PollFd
	ts      unix.Timespec
	closed  bool
}

// Open creates the worker for queue of each of ifaces: a UMEM of
// opts.FramesPerQueue frames per interface, one socket per interface bound
// to queue (the first registers the UMEM, the others share it with
// XDP_SHARED_UMEM and their own fill and completion rings), and registers
// each socket in its interface's socket map. The fill rings start full.
func Open(ifaces []*Interface, queue int, opts Options) (_ *Worker, err error) {
	opts, err = opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(ifaces) == 0 {
		return nil, fmt.Errorf("open worker: no interfaces: %w", ErrInvalidOptions)
	}
	copyMode := false
	seen := map[*Interface]bool{}
	for _, i := range ifaces {
		if seen[i] {
			return nil, fmt.Errorf("open worker: interface %s given twice: %w", i.name, ErrInvalidOptions)
		}
		seen[i] = true
		if queue < 0 || queue >= i.queues {
			return nil, fmt.Errorf("interface %s has %d queues, no queue %d: %w", i.name, i.queues, queue, ErrQueueMismatch)
		}
		if i.Mode() == ModeGeneric {
			copyMode = true
		}
	}
	w, err := open(ifaces, queue, opts, copyMode)
	if err != nil && !copyMode && (errors.Is(err, ErrXDPUnsupported) || errors.Is(err, unix.EINVAL)) {
		// The first socket went zero-copy on a driver the others cannot
		// follow: sockets sharing a UMEM share its mode.
		w, err = open(ifaces, queue, opts, true)
	}
	return w, err
}

func open(ifaces []*Interface, queue int, opts Options, copyMode bool) (_ *Worker, err error) {
	frames := opts.FramesPerQueue * len(ifaces)
	w := &Worker{queue: queue}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if w.umem, err = mmapUMEM(frames * opts.FrameSize); err != nil {
		return nil, err
	}
	w.pool = newFramePool(frames, opts.FrameSize)
	shareFD := -1
	for _, i := range ifaces {
		s, err := newXSK(xskConfig{
			ifindex: i.index, queue: queue, ringSize: opts.RingSize,
			umem: w.umem, frameSize: opts.FrameSize, shareFD: shareFD, copy: copyMode,
		})
		if err != nil {
			return nil, fmt.Errorf("interface %s queue %d: %w", i.name, queue, err)
		}
		p := &Port{
			name: fmt.Sprintf("%s/q%d", i.name, queue), mac: i.mac, iface: i,
			umem: w.umem, pool: w.pool, neigh: i.neigh, xsk: s,
		}
		w.ports = append(w.ports, p)
		w.pollfds = append(w.pollfds, unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN})
		if shareFD < 0 {
			shareFD = s.fd
		}
	}
	// Fill only once every socket is bound: the first refill of each
	// takes up to a ring of frames.
	for _, p := range w.ports {
		p.refillAll()
	}
	for _, p := range w.ports {
		if err := p.iface.register(queue, p.xsk.fd); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// refillAll fills the fill ring as far as the free frames allow, and sets
// the refill threshold.
func (p *Port) refillAll() {
	p.refillAt = max(1, min(fillBatch, p.xsk.fill.size/16))
	p.refill()
	p.owed = p.xsk.fill.free(p.xsk.fill.size)
}

// Queue returns the queue index the worker serves.
func (w *Worker) Queue() int { return w.queue }

// Ports returns the worker's ports, one per interface in the order given to
// Open.
func (w *Worker) Ports() []*Port { return w.ports }

// PipelinePorts returns the ports as the pipeline sees them.
func (w *Worker) PipelinePorts() []pipeline.Port {
	ps := make([]pipeline.Port, len(w.ports))
	for i, p := range w.ports {
		ps[i] = p
	}
	return ps
}

// FreeFrames returns how many UMEM frames are on the free stack.
func (w *Worker) FreeFrames() int { return w.pool.available() }

// Wait blocks until one of the worker's sockets has received frames, or
// until timeout. It returns at once if an rx ring is already non-empty.
func (w *Worker) Wait(timeout time.Duration) {
	for _, p := range w.ports {
		if p.xsk.rx.avail(1) > 0 {
			return
		}
	}
	w.ts = unix.NsecToTimespec(max(int64(timeout), 0))
	for i := range w.pollfds {
		w.pollfds[i].Revents = 0
	}
	_, _ = unix.Ppoll(w.pollfds, &w.ts, nil) // EINTR is a short wait
}

// Close unregisters the sockets from their interfaces' socket maps and
// frees sockets, rings and UMEM. Frames lent out by Receive or Alloc become
// invalid.
func (w *Worker) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	var errs []error
	for _, p := range w.ports {
		p.iface.unregister(w.queue)
		if err := p.xsk.close(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		}
	}
	if w.umem != nil {
		if err := unix.Munmap(w.umem); err != nil {
			errs = append(errs, fmt.Errorf("unmap umem: %w", err))
		}
		w.umem = nil
	}
	return errors.Join(errs...)
}

var _ pipeline.Waker = (*Worker)(nil)
