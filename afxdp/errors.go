package afxdp

import "errors"

// Sentinel errors. Setup functions wrap them with context, so test with
// errors.Is: errors.Is(err, afxdp.ErrNoInterface).
var (
	// ErrNotRoot reports a missing privilege: AF_XDP sockets, BPF maps and
	// programs, and XDP attachment need root (CAP_NET_ADMIN, CAP_NET_RAW and
	// CAP_BPF).
	ErrNotRoot = errors.New("operation not permitted: run fastnat as root")
	// ErrNoInterface reports a network interface that does not exist.
	ErrNoInterface = errors.New("no such network interface")
	// ErrXDPUnsupported reports a kernel without AF_XDP sockets, or a driver
	// without the requested XDP mode.
	ErrXDPUnsupported = errors.New("XDP not supported")
	// ErrQueueMismatch reports a queue index that the interface does not
	// have.
	ErrQueueMismatch = errors.New("queue index out of range for interface")
	// ErrAddrConflict reports an address that fastnat was asked to own but
	// that another interface of the host already carries.
	ErrAddrConflict = errors.New("address already in use on another interface")
	// ErrBusy reports an interface that already runs an XDP program
	// fastnat did not load (or one held by another running fastnat), or a
	// queue that another AF_XDP socket is bound to.
	ErrBusy = errors.New("already in use")
	// ErrInvalidOptions reports options that cannot work (sizes that are not
	// powers of two, a ring larger than the frames behind it, and so on).
	ErrInvalidOptions = errors.New("invalid AF_XDP options")
	// ErrClosed reports use of a worker or interface after Close.
	ErrClosed = errors.New("use after close")
)
