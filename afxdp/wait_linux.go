package afxdp

import (
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// waiter sleeps on a file descriptor in the Go runtime's network poller
// rather than in a blocking system call. The neighbour resolvers use it.
//
// Why: a goroutine blocked in a system call (recvfrom with SO_RCVTIMEO, as
// the resolvers were) keeps its P in the system-call state, so the
// runtime's sysmon thread never sees every P idle and keeps polling, and
// with more such goroutines than Ps it takes Ps back and hands them off
// every few microseconds. Parked in the poller, an idle goroutine holds no
// P and costs no thread.
//
// The workers do not use it: a worker woken through the poller is woken
// by the thread that runs the poller, which then hands the P to the
// worker's locked thread, and at 100 kpps that added 2-5 µs to the median
// latency here; ppoll on the worker's own thread wakes it directly. With
// idle workers sleeping up to 50 ms (pipeline's idleWait) the ppoll costs
// as little idle CPU as the poller did (TestIdleCPU: 0.86 % and 0.57 % of
// a core per worker against 0.77 % and 0.50 %).
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
