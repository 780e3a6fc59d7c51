package afxdp

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmapUMEM maps the anonymous memory one worker's sockets share.
func mmapUMEM(size int) ([]byte, error) {
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("mmap umem of %d bytes: %w", size, err)
	}
	return mem, nil
}

// xsk is one AF_XDP socket with its four rings mapped.
type xsk struct {
	fd        int
	fill      ring
	comp      ring
	rx        ring
	tx        ring
	fillDescs []uint64
	compDescs []uint64
	rxDescs   []desc
	txDescs   []desc
	mapped    [][]byte
}

// xskConfig says how to create one socket.
type xskConfig struct {
	ifindex  int
	queue    int
	ringSize int
	// umem is registered with the socket when shareFD is -1; otherwise the
	// socket shares the UMEM of the bound socket shareFD.
	umem      []byte
	frameSize int
	shareFD   int
	// copy forces copy mode (XDP_COPY); otherwise the kernel uses zero copy
	// where the driver supports it. Sockets sharing a UMEM inherit the
	// mode of its owner.
	copy bool
}

func newXSK(c xskConfig) (_ *xsk, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("create AF_XDP socket: %w", sysErr(err))
	}
	s := &xsk{fd: fd}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if c.shareFD < 0 {
		reg := unix.XDPUmemReg{
			Addr: uint64(uintptr(unsafe.Pointer(&c.umem[0]))),
			Len:  uint64(len(c.umem)),
			Size: uint32(c.frameSize),
		}
		if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
			return nil, fmt.Errorf("register umem: %w", sysErr(err))
		}
	}
	// Every socket gets its own fill and completion ring: the kernel
	// requires them of a socket that shares a UMEM with a socket bound to
	// another device or queue (net/xdp/xsk.c, xsk_bind), which is exactly
	// fastnat's case: one UMEM, one socket per interface on queue q.
	for _, o := range []struct {
		opt  int
		name string
	}{
		{unix.XDP_UMEM_FILL_RING, "fill"},
		{unix.XDP_UMEM_COMPLETION_RING, "completion"},
		{unix.XDP_RX_RING, "rx"},
		{unix.XDP_TX_RING, "tx"},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o.opt, c.ringSize); err != nil {
			return nil, fmt.Errorf("size %s ring to %d: %w", o.name, c.ringSize, sysErr(err))
		}
	}
	var off unix.XDPMmapOffsets
	offLen := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&offLen)), 0); e != 0 {
		return nil, fmt.Errorf("read ring offsets: %w", sysErr(e))
	}
	if offLen < uint32(unsafe.Sizeof(off)) {
		return nil, fmt.Errorf("ring offsets without flags (kernel before 5.4): %w", ErrXDPUnsupported)
	}
	size := uint32(c.ringSize)
	if s.fill, err = s.mapRing(off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, size, 8); err != nil {
		return nil, fmt.Errorf("map fill ring: %w", err)
	}
	if s.comp, err = s.mapRing(off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, size, 8); err != nil {
		return nil, fmt.Errorf("map completion ring: %w", err)
	}
	if s.rx, err = s.mapRing(off.Rx, unix.XDP_PGOFF_RX_RING, size, 16); err != nil {
		return nil, fmt.Errorf("map rx ring: %w", err)
	}
	if s.tx, err = s.mapRing(off.Tx, unix.XDP_PGOFF_TX_RING, size, 16); err != nil {
		return nil, fmt.Errorf("map tx ring: %w", err)
	}
	s.fillDescs = unsafe.Slice((*uint64)(s.descBase(0, off.Fr)), size)
	s.compDescs = unsafe.Slice((*uint64)(s.descBase(1, off.Cr)), size)
	s.rxDescs = unsafe.Slice((*desc)(s.descBase(2, off.Rx)), size)
	s.txDescs = unsafe.Slice((*desc)(s.descBase(3, off.Tx)), size)
	s.fill.initProducer()
	s.tx.initProducer()
	s.comp.initConsumer()
	s.rx.initConsumer()

	sa := &unix.SockaddrXDP{Ifindex: uint32(c.ifindex), QueueID: uint32(c.queue)}
	if c.shareFD >= 0 {
		// Mode flags are not allowed here: the socket inherits copy or
		// zero-copy and need_wakeup from the UMEM's owner.
		sa.Flags = unix.XDP_SHARED_UMEM
		sa.SharedUmemFD = uint32(c.shareFD)
	} else {
		sa.Flags = unix.XDP_USE_NEED_WAKEUP
		if c.copy {
			sa.Flags |= unix.XDP_COPY
		}
	}
	if err := bind(fd, sa); err != nil {
		if errors.Is(err, unix.EBUSY) {
			err = fmt.Errorf("%w: another AF_XDP socket holds the queue: %w", ErrBusy, err)
		}
		return nil, fmt.Errorf("bind AF_XDP socket to ifindex %d queue %d: %w", c.ifindex, c.queue, sysErr(err))
	}
	// In copy mode one sendto transmits at most max_tx_budget descriptors
	// (32 unless raised, Linux 6.17+); let one kick drain the whole ring.
	// Older kernels lack the option, which only costs extra kicks.
	budget := uint32(c.ringSize)
	_ = setsockopt(fd, unix.XDP_MAX_TX_SKB_BUDGET, unsafe.Pointer(&budget), unsafe.Sizeof(budget))
	return s, nil
}

// bindRetries bounds how long bind waits for a queue to become free: the
// kernel releases the buffer pool of a closed socket from a workqueue, so a
// queue stays busy (EBUSY) for a moment after its previous socket is gone,
// as when fastnat restarts.
var bindRetries = 100

func bind(fd int, sa *unix.SockaddrXDP) error {
	for i := 0; ; i++ {
		err := unix.Bind(fd, sa)
		if !errors.Is(err, unix.EBUSY) || i == bindRetries {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// mapRing maps one ring and returns its index view; descriptors of
// descSize bytes follow at off.Desc.
func (s *xsk) mapRing(off unix.XDPRingOffset, pgoff int64, size uint32, descSize uint64) (ring, error) {
	mem, err := unix.Mmap(s.fd, pgoff, int(off.Desc+uint64(size)*descSize),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, sysErr(err)
	}
	s.mapped = append(s.mapped, mem)
	base := unsafe.Pointer(&mem[0])
	return ring{
		producer: (*atomic.Uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*atomic.Uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*atomic.Uint32)(unsafe.Add(base, off.Flags)),
		mask:     size - 1,
		size:     size,
	}, nil
}

func (s *xsk) descBase(i int, off unix.XDPRingOffset) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(&s.mapped[i][0]), off.Desc)
}

// stats reads the kernel's counters of the socket.
func (s *xsk) stats() (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	n := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&n)), 0); e != 0 {
		return st, fmt.Errorf("read xdp statistics: %w", e)
	}
	return st, nil
}

func (s *xsk) close() error {
	var errs []error
	for _, m := range s.mapped {
		if err := unix.Munmap(m); err != nil {
			errs = append(errs, fmt.Errorf("unmap ring: %w", err))
		}
	}
	s.mapped = nil
	if s.fd >= 0 {
		if err := unix.Close(s.fd); err != nil {
			errs = append(errs, fmt.Errorf("close AF_XDP socket: %w", err))
		}
		s.fd = -1
	}
	return errors.Join(errs...)
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt),
		uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

// sysErr adds fastnat's sentinel to the errors operators cause.
func sysErr(err error) error {
	switch {
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("%w: %w", ErrNotRoot, err)
	case errors.Is(err, unix.EAFNOSUPPORT):
		return fmt.Errorf("%w: kernel without AF_XDP sockets (CONFIG_XDP_SOCKETS): %w", ErrXDPUnsupported, err)
	case errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w: %w", ErrXDPUnsupported, err)
	}
	return err
}
