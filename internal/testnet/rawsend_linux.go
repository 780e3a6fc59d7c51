package testnet

import (
	"errors"
	"fmt"
	"net"
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
