package afxdp

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waiter sleeps on a file descriptor in the Go runtime's network poller
// rather than in a blocking system call.
//
// Why: a goroutine blocked in ppoll or recvfrom keeps its P in the
// system-call state, so the runtime's sysmon thread never sees every P
// idle and never goes to its deep sleep; it keeps polling, and with more
// such goroutines than Ps (a worker per core and a resolver per
// interface) it hands Ps off every few microseconds. An idle fastnat spent
// more CPU in sysmon than in all its own goroutines together. Parked in
// the poller, an idle goroutine holds no P, and an idle process sleeps in
// one epoll_wait until a descriptor is readable or a timer is due.
type waiter struct {
	f     *os.File
	rc    syscall.RawConn
	ready func(fd uintptr) bool
}

// newWaiter takes over fd (made non-blocking; Close closes it). wait calls
// ready(fd) first and after every readiness notification of fd, until it
// reports true.
func newWaiter(fd int, name string, ready func(fd uintptr) bool) (*waiter, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: set non-blocking: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// A deadline works only on a descriptor the poller took.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: not pollable: %w", name, err)
	}
	return &waiter{f: f, rc: rc, ready: ready}, nil
}

// wait returns true when ready reported true, false when timeout passed
// first or the waiter was closed.
func (w *waiter) wait(timeout time.Duration) bool {
	if err := w.f.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return false
	}
	return w.rc.Read(w.ready) == nil
}

// Close closes the descriptor; a wait in progress returns false.
func (w *waiter) Close() error { return w.f.Close() }
