package afxdp

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
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
// socket on a veth pair, on one core: one goroutine pinned to CPU 0 sends a
// burst of 64 frames of 64 bytes (UDP) from an AF_XDP socket on one end
// and then reads whatever has arrived on an AF_XDP socket on the other.
// In copy mode the kernel does all of a burst's work inside the sendto
// that pushes it (build the skbs, cross the veth, run the receiver's XDP
// program, copy into its UMEM), so when the loop comes round to read, the
// burst is there, and frames per second measure the whole path on one
// core. The kernel's part is the same for both libraries; the difference
// is the rings. Run it alone:
//
//	FASTNAT_MEASURE=1 go test ./afxdp -run TestMeasureRings -v
//
// (FASTNAT_MEASURE_ROUNDS, default 5, and FASTNAT_MEASURE_SECONDS, default 1,
// set the number and length of the runs.) Rows:
//   - tx: the sender under test, the other end dropping everything in a
//     native XDP program; frames completed per second;
//   - rx generic, rx native: fastnat's sender, the receiver under test with
//     its XDP program in that mode; frames received per second.
//
// Every run gets a fresh namespace and veth pair (asavie's Close leaves its
// rings mapped, so its socket keeps the queue until the device goes), and
// the libraries alternate round by round, so that other load on the
// machine hits both alike; the report gives the median and the best run,
// and the median of the per-round ratios.
func TestMeasureRings(t *testing.T) {
	if os.Getenv("FASTNAT_MEASURE") == "" {
		t.Skip("set FASTNAT_MEASURE=1 to measure")
	}
	requireXDP(t)
	rounds, secs := 5, 1
	if s := os.Getenv("FASTNAT_MEASURE_ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	if s := os.Getenv("FASTNAT_MEASURE_SECONDS"); s != "" {
		fmt.Sscan(s, &secs)
	}
	d := time.Duration(secs) * time.Second
	type row struct {
		name     string
		mode     Mode // receiver's XDP mode; ModeAuto: no receiver, a drop program
		sender   func(impl string) string
		receiver func(impl string) string
	}
	fixed := func(string) string { return "fastnat" }
	same := func(impl string) string { return impl }
	rows := []row{
		{"tx", ModeAuto, same, nil},
		{"rx generic", ModeGeneric, fixed, same},
		{"rx native", ModeNative, fixed, same},
	}
	impls := []string{"fastnat", "asavie"}
	pps := map[string][]float64{}   // row/impl → per round
	ratio := map[string][]float64{} // row → per round fastnat/asavie
	for r := range rounds {
		for _, rw := range rows {
			var got [2]float64
			for k := range impls {
				impl := impls[(k+r)%2] // alternate who goes first
				t.Run(fmt.Sprintf("%s/%s/%d", rw.name, impl, r), func(t *testing.T) {
					m0, m1, ns := measurePair(t)
					var snd sender
					var rcv receiver
					ns.do(t, func() (err error) {
						if rw.receiver == nil {
							var drop link.Link
							if drop, err = attachDrop(m1.Attrs().Index); err != nil {
								return err
							}
							t.Cleanup(func() { drop.Close() })
						} else if rcv, err = newReceiver(rw.receiver(impl), m1, rw.mode); err != nil {
							return err
						}
						snd, err = newSender(rw.sender(impl), m0, measureFrame(t, m0, m1))
						return err
					})
					defer snd.close()
					if rcv != nil {
						defer rcv.close()
					}
					var frames uint64
					var cpu time.Duration
					pinned(0, func() {
						start := threadCPU()
						end := time.Now().Add(d)
						for i := 0; i%64 != 0 || time.Now().Before(end); i++ {
							snd.send(64)
							if rcv != nil {
								frames += uint64(rcv.drain())
							}
						}
						cpu = threadCPU() - start
					}).Wait()
					note := snd.note()
					if rcv == nil {
						frames = snd.completed()
					} else {
						note = rcv.note()
					}
					// Per second of the thread's own CPU time, which
					// includes the kernel's work in its syscalls and the
					// softirqs they run, and excludes the time other
					// processes on this shared machine take the core.
					p := float64(frames) / cpu.Seconds()
					t.Logf("%.3f Mpps per CPU-second (%.3f Mpps wall, %.0f%% of the core) %s",
						p/1e6, float64(frames)/d.Seconds()/1e6, 100*cpu.Seconds()/d.Seconds(), note)
					pps[rw.name+"/"+impl] = append(pps[rw.name+"/"+impl], p)
					got[(k+r)%2] = p
				})
			}
			if got[1] > 0 {
				ratio[rw.name] = append(ratio[rw.name], got[0]/got[1])
			}
		}
	}
	t.Logf("%d rounds of %v on one core, Mpps per CPU-second; load average %s", rounds, d, loadAvg())
	for _, rw := range rows {
		for _, impl := range impls {
			v := pps[rw.name+"/"+impl]
			t.Logf("%-11s %-8s median %.3f Mpps, best %.3f Mpps", rw.name, impl, median(v)/1e6, slices.Max(v)/1e6)
		}
		t.Logf("%-11s fastnat/asavie: median of per-round ratios %.2f", rw.name, median(ratio[rw.name]))
	}
	for _, impl := range impls {
		t.Logf("%s rx native/generic: %.2f", impl, median(pps["rx native/"+impl])/median(pps["rx generic/"+impl]))
	}
}

// threadCPU returns the calling thread's CPU time.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
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
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: netip.MustParseAddr("198.18.9.1").AsSlice(), DstIP: netip.MustParseAddr("198.18.9.2").AsSlice()}
	udp := &layers.UDP{SrcPort: 1234, DstPort: 5678}
	udp.SetNetworkLayerForChecksum(ip)
	// 14 + 20 + 8 + 22 = 64 bytes.
	f := serialize(t, &layers.Ethernet{SrcMAC: m0.Attrs().HardwareAddr, DstMAC: m1.Attrs().HardwareAddr,
		EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload(make([]byte, 22)))
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

type sender interface {
	send(n int)
	completed() uint64
	note() string
	close()
}

type receiver interface {
	drain() int
	note() string
	close()
}

func newSender(impl string, l netlink.Link, frame []byte) (sender, error) {
	if impl == "asavie" {
		xsk, err := newAsavieSocket(l.Attrs().Index)
		if err != nil {
			return nil, err
		}
		for _, d := range xsk.GetDescs(4096) {
			copy(xsk.GetFrame(d), frame)
		}
		return &asavieSender{xsk: xsk, n: len(frame)}, nil
	}
	iface, err := Load(IfaceSpec{Name: l.Attrs().Name, Role: Outside, Mode: ModeGeneric})
	if err != nil {
		return nil, err
	}
	w, err := Open([]*Interface{iface}, 0, Options{})
	if err != nil {
		iface.Close()
		return nil, err
	}
	s := &fastnatSender{iface: iface, w: w, p: w.Ports()[0], fs: make([]pipeline.Frame, w.FreeFrames()), n: len(frame)}
	n := s.p.Alloc(s.fs)
	for i := range s.fs[:n] {
		s.fs[i].Buf = append(s.fs[i].Buf, frame...)
	}
	s.p.Release(s.fs[:n])
	return s, nil
}

type fastnatSender struct {
	iface *Interface
	w     *Worker
	p     *Port
	fs    []pipeline.Frame
	n     int
}

func (s *fastnatSender) send(n int) {
	n = s.p.Alloc(s.fs[:n])
	for j := range s.fs[:n] {
		s.fs[j].Buf = s.fs[j].Buf[:s.n]
	}
	k := s.p.Transmit(s.fs[:n])
	s.p.Release(s.fs[k:n])
	s.p.Flush()
}

func (s *fastnatSender) completed() uint64 { return s.p.Stats().Completed }

func (s *fastnatSender) note() string {
	st := s.p.Stats()
	return fmt.Sprintf("(kicks %d, again %d, errors %d)", st.Kicks, st.KickAgain, st.KickErrors)
}

func (s *fastnatSender) close() {
	s.w.Close()
	s.iface.Close()
}

// asavieSender is the library's sendudp example, without the blocking Poll.
type asavieSender struct {
	xsk *asavie.Socket
	n   int
}

func (s *asavieSender) send(n int) {
	descs := s.xsk.GetDescs(min(n, s.xsk.NumFreeTxSlots()))
	for j := range descs {
		descs[j].Len = uint32(s.n)
	}
	s.xsk.Transmit(descs)
	if c := s.xsk.NumCompleted(); c > 0 {
		s.xsk.Complete(c)
	}
}

func (s *asavieSender) completed() uint64 {
	st, _ := s.xsk.Stats()
	return st.Completed
}

func (s *asavieSender) note() string { return "" }
func (s *asavieSender) close()       { s.xsk.Close() }

func newReceiver(impl string, l netlink.Link, mode Mode) (receiver, error) {
	if impl == "asavie" {
		prog, err := asavie.NewProgram(1)
		if err != nil {
			return nil, err
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
			return nil, err
		}
		return &asavieReceiver{xsk: xsk, prog: prog}, nil
	}
	iface, err := Load(IfaceSpec{Name: l.Attrs().Name, Role: Outside, Mode: mode})
	if err != nil {
		return nil, err
	}
	err = iface.SetFilter(Filter{Public: []netip.Addr{netip.MustParseAddr("198.18.9.2")}})
	var w *Worker
	if err == nil {
		w, err = Open([]*Interface{iface}, 0, Options{})
	}
	if err == nil {
		err = iface.Attach()
	}
	if err != nil {
		iface.Close()
		return nil, err
	}
	return &fastnatReceiver{iface: iface, w: w, p: w.Ports()[0], fs: make([]pipeline.Frame, 64)}, nil
}

type fastnatReceiver struct {
	iface *Interface
	w     *Worker
	p     *Port
	fs    []pipeline.Frame
}

func (r *fastnatReceiver) drain() (total int) {
	for {
		n := r.p.Receive(r.fs)
		if n == 0 {
			return total
		}
		r.p.Release(r.fs[:n])
		total += n
	}
}

func (r *fastnatReceiver) note() string {
	st := r.p.Stats()
	return fmt.Sprintf("(fill starved %d, kernel: rx dropped %d, rx ring full %d, fill empty %d)",
		st.FillStarved, st.Kernel.Rx_dropped, st.Kernel.Rx_ring_full, st.Kernel.Rx_fill_ring_empty_descs)
}

func (r *fastnatReceiver) close() {
	r.w.Close()
	r.iface.Close()
}

// asavieReceiver is the library's dumpframes example, without the blocking
// Poll.
type asavieReceiver struct {
	xsk  *asavie.Socket
	prog *asavie.Program
}

func (r *asavieReceiver) drain() (total int) {
	for {
		if k := r.xsk.NumFreeFillSlots(); k > 0 {
			r.xsk.Fill(r.xsk.GetDescs(k))
		}
		k := r.xsk.NumReceived()
		if k == 0 {
			return total
		}
		total += len(r.xsk.Receive(min(k, 64)))
	}
}

func (r *asavieReceiver) note() string {
	st, _ := r.xsk.Stats()
	return fmt.Sprintf("(kernel: rx dropped %d, rx ring full %d, fill empty %d)",
		st.KernelStats.Rx_dropped, st.KernelStats.Rx_ring_full, st.KernelStats.Rx_fill_ring_empty_descs)
}

// close leaves the program attached: Program.Detach detaches without the
// mode flag, so a generic-mode program stays and Detach waits for it
// forever. The device, and the program with it, goes with the run's
// namespace.
func (r *asavieReceiver) close() {
	r.xsk.Close()
	r.prog.Close()
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
