package testnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread that has entered network namespace ns. Sockets
// fn creates belong to ns for their whole life and may be used from any
// goroutine afterwards; goroutines fn starts do NOT run in ns.
//
// fn runs on a fresh goroutine locked to its thread. Afterwards the thread
// goes back to its original namespace and is unlocked; if that fails it
// stays locked and the runtime discards it when the goroutine ends, so no
// other goroutine ever runs in ns by accident.
func Do(ns string, fn func() error) error {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer h.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(h); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", ns, err)
			return // thread state unknown: stays locked, gets discarded
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// ListenUDP opens a UDP socket in namespace ns bound to addr.
func ListenUDP(ns string, addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := Do(ns, func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen udp %s in %s: %w", addr, ns, err)
	}
	return c, nil
}

// DialUDP opens a UDP socket in namespace ns connected to raddr, bound to
// laddr if laddr is valid.
func DialUDP(ns string, laddr, raddr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := Do(ns, func() error {
		var l *net.UDPAddr
		if laddr.IsValid() {
			l = net.UDPAddrFromAddrPort(laddr)
		}
		var err error
		c, err = net.DialUDP("udp4", l, net.UDPAddrFromAddrPort(raddr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial udp %s in %s: %w", raddr, ns, err)
	}
	return c, nil
}

// ListenTCP opens a listening TCP socket in namespace ns.
func ListenTCP(ns string, addr netip.AddrPort) (*net.TCPListener, error) {
	var l *net.TCPListener
	err := Do(ns, func() error {
		var err error
		l, err = net.ListenTCP("tcp4", net.TCPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s in %s: %w", addr, ns, err)
	}
	return l, nil
}

// DialTCP connects a TCP socket from namespace ns to raddr. The socket is
// created in ns; the connect itself completes through the runtime's poller
// and obeys ctx.
func DialTCP(ctx context.Context, ns string, raddr netip.AddrPort) (net.Conn, error) {
	return DialTCPFrom(ctx, ns, netip.AddrPort{}, raddr)
}

// DialTCPFrom is DialTCP from local address laddr (its zero value: any
// address and port; an unspecified address with a port: that port).
func DialTCPFrom(ctx context.Context, ns string, laddr, raddr netip.AddrPort) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var d net.Dialer
		if laddr.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(laddr)
		}
		var err error
		c, err = d.DialContext(ctx, "tcp4", raddr.String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial tcp %s in %s: %w", raddr, ns, err)
	}
	return c, nil
}

// ListenPacket is net.ListenPacket inside namespace ns (for example
// "ip4:icmp" for a raw ICMP socket).
func ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := Do(ns, func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen %s %s in %s: %w", network, addr, ns, err)
	}
	return c, nil
}

// LinkMAC returns the hardware address of interface link in namespace ns.
func LinkMAC(ns, link string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := Do(ns, func() error {
		ifi, err := net.InterfaceByName(link)
		if err != nil {
			return err
		}
		mac = ifi.HardwareAddr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mac of %s in %s: %w", link, ns, err)
	}
	return mac, nil
}
