package afxdp

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	asavie "github.com/asavie/xdp"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/fastnat/fastnat/pipeline"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestMeasureRings measures fastnat's rings against github.com/asavie/xdp's
// socket on a veth pair: 64-byte UDP frames blasted by an AF_XDP socket on
// one end (pinned to CPU 0), counted by an AF_XDP socket on the other
// (pinned to CPU 1), both busy polling. Run it alone:
//
//	FASTNAT_MEASURE=1 go test ./afxdp -run TestMeasureRings -v
//
// (FASTNAT_MEASURE_ROUNDS, default 5, and FASTNAT_MEASURE_SECONDS, default 1,
// set the number and length of the runs.) Rows:
//   - tx: frames per second the blaster completes, the receiving end
//     dropping everything in a native XDP program;
//   - rx generic, rx native: frames per second the receiving socket reads,
//     its XDP program attached in that mode, fed by fastnat's blaster.
//
// Every run gets a fresh namespace and veth pair (asavie's Close leaves its
// rings mapped, so its socket keeps the queue until the device goes), and
// the implementations alternate round by round, so that other load on the
// machine hits both alike; the report gives the median and the best run,
// and the median of the per-round ratios.
func TestMeasureRings(t *testing.T) {
	if os.Getenv("FASTNAT_MEASURE") == "" {
		t.Skip("set FASTNAT_MEASURE=1 to measure")
	}
	requireXDP(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs")
	}
	rounds, secs := 5, 1
	if s := os.Getenv("FASTNAT_MEASURE_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	if s := os.Getenv("FASTNAT_MEASURE_SECONDS"); s != "" {
		fmt.Sscan(s, &secs)
	}
	d := time.Duration(secs) * time.Second
	type row struct {
		name string
		run  func(t *testing.T, impl string) (frames uint64, note string)
	}
	rows := []row{{"tx", func(t *testing.T, impl string) (uint64, string) {
		var n uint64
		var note string
		m0, m1, ns := measurePair(t)
		ns.do(t, func() error {
			drop, err := attachDrop(m1.Attrs().Index)
			if err != nil {
				return err
			}
			defer drop.Close()
			n, note, err = blast(impl, m0, measureFrame(t, m0, m1), d)
			return err
		})
		return n, note
	}}}
	for _, mode := range []Mode{ModeGeneric, ModeNative} {
		rows = append(rows, row{"rx " + mode.String(), func(t *testing.T, impl string) (uint64, string) {
			var n uint64
			var note string
			m0, m1, ns := measurePair(t)
			ns.do(t, func() error {
				stop, count, kernel, err := startReceiver(impl, m1, mode)
				if err != nil {
					return err
				}
				defer stop()
				if _, _, err := blast("fastnat", m0, measureFrame(t, m0, m1), d); err != nil {
					return err
				}
				n, note = count(), kernel()
				return nil
			})
			return n, note
		}})
	}
	impls := []string{"fastnat", "asavie"}
	pps := map[string][]float64{}   // row/impl → per round
	ratio := map[string][]float64{} // row → per round fastnat/asavie
	for r := range rounds {
		for _, rw := range rows {
			var got [2]float64
			for k, impl := range impls {
				if r%2 == 1 {
					impl = impls[1-k] // alternate who goes first
				}
				t.Run(fmt.Sprintf("%s/%s/%d", rw.name, impl, r), func(t *testing.T) {
					n, note := rw.run(t, impl)
					p := float64(n) / d.Seconds()
					t.Logf("%.3f Mpps %s", p/1e6, note)
					pps[rw.name+"/"+impl] = append(pps[rw.name+"/"+impl], p)
					if impl == "fastnat" {
						got[0] = p
					} else {
						got[1] = p
					}
				})
			}
			if got[1] > 0 {
				ratio[rw.name] = append(ratio[rw.name], got[0]/got[1])
			}
		}
	}
	t.Logf("%d rounds of %v, load average %s", rounds, d, loadAvg())
	for _, rw := range rows {
		for _, impl := range impls {
			v := pps[rw.name+"/"+impl]
			t.Logf("%-11s %-8s median %.3f Mpps, best %.3f Mpps", rw.name, impl, median(v)/1e6, slices.Max(v)/1e6)
		}
		t.Logf("%-11s fastnat/asavie: median of per-round ratios %.2f", rw.name, median(ratio[rw.name]))
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// measurePair makes a namespace with the veth pair m0 ─ m1 for one run.
func measurePair(t *testing.T) (m0, m1 netlink.Link, ns *netNS) {
	ns = newNetNS(t)
	vethPair(t, ns, "m0", "198.18.9.1/24", ns, "m1", "198.18.9.2/24", 1)
	ns.do(t, func() (err error) {
		if m0, err = netlink.LinkByName("m0"); err != nil {
			return err
		}
		m1, err = netlink.LinkByName("m1")
		return err
	})
	return m0, m1, ns
}

func measureFrame(t *testing.T, m0, m1 netlink.Link) []byte {
	return serializeUDP64(t, m0.Attrs().HardwareAddr, m1.Attrs().HardwareAddr)
}

func serializeUDP64(t *testing.T, src, dst []byte) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr("198.18.9.1").AsSlice(), DstIP: netip.MustParseAddr("198.18.9.2").AsSlice()}
	udp := &layers.UDP{SrcPort: 1234, DstPort: 5678}
	udp.SetNetworkLayerForChecksum(ip)
	// 14 + 20 + 8 + 22 = 64 bytes.
	f := serialize(t, &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4},
		ip, udp, gopacket.Payload(make([]byte, 22)))
	if len(f) != 64 {
		t.Fatalf("frame of %d bytes", len(f))
	}
	return f
}

func attachDrop(ifindex int) (link.Link, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpDrop), asm.Return()}})
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	return link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: link.XDPDriverMode})
}

// pinned runs fn on a goroutine locked to cpu.
func pinned(cpu int, fn func()) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := PinCPU(cpu); err != nil {
			panic(err)
		}
		fn()
	}()
	return &wg
}

// blast sends frame from queue 0 of l for d on CPU 0 and returns the frames
// completed.
func blast(impl string, l netlink.Link, frame []byte, d time.Duration) (uint64, string, error) {
	const batch = 64
	var done uint64
	var kernel string
	switch impl {
	case "fastnat":
		iface, err := Load(IfaceSpec{Name: l.Attrs().Name, Role: Outside, Mode: ModeGeneric})
		if err != nil {
			return 0, "", err
		}
		defer iface.Close()
		w, err := Open([]*Interface{iface}, 0, Options{})
		if err != nil {
			return 0, "", err
		}
		defer w.Close()
		p := w.Ports()[0]
		fs := make([]pipeline.Frame, w.FreeFrames())
		n := p.Alloc(fs)
		for i := range fs[:n] {
			fs[i].Buf = append(fs[i].Buf, frame...)
		}
		p.Release(fs[:n])
		pinned(0, func() {
			end := time.Now().Add(d)
			for i := 0; ; i++ {
				if i%1024 == 0 && time.Now().After(end) {
					break
				}
				n := p.Alloc(fs[:batch])
				for j := range fs[:n] {
					fs[j].Buf = fs[j].Buf[:len(frame)]
				}
				k := p.Transmit(fs[:n])
				p.Release(fs[k:n])
				p.Flush()
			}
		}).Wait()
		st := p.Stats()
		done = st.Completed
		kernel = fmt.Sprintf("(kicks %d, again %d, errors %d)", st.Kicks, st.KickAgain, st.KickErrors)
	case "asavie":
		xsk, err := newAsavieSocket(l.Attrs().Index)
		if err != nil {
			return 0, "", err
		}
		defer xsk.Close()
		for _, d := range xsk.GetDescs(4096) {
			copy(xsk.GetFrame(d), frame)
		}
		// The library's own sendudp example, busy polling instead of
		// blocking in Poll.
		pinned(0, func() {
			end := time.Now().Add(d)
			for i := 0; ; i++ {
				if i%1024 == 0 && time.Now().After(end) {
					break
				}
				descs := xsk.GetDescs(min(batch, xsk.NumFreeTxSlots()))
				for j := range descs {
					descs[j].Len = uint32(len(frame))
				}
				xsk.Transmit(descs)
				if n := xsk.NumCompleted(); n > 0 {
					xsk.Complete(n)
				}
			}
		}).Wait()
		st, err := xsk.Stats()
		if err != nil {
			return 0, "", err
		}
		done = st.Completed
	}
	return done, kernel, nil
}

// startReceiver starts counting frames on queue 0 of l, in XDP mode mode,
// on CPU 1.
func startReceiver(impl string, l netlink.Link, mode Mode) (stop func(), count func() uint64, kernel func() string, err error) {
	const batch = 64
	var n atomic.Uint64
	quit := make(chan struct{})
	switch impl {
	case "fastnat":
		iface, err := Load(IfaceSpec{Name: l.Attrs().Name, Role: Outside, Mode: mode})
		if err != nil {
			return nil, nil, nil, err
		}
		if err := iface.SetFilter(Filter{Public: []netip.Addr{netip.MustParseAddr("198.18.9.2")}}); err != nil {
			iface.Close()
			return nil, nil, nil, err
		}
		w, err := Open([]*Interface{iface}, 0, Options{})
		if err == nil {
			err = iface.Attach()
		}
		if err != nil {
			iface.Close()
			return nil, nil, nil, err
		}
		p := w.Ports()[0]
		wg := pinned(1, func() {
			fs := make([]pipeline.Frame, batch)
			for {
				select {
				case <-quit:
					return
				default:
				}
				k := p.Receive(fs)
				p.Release(fs[:k])
				n.Add(uint64(k))
			}
		})
		return func() {
				close(quit)
				wg.Wait()
				w.Close()
				iface.Close()
			}, n.Load, func() string {
				st := p.Stats()
				return fmt.Sprintf("(fill starved %d, kernel: rx dropped %d, rx ring full %d, fill empty %d)",
					st.FillStarved, st.Kernel.Rx_dropped, st.Kernel.Rx_ring_full, st.Kernel.Rx_fill_ring_empty_descs)
			}, nil
	default:
		prog, err := asavie.NewProgram(1)
		if err != nil {
			return nil, nil, nil, err
		}
		asavie.DefaultXdpFlags = unix.XDP_FLAGS_SKB_MODE
		if mode == ModeNative {
			asavie.DefaultXdpFlags = unix.XDP_FLAGS_DRV_MODE
		}
		xsk, err := newAsavieSocket(l.Attrs().Index)
		if err == nil {
			err = prog.Attach(l.Attrs().Index)
		}
		if err == nil {
			err = prog.Register(0, xsk.FD())
		}
		if err != nil {
			prog.Close()
			return nil, nil, nil, err
		}
		wg := pinned(1, func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				// The library's dumpframes example, busy polling.
				if k := xsk.NumFreeFillSlots(); k > 0 {
					xsk.Fill(xsk.GetDescs(k))
				}
				if k := xsk.NumReceived(); k > 0 {
					n.Add(uint64(len(xsk.Receive(min(k, batch)))))
				}
			}
		})
		return func() {
				close(quit)
				wg.Wait()
				// No prog.Detach: it detaches without the mode flag, so a
				// generic-mode program stays and Detach waits for it
				// forever. The device, and the program with it, goes with
				// the run's namespace.
				xsk.Close()
				prog.Close()
			}, n.Load, func() string {
				st, _ := xsk.Stats()
				return fmt.Sprintf("(kernel: rx dropped %d, rx ring full %d, fill empty %d)",
					st.KernelStats.Rx_dropped, st.KernelStats.Rx_ring_full, st.KernelStats.Rx_fill_ring_empty_descs)
			}, nil
	}
}

// newAsavieSocket retries while the queue is still held by the socket of
// the previous run (see bindRetries).
func newAsavieSocket(ifindex int) (*asavie.Socket, error) {
	for i := 0; ; i++ {
		xsk, err := asavie.NewSocket(ifindex, 0, &asavie.SocketOptions{NumFrames: 4096, FrameSize: 2048,
			FillRingNumDescs: 2048, CompletionRingNumDescs: 2048, RxRingNumDescs: 2048, TxRingNumDescs: 2048})
		if err == nil || i == bindRetries || !strings.Contains(err.Error(), "busy") {
			return xsk, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
