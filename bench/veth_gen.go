package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/pipeline"
)

// vethBatch is how many frames the generator queues per kick.
const vethBatch = 64

// vethSndbuf is the generator socket's send buffer. In copy mode every
// frame in flight is an skb charged to the socket until it is freed at the
// end of its path, so the default buffer (about 250 small frames) would
// make the generator wait for the DUT: a closed loop in which the kernel
// never drops, its queue never fills, and "offered" means nothing. With a
// large buffer the generator offers what it can and the DUT drops what it
// cannot take, for every DUT alike.
const vethSndbuf = 32 << 20

// vethPeerRing is the size of a veth's NAPI ring (VETH_RING_SIZE), where
// skbs wait for the client's XDP sink.
const vethPeerRing = 256

// vethThread is one OS thread, pinned to a CPU, that runs the generator's
// loops for a whole RunVeth. It is locked before any DUT process starts
// and lives until the end: a process started with Pdeathsig dies with the
// thread that forked it, so a thread that ends (a locked goroutine that
// returns) must never be one that forked a DUT.
type vethThread struct {
	work chan func()
	done chan struct{}
	cpu  int
	err  error
}

// newVethThread starts the thread, pinned to cpu (-1: not pinned).
func newVethThread(cpu int) (*vethThread, error) {
	t := &vethThread{work: make(chan func()), done: make(chan struct{}), cpu: cpu}
	ready := make(chan error, 1)
	go func() {
		defer close(t.done)
		var err error
		if cpu >= 0 {
			err = afxdp.PinCPU(cpu)
		} else {
			runtime.LockOSThread()
		}
		ready <- err
		if err != nil {
			return
		}
		for fn := range t.work {
			fn()
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("generator thread: %w", err)
	}
	return t, nil
}

// run runs fn on the thread and returns when it has finished.
func (t *vethThread) run(fn func()) {
	done := make(chan struct{})
	t.work <- func() { fn(); close(done) }
	<-done
}

// start runs fn on the thread and returns at once; the channel closes
// when fn has finished.
func (t *vethThread) start(fn func()) <-chan struct{} {
	done := make(chan struct{})
	t.work <- func() { fn(); close(done) }
	return done
}

// close ends the thread (its goroutine exits locked, so the runtime
// discards the pinned thread).
func (t *vethThread) close() {
	close(t.work)
	<-t.done
}

// vethGenerator transmits the frame set on queue 0 of the inside host's
// interface through an AF_XDP socket of fastnat's own afxdp package (copy
// mode on veth). No XDP program is attached there: the socket only sends.
type vethGenerator struct {
	iface  *afxdp.Interface
	worker *afxdp.Worker
	port   *afxdp.Port
	frames *vethFrames
	size   int // bytes per frame without FCS
	fs     []pipeline.Frame
	next   int // index of the next flow in frames.flows
	// total is how many UMEM frames the generator can use; maxOut how
	// many of them may be in flight (queued on the tx ring or inside the
	// kernel as skbs) at once.
	total, maxOut int

	probeSeq atomic.Uint32 // probes sent so far
}

// newVethGenerator opens the generator's socket on link of namespace ns
// and writes the template into every frame of its UMEM, so that a packet
// needs only its flow's ports and checksum.
func newVethGenerator(ns, link string, frames *vethFrames) (_ *vethGenerator, err error) {
	g := &vethGenerator{frames: frames, size: len(frames.template), fs: make([]pipeline.Frame, vethBatch)}
	err = testnet.Do(ns, func() error {
		var err error
		g.iface, err = afxdp.Load(afxdp.IfaceSpec{Name: link, Role: afxdp.Inside, Mode: afxdp.ModeGeneric})
		if err != nil {
			return err
		}
		g.worker, err = afxdp.Open([]*afxdp.Interface{g.iface}, 0, afxdp.Options{})
		return err
	})
	if err != nil {
		g.Close()
		return nil, fmt.Errorf("generator on %s in %s: %w", link, ns, err)
	}
	g.port = g.worker.Ports()[0]
	if err := syscall.SetsockoptInt(g.port.FD(), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, vethSndbuf); err != nil {
		g.Close()
		return nil, fmt.Errorf("generator send buffer: %w", err)
	}
	all := make([]pipeline.Frame, g.worker.FreeFrames())
	n := g.port.Alloc(all)
	for i := range all[:n] {
		all[i].Buf = append(all[i].Buf, frames.template...)
	}
	g.port.Release(all[:n])
	g.total = n
	g.maxOut = min(n, maxInFlight())
	return g, nil
}

// maxInFlight bounds the generator's frames in flight: enough to fill the
// router's receive backlog (where the kernel DUT queues and drops) and the
// client's veth ring, plus two batches, and no more, so that the
// generator's own tx ring stays short. A probe queued behind a full tx
// ring would time the generator, not the DUT. (fastnat's generic XDP frees
// each skb as it copies it to its socket, so frames return at once.)
func maxInFlight() int {
	backlog := 1000 // the kernel's default
	if b, err := os.ReadFile("/proc/sys/net/core/netdev_max_backlog"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v > 0 {
			backlog = v
		}
	}
	return backlog + vethPeerRing + 2*vethBatch
}

// vethPlan is one run of the generator loop.
type vethPlan struct {
	// Packets to send; 0 sends until stop is set.
	Packets uint64
	// Rate in frames per second; 0 is as fast as the socket takes them.
	Rate float64
	// ProbeEvery is the interval between latency probes; 0 sends none.
	ProbeEvery time.Duration
	// ProbesOnly sends nothing but probes (to check the path).
	ProbesOnly bool
}

// run sends according to plan until it is done or stop is set. Probes
// replace normal frames in the stream, so they do not add to the rate.
//
// The loop reads the clock only when it is about to send and a rate or
// probes need it, and then only the monotonic clock (one vDSO call; the
// wall clock is read for a probe's stamp alone): reading both clocks on
// every turn, waiting for frames in flight included, had taken 13 % of the
// generator's CPU against the kernel DUT.
func (g *vethGenerator) run(plan vethPlan, stop *atomic.Bool) {
	p, fs, flows := g.port, g.fs, g.frames.flows
	start := time.Now()
	var nextProbe, last time.Duration
	timed := plan.Rate > 0 || plan.ProbeEvery > 0
	// With a rate the generator sends from a token bucket holding at most
	// two batches: after the thread was kept off its CPU it resumes at the
	// rate instead of catching up with a burst that would overflow the
	// DUT's queues.
	tokens, burst := 0.0, float64(2*vethBatch)
	var sent uint64
	for !stop.Load() {
		want := uint64(len(fs))
		if plan.Packets > 0 {
			if sent >= plan.Packets {
				break
			}
			want = min(want, plan.Packets-sent)
		}
		if out := g.total - g.worker.FreeFrames(); out >= g.maxOut {
			p.Flush() // recycle completions
			continue
		} else {
			want = min(want, uint64(g.maxOut-out))
		}
		var now time.Duration
		if timed {
			now = time.Since(start)
		}
		if plan.Rate > 0 {
			tokens = min(burst, tokens+(now-last).Seconds()*plan.Rate)
			last = now
			if tokens < 1 {
				p.Flush() // spin: the thread is the generator's own
				continue
			}
			want = min(want, uint64(tokens))
		}
		probe := plan.ProbeEvery > 0 && now >= nextProbe
		if plan.ProbesOnly {
			if !probe {
				p.Flush()
				continue
			}
			want = 1
		}
		n := p.Alloc(fs[:want])
		if n == 0 {
			p.Flush() // recycle completions
			continue
		}
		for j := range fs[:n] {
			b := fs[j].Buf[:g.size]
			fs[j].Buf = b
			if probe {
				probe = false
				nextProbe += plan.ProbeEvery
				if nextProbe < now {
					nextProbe = now + plan.ProbeEvery
				}
				g.frames.putProbe(b, g.probeSeq.Load(), time.Now().UnixNano())
				g.probeSeq.Add(1)
				continue
			}
			g.frames.put(b, flows[g.next])
			if g.next++; g.next == len(flows) {
				g.next = 0
			}
		}
		k := p.Transmit(fs[:n])
		p.Release(fs[k:n])
		p.Flush()
		sent += uint64(k)
		tokens -= float64(k)
	}
	p.Flush()
}

// completed returns how many frames the kernel has taken from the socket.
func (g *vethGenerator) completed() uint64 { return g.port.Stats().Completed }

// Close frees the socket and the interface.
func (g *vethGenerator) Close() error {
	var err error
	if g.worker != nil {
		err = g.worker.Close()
	}
	if g.iface != nil {
		if e := g.iface.Close(); err == nil {
			err = e
		}
	}
	return err
}
