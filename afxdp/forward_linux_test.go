package afxdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastnat/fastnat/pipeline"
	"github.com/vishvananda/netlink"
)

// topology is three namespaces in a row, the router in the middle with
// fastnat's sockets on r1 (inside) and r2 (outside). The router's kernel
// does not forward (ip_forward is off in a new namespace), so every packet
// from a to b crosses the AF_XDP forwarder:
//
//	a: a0 198.18.1.2/24 ── r1 198.18.1.1/24  r: r2 198.18.2.1/24 ── b0 198.18.2.2/24 :b
type topology struct {
	a, r, b *netNS
}

func newTopology(t *testing.T, queues int) *topology {
	t.Helper()
	requireXDP(t)
	tp := &topology{a: newNetNS(t), r: newNetNS(t), b: newNetNS(t)}
	vethPair(t, tp.a, "a0", "198.18.1.2/24", tp.r, "r1", "198.18.1.1/24", queues)
	vethPair(t, tp.r, "r2", "198.18.2.1/24", tp.b, "b0", "198.18.2.2/24", queues)
	tp.a.ip(t, "route", "add", "default", "via", "198.18.1.1")
	tp.b.ip(t, "route", "add", "default", "via", "198.18.2.1")
	return tp
}

// forwarder is the smallest possible dataplane: IPv4 frames received on
// one port leave through the other with MACs from NextHop, in the same
// UMEM frame.
type forwarder struct {
	w         *Worker
	stop      chan struct{}
	done      chan struct{}
	forwarded atomic.Uint64
	notIPv4   atomic.Uint64
	unknown   atomic.Uint64 // frames whose Handle was never received: a copy
}

func startForwarder(w *Worker) *forwarder {
	f := &forwarder{w: w, stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *forwarder) run() {
	defer close(f.done)
	ports := f.w.Ports()
	fs := make([]pipeline.Frame, 32)
	var out, drop []pipeline.Frame
	received := map[uint64]bool{}
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		got := 0
		for i, in := range ports {
			o := ports[(i+1)%len(ports)]
			n := in.Receive(fs)
			got += n
			out, drop = out[:0], drop[:0]
			for _, fr := range fs[:n] {
				received[fr.Handle] = true
				b := fr.Buf
				if len(b) < 34 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
					f.notIPv4.Add(1)
					drop = append(drop, fr)
					continue
				}
				mac, ok := resolved(o.NextHop(binary.BigEndian.Uint32(b[30:])))
				if !ok {
					drop = append(drop, fr)
					continue
				}
				src := o.MAC()
				copy(b[0:6], mac[:])
				copy(b[6:12], src[:])
				out = append(out, fr)
			}
			for _, fr := range out {
				if !received[fr.Handle] {
					f.unknown.Add(1)
				}
			}
			k := o.Transmit(out)
			f.forwarded.Add(uint64(k))
			in.Release(append(drop, out[k:]...))
		}
		for _, p := range ports {
			p.Flush()
		}
		if got == 0 {
			f.w.Wait(time.Millisecond)
		}
	}
}

func (f *forwarder) halt() {
	close(f.stop)
	<-f.done
}

// router runs Interfaces, workers and forwarders in the router namespace.
type router struct {
	in, out *Interface
	workers []*Worker
	fwds    []*forwarder
}

func startRouter(t *testing.T, tp *topology, mode Mode, queues int) *router {
	t.Helper()
	rt := &router{}
	tp.r.do(t, func() error {
		var err error
		if rt.in, err = Load(IfaceSpec{Name: "r1", Role: Inside, Mode: mode}); err != nil {
			return err
		}
		if rt.out, err = Load(IfaceSpec{Name: "r2", Role: Outside, Mode: mode}); err != nil {
			return err
		}
		local, err := HostAddrs()
		if err != nil {
			return err
		}
		if err := rt.in.SetFilter(Filter{Inside: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24")}, Local: local}); err != nil {
			return err
		}
		// No NAT here: replies come back to the client's own address,
		// which plays the public address.
		if err := rt.out.SetFilter(Filter{Public: []netip.Addr{netip.MustParseAddr("198.18.1.2")}}); err != nil {
			return err
		}
		for q := range queues {
			w, err := Open([]*Interface{rt.in, rt.out}, q, Options{FramesPerQueue: 256, RingSize: 128})
			if err != nil {
				return err
			}
			rt.workers = append(rt.workers, w)
		}
		if err := rt.in.Attach(); err != nil {
			return err
		}
		return rt.out.Attach()
	})
	for _, w := range rt.workers {
		rt.fwds = append(rt.fwds, startForwarder(w))
	}
	t.Cleanup(rt.close)
	return rt
}

// close stops everything.
func (rt *router) close() {
	for _, f := range rt.fwds {
		f.halt()
	}
	rt.fwds = nil
	for _, w := range rt.workers {
		w.Close()
	}
	rt.workers = nil
	for _, i := range []*Interface{rt.in, rt.out} {
		if i != nil {
			i.Close()
		}
	}
}

func (rt *router) forwarded() (n uint64) {
	for _, f := range rt.fwds {
		n += f.forwarded.Load()
	}
	return n
}

// udpConn opens a UDP socket inside ns.
func udpConn(t *testing.T, ns *netNS, laddr, raddr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	ns.do(t, func() error {
		la, err := net.ResolveUDPAddr("udp4", laddr)
		if err != nil {
			return err
		}
		if raddr == "" {
			c, err = net.ListenUDP("udp4", la)
			return err
		}
		ra, err := net.ResolveUDPAddr("udp4", raddr)
		if err != nil {
			return err
		}
		c, err = net.DialUDP("udp4", la, ra)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// echo answers every datagram on c until c is closed.
func echo(c *net.UDPConn) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDP(buf)
		if err != nil {
			return
		}
		c.WriteToUDP(buf[:n], from)
	}
}

// exchange sends count numbered datagrams in rounds of window and returns
// how many came back; it retries nothing, so every loss shows.
func exchange(t *testing.T, c *net.UDPConn, tag string, count, window int) int {
	t.Helper()
	back := 0
	buf := make([]byte, 2048)
	for sent := 0; sent < count; {
		want := map[string]bool{}
		for i := 0; i < window && sent < count; i++ {
			msg := fmt.Sprintf("%s %d", tag, sent)
			if _, err := c.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			want[msg] = true
			sent++
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		for len(want) > 0 {
			n, err := c.Read(buf)
			if err != nil {
				break // a timeout: the rest of the round is lost
			}
			if want[string(buf[:n])] {
				delete(want, string(buf[:n]))
				back++
			}
		}
	}
	return back
}

// warmUp sends until one datagram comes back: the first ones are dropped
// while the router resolves the next hops.
func warmUp(t *testing.T, c *net.UDPConn) {
	t.Helper()
	buf := make([]byte, 64)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.Write([]byte("warm-up"))
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := c.Read(buf); err == nil && string(buf[:n]) == "warm-up" {
			return
		}
	}
	t.Fatal("no reply through the AF_XDP forwarder within 5s")
}

func xdpAttached(t *testing.T, ns *netNS, name string) bool {
	t.Helper()
	attached := false
	ns.do(t, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		attached = l.Attrs().Xdp != nil && l.Attrs().Xdp.Attached
		return nil
	})
	return attached
}

// TestForward sends UDP from a to b and back through the AF_XDP forwarder,
// in both XDP modes, and checks what must not reach it still reaches the
// router's kernel.
func TestForward(t *testing.T) {
	for _, mode := range []Mode{ModeGeneric, ModeNative} {
		t.Run(mode.String(), func(t *testing.T) {
			tp := newTopology(t, 1)
			rt := startRouter(t, tp, mode, 1)
			if !xdpAttached(t, tp.r, "r1") || !xdpAttached(t, tp.r, "r2") {
				t.Fatal("XDP program not attached")
			}
			srv := udpConn(t, tp.b, "198.18.2.2:9000", "")
			go echo(srv)
			cli := udpConn(t, tp.a, "198.18.1.2:0", "198.18.2.2:9000")
			warmUp(t, cli)

			if got := exchange(t, cli, "udp", 256, 16); got != 256 {
				t.Errorf("%d of 256 datagrams came back", got)
			}
			if n := rt.forwarded(); n < 2*256 {
				t.Errorf("forwarder sent %d frames, want at least %d", n, 2*256)
			}
			f := rt.fwds[0]
			if n := f.unknown.Load(); n != 0 {
				t.Errorf("%d frames transmitted that were never received (copies)", n)
			}

			// Traffic for the router itself, and the ARP that goes with
			// it, stays with the kernel.
			tp.a.ip(t, "neigh", "flush", "dev", "a0")
			before := rt.forwarded()
			for _, addr := range []string{"198.18.1.1", "198.18.2.1"} {
				local := udpConn(t, tp.r, addr+":7000", "")
				go echo(local)
				c := udpConn(t, tp.a, "198.18.1.2:0", addr+":7000")
				if got := exchange(t, c, "local", 8, 8); got != 8 {
					t.Errorf("%s: %d of 8 datagrams to the router's kernel came back", addr, got)
				}
			}
			if n := rt.forwarded() - before; n != 0 {
				t.Errorf("%d frames for the router itself reached the forwarder", n)
			}
			if n := f.notIPv4.Load(); n != 0 {
				t.Errorf("%d non-IPv4 frames (ARP) reached the forwarder", n)
			}

			// Every frame is back: free, or lent to the kernel for
			// receiving; none lost in flight, none left with the worker.
			for _, f := range rt.fwds {
				f.halt()
			}
			for _, w := range rt.workers {
				var n [4]int
				for range 100 {
					for _, p := range w.Ports() {
						p.Flush()
					}
					if n = w.pool.census(); n[frameTx] == 0 {
						break
					}
					time.Sleep(time.Millisecond)
				}
				if n[frameUser] != 0 || n[frameTx] != 0 {
					t.Errorf("frames after the traffic: %d free, %d kernel, %d user, %d tx; want no user or tx",
						n[frameFree], n[frameKernel], n[frameUser], n[frameTx])
				}
			}
			rt.fwds = nil

			rt.close()
			if xdpAttached(t, tp.r, "r1") || xdpAttached(t, tp.r, "r2") {
				t.Fatal("XDP program still attached after Close")
			}
		})
	}
}

// TestForwardMultiQueue runs one worker per queue of two-queue veths. The
// sender's kernel spreads flows over its transmit queues by hash, and in
// native mode a veth delivers what its peer sent on queue q to its own
// receive queue q, so enough flows reach both workers. In generic mode all
// of it arrives on queue 0 (see the package doc), and the test only checks
// that nothing is lost.
func TestForwardMultiQueue(t *testing.T) {
	for _, mode := range []Mode{ModeGeneric, ModeNative} {
		t.Run(mode.String(), func(t *testing.T) {
			tp := newTopology(t, 2)
			rt := startRouter(t, tp, mode, 2)
			srv := udpConn(t, tp.b, "198.18.2.2:9000", "")
			go echo(srv)
			first := udpConn(t, tp.a, "198.18.1.2:0", "198.18.2.2:9000")
			warmUp(t, first)
			total := 0
			for i := range 32 {
				c := udpConn(t, tp.a, "198.18.1.2:0", "198.18.2.2:9000")
				total += exchange(t, c, fmt.Sprint("flow", i), 8, 8)
			}
			if total != 32*8 {
				t.Errorf("%d of %d datagrams came back", total, 32*8)
			}
			for q, f := range rt.fwds {
				t.Logf("queue %d forwarded %d frames", q, f.forwarded.Load())
				// A veth records the transmit queue as the receive
				// queue only for its NAPI path, which native XDP uses;
				// generic XDP sees every packet as queue 0.
				if mode == ModeNative && f.forwarded.Load() == 0 {
					t.Errorf("worker of queue %d forwarded nothing", q)
				}
			}
		})
	}
}
