package testnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// UDPEcho is a UDP echo server running in a namespace. It records the
// source address of every datagram, which is how a test sees what a NAT
// made of the sender.
type UDPEcho struct {
	conn *net.UDPConn
	done chan struct{}

	mu    sync.Mutex
	peers map[netip.AddrPort]int
	count int
}

// StartUDPEcho listens on addr in namespace ns and echoes every datagram
// back to its sender until Close.
func StartUDPEcho(ns string, addr netip.AddrPort) (*UDPEcho, error) {
	c, err := ListenUDP(ns, addr)
	if err != nil {
		return nil, err
	}
	e := &UDPEcho{conn: c, done: make(chan struct{}), peers: map[netip.AddrPort]int{}}
	go e.serve()
	return e, nil
}

func (e *UDPEcho) serve() {
	defer close(e.done)
	buf := make([]byte, 65536)
	for {
		n, from, err := e.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		e.mu.Lock()
		e.peers[from]++
		e.count++
		e.mu.Unlock()
		_, _ = e.conn.WriteToUDPAddrPort(buf[:n], from)
	}
}

// Addr is the address the server listens on.
func (e *UDPEcho) Addr() netip.AddrPort { return e.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Count is the number of datagrams received so far.
func (e *UDPEcho) Count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.count
}

// Peers returns the source addresses seen so far, with how many datagrams
// came from each.
func (e *UDPEcho) Peers() map[netip.AddrPort]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[netip.AddrPort]int, len(e.peers))
	for k, v := range e.peers {
		m[k] = v
	}
	return m
}

// Close stops the server.
func (e *UDPEcho) Close() error {
	err := e.conn.Close()
	<-e.done
	return err
}

// UDPExchange sends each payload from namespace ns to dst over one socket
// (so a NAT sees one flow) and waits up to wait for each echo. It returns
// how many identical echoes came back.
func UDPExchange(ctx context.Context, ns string, dst netip.AddrPort, payloads [][]byte, wait time.Duration) (int, error) {
	c, err := DialUDP(ns, netip.AddrPort{}, dst)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 65536)
	got := 0
	for _, p := range payloads {
		if err := ctx.Err(); err != nil {
			return got, err
		}
		if _, err := c.Write(p); err != nil {
			return got, fmt.Errorf("udp to %s from %s: %w", dst, ns, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				// ECONNREFUSED from an ICMP port unreachable: lost.
				break
			}
			if string(buf[:n]) == string(p) {
				got++
				break
			}
		}
	}
	return got, nil
}
