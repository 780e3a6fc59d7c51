package testnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// SendFrames transmits each frame as-is (Ethernet header included) on
// interface link of namespace ns through an AF_PACKET socket, and returns
// how many the kernel took. A full device queue (ENOBUFS) is waited out
// briefly rather than counted as an error.
func SendFrames(ns, link string, frames [][]byte) (int, error) {
	sent := 0
	err := Do(ns, func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		// Protocol 0: a send-only socket that receives nothing.
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, 0)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer syscall.Close(fd)
		sa := &syscall.SockaddrLinklayer{Ifindex: ifi.Index}
		for _, f := range frames {
			for try := 0; ; try++ {
				err := syscall.Sendto(fd, f, 0, sa)
				if errors.Is(err, syscall.ENOBUFS) && try < 100 {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					return fmt.Errorf("send %d-byte frame: %w", len(f), err)
				}
				break
			}
			sent++
		}
		return nil
	})
	if err != nil {
		return sent, fmt.Errorf("send frames on %s in %s: %w", link, ns, err)
	}
	return sent, nil
}

// ethPAll is ETH_P_ALL in network byte order, as AF_PACKET wants it.
const ethPAll = 0x0300

// Capture records every frame an interface receives or sends, as an
// AF_PACKET socket sees it (what an XDP program on that interface would
// be given, for received frames). Use it to check with an independent
// decoder what actually went over a link. It keeps every frame in memory
// and can drop frames under a flood that outruns its 32 MiB socket
// buffer; it is for tests, not for benchmarks.
type Capture struct {
	f    *os.File
	done chan struct{}

	mu     sync.Mutex
	frames []CapturedFrame
}

// CapturedFrame is one frame seen by a Capture.
type CapturedFrame struct {
	Data     []byte
	Outgoing bool // sent by this interface's own host, not received
}

// StartCapture starts capturing on link in namespace ns until Close.
func StartCapture(ns, link string) (*Capture, error) {
	var c *Capture
	err := Do(ns, func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, ethPAll)
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: ethPAll, Ifindex: ifi.Index}); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("bind packet socket: %w", err)
		}
		// A large buffer, so a burst is not dropped before the reader
		// copies it out (root may exceed rmem_max with RCVBUFFORCE).
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 32<<20); err != nil {
			syscall.Close(fd)
			return fmt.Errorf("capture buffer: %w", err)
		}
		// Non-blocking, so the runtime's poller drives reads and Close
		// wakes a blocked reader.
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return err
		}
		c = &Capture{f: os.NewFile(uintptr(fd), "capture "+link), done: make(chan struct{})}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("capture %s in %s: %w", link, ns, err)
	}
	go c.run()
	return c, nil
}

// run reads frames until Close. The socket is non-blocking: run waits in
// the runtime's poller, and Close sets a read deadline to end the wait,
// after which run drains what is already queued.
func (c *Capture) run() {
	defer close(c.done)
	sc, err := c.f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 65536)
	// recv reads one frame; false when the queue is empty or the socket
	// is gone.
	recv := func(fd uintptr) bool {
		n, from, err := syscall.Recvfrom(int(fd), buf, 0)
		if err != nil {
			return false
		}
		out := false
		if ll, ok := from.(*syscall.SockaddrLinklayer); ok {
			out = ll.Pkttype == syscall.PACKET_OUTGOING
		}
		c.mu.Lock()
		c.frames = append(c.frames, CapturedFrame{Data: append([]byte(nil), buf[:n]...), Outgoing: out})
		c.mu.Unlock()
		return true
	}
	for {
		var got bool
		err := sc.Read(func(fd uintptr) bool {
			got = recv(fd)
			return got
		})
		if err != nil {
			// The deadline Close sets. Read checks it before reading,
			// so drain what is queued directly.
			_ = sc.Control(func(fd uintptr) {
				for recv(fd) {
				}
			})
			return
		}
	}
}

// Frames returns the frames captured so far.
func (c *Capture) Frames() []CapturedFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CapturedFrame(nil), c.frames...)
}

// Close stops the capture after reading every frame already queued;
// Frames still returns what it saw.
func (c *Capture) Close() error {
	_ = c.f.SetReadDeadline(time.Now())
	<-c.done
	return c.f.Close()
}
