package afxdp

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/fastnat/fastnat/pipeline"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
)

// portPair is a veth pair x0 ─ x1 in one namespace with a worker on each
// end: x1's port sends frames it builds (Alloc), x0's receives them (x0's
// program redirects IPv4 to 198.18.3.2).
type portPair struct {
	ns     *netNS
	tx, rx *Port
	wtx    *Worker
	wrx    *Worker
	frame  func(i int) []byte
}

func newPortPair(t *testing.T, mode Mode) *portPair {
	t.Helper()
	requireXDP(t)
	pp := &portPair{ns: newNetNS(t)}
	vethPair(t, pp.ns, "x0", "198.18.3.1/24", pp.ns, "x1", "198.18.3.3/24", 1)
	var x0, x1 *Interface
	pp.ns.do(t, func() (err error) {
		if x0, err = Load(IfaceSpec{Name: "x0", Role: Outside, Mode: mode}); err != nil {
			return err
		}
		if x1, err = Load(IfaceSpec{Name: "x1", Role: Outside, Mode: mode}); err != nil {
			return err
		}
		if err = x0.SetFilter(Filter{Public: []netip.Addr{netip.MustParseAddr("198.18.3.2")}}); err != nil {
			return err
		}
		opts := Options{FramesPerQueue: 128, RingSize: 64}
		if pp.wrx, err = Open([]*Interface{x0}, 0, opts); err != nil {
			return err
		}
		if pp.wtx, err = Open([]*Interface{x1}, 0, opts); err != nil {
			return err
		}
		return x0.Attach()
	})
	t.Cleanup(func() {
		pp.wrx.Close()
		pp.wtx.Close()
		x0.Close()
		x1.Close()
	})
	pp.rx, pp.tx = pp.wrx.Ports()[0], pp.wtx.Ports()[0]
	var srcMAC, dstMAC []byte
	pp.ns.do(t, func() error {
		a, err := netlink.LinkByName("x1")
		if err != nil {
			return err
		}
		b, err := netlink.LinkByName("x0")
		srcMAC, dstMAC = a.Attrs().HardwareAddr, b.Attrs().HardwareAddr
		return err
	})
	frames := make([][]byte, 16)
	for i := range frames {
		f := ipv4Frame(t, "198.18.3.3", "198.18.3.2", layers.IPProtocolUDP)
		copy(f[0:6], dstMAC)
		copy(f[6:12], srcMAC)
		f = append(f, bytes.Repeat([]byte{byte(i)}, i*7)...) // distinct lengths and contents
		frames[i] = f
	}
	pp.frame = func(i int) []byte { return frames[i%len(frames)] }
	return pp
}

// send transmits n frames from the tx port and returns them as sent.
func (pp *portPair) send(t testing.TB, fs []pipeline.Frame, n int) {
	got := pp.tx.Alloc(fs[:n])
	if got != n {
		t.Fatalf("Alloc gave %d of %d frames", got, n)
	}
	for i := range fs[:n] {
		fs[i].Buf = append(fs[i].Buf, pp.frame(i)...)
	}
	if k := pp.tx.Transmit(fs[:n]); k != n {
		t.Fatalf("Transmit took %d of %d", k, n)
	}
	pp.tx.Flush()
}

// receive collects n frames on the rx port.
func (pp *portPair) receive(t testing.TB, fs []pipeline.Frame, n int) int {
	got := 0
	for range 1000 {
		got += pp.rx.Receive(fs[got:n])
		if got == n {
			break
		}
		pp.wrx.Wait(time.Millisecond)
	}
	return got
}

func TestPortRoundTrip(t *testing.T) {
	for _, mode := range []Mode{ModeGeneric, ModeNative} {
		t.Run(mode.String(), func(t *testing.T) {
			pp := newPortPair(t, mode)
			free := pp.wrx.FreeFrames()
			out := make([]pipeline.Frame, 16)
			in := make([]pipeline.Frame, 16)
			pp.send(t, out, 16)
			if got := pp.receive(t, in, 16); got != 16 {
				t.Fatalf("received %d of 16 frames", got)
			}
			handles := map[uint64]bool{}
			for i, f := range in {
				if !bytes.Equal(f.Buf, pp.frame(i)) {
					t.Fatalf("frame %d: got %x, sent %x", i, f.Buf, pp.frame(i))
				}
				if cap(f.Buf) != DefaultFrameSize-headroom {
					t.Fatalf("frame %d: cap %d, want %d", i, cap(f.Buf), DefaultFrameSize-headroom)
				}
				if handles[f.Handle] {
					t.Fatalf("handle %#x lent twice", f.Handle)
				}
				handles[f.Handle] = true
			}
			// The pipeline may grow a frame within its capacity (the
			// FTP ALG does): send one back grown.
			in[0].Buf = append(in[0].Buf, "grown"...)
			if k := pp.rx.Transmit(in[:1]); k != 1 {
				t.Fatalf("Transmit took %d", k)
			}
			pp.rx.Release(in[1:])
			for range 100 {
				pp.rx.Flush()
				if pp.rx.Stats().Completed == 1 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			st := pp.rx.Stats()
			if st.Rx != 16 || st.Tx != 1 || st.Completed != 1 {
				t.Fatalf("stats %+v; want 16 received, 1 sent and completed", st)
			}
			if got := pp.wrx.FreeFrames(); got != free {
				t.Fatalf("%d free frames after the round trip, %d before", got, free)
			}
		})
	}
}

func TestPortContractPanics(t *testing.T) {
	pp := newPortPair(t, ModeGeneric)
	fs := make([]pipeline.Frame, 2)
	pp.tx.Alloc(fs)
	pp.tx.Release(fs[:1])
	mustPanic(t, "is free, not user", func() { pp.tx.Release(fs[:1]) })
	mustPanic(t, "is free, not user, so it cannot become tx", func() { pp.tx.Transmit(fs[:1]) })
	f := fs[1]
	f.Buf = make([]byte, 4000) // re-pointed at memory that is not the frame's
	mustPanic(t, "past its end", func() { pp.tx.Transmit([]pipeline.Frame{f}) })
}

func TestTransmitRunt(t *testing.T) {
	pp := newPortPair(t, ModeGeneric)
	free := pp.wtx.FreeFrames()
	fs := make([]pipeline.Frame, 2)
	pp.tx.Alloc(fs)
	fs[0].Buf = append(fs[0].Buf, make([]byte, 13)...)
	fs[1].Buf = append(fs[1].Buf, pp.frame(0)...)
	if k := pp.tx.Transmit(fs); k != 2 {
		t.Fatalf("Transmit took %d of 2", k)
	}
	for range 100 {
		pp.tx.Flush()
		if pp.wtx.FreeFrames() == free {
			break
		}
		time.Sleep(time.Millisecond)
	}
	st := pp.tx.Stats()
	if st.TxRunts != 1 || st.Tx != 1 || st.Completed != 1 || pp.wtx.FreeFrames() != free {
		t.Fatalf("stats %+v, %d free frames of %d: want the runt released and the other sent", st, pp.wtx.FreeFrames(), free)
	}
}

func TestWait(t *testing.T) {
	pp := newPortPair(t, ModeGeneric)
	pp.wrx.Wait(time.Millisecond) // nothing there: returns after the timeout

	out := make([]pipeline.Frame, 1)
	pp.send(t, out, 1)
	pp.wrx.Wait(time.Hour) // a frame is (or is about to be) there: returns

	in := make([]pipeline.Frame, 1)
	if pp.receive(t, in, 1) != 1 {
		t.Fatal("frame lost")
	}
	pp.rx.Release(in)

	woke := make(chan struct{})
	go func() {
		pp.wrx.Wait(time.Hour) // blocks in ppoll until the frame arrives
		close(woke)
	}()
	time.Sleep(10 * time.Millisecond)
	pp.send(t, out, 1)
	<-woke
}

// TestPortAllocs checks the per-packet path: Alloc, Transmit and Flush on
// one port, Receive and Release on the other, Wait in between.
func TestPortAllocs(t *testing.T) {
	pp := newPortPair(t, ModeGeneric)
	out := make([]pipeline.Frame, 8)
	in := make([]pipeline.Frame, 8)
	round := func() {
		pp.send(t, out, 8)
		if n := pp.receive(t, in, 8); n != 8 {
			panic(fmt.Sprintf("received %d of 8", n))
		}
		pp.rx.Release(in)
		pp.rx.Flush()
		_ = pp.rx.NextHop(ip("198.18.3.3"))
	}
	round()
	if n := testing.AllocsPerRun(200, round); n != 0 {
		t.Fatalf("%v allocations per round of 8 frames", n)
	}
}
