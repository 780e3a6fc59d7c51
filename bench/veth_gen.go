package bench

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/pipeline"
)

// vethBatch is how many frames the generator queues per kick.
const vethBatch = 64

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

	probeSeq atomic.Uint32 // probes sent so far
	passes   atomic.Uint64 // complete passes over the flow set
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
	all := make([]pipeline.Frame, g.worker.FreeFrames())
	n := g.port.Alloc(all)
	for i := range all[:n] {
		all[i].Buf = append(all[i].Buf, frames.template...)
	}
	g.port.Release(all[:n])
	return g, nil
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
func (g *vethGenerator) run(plan vethPlan, stop *atomic.Bool) {
	p, fs, flows := g.port, g.fs, g.frames.flows
	start := time.Now()
	nextProbe := start
	var sent uint64
	for !stop.Load() {
		want := uint64(len(fs))
		if plan.Packets > 0 {
			if sent >= plan.Packets {
				break
			}
			want = min(want, plan.Packets-sent)
		}
		now := time.Now()
		if plan.Rate > 0 {
			// Frames due by now; spin (the thread is the generator's own).
			due := uint64(now.Sub(start).Seconds() * plan.Rate)
			if due <= sent {
				p.Flush()
				continue
			}
			want = min(want, due-sent)
		}
		probe := plan.ProbeEvery > 0 && !now.Before(nextProbe)
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
				nextProbe = nextProbe.Add(plan.ProbeEvery)
				if nextProbe.Before(now) {
					nextProbe = now.Add(plan.ProbeEvery)
				}
				g.frames.putProbe(b, g.probeSeq.Load(), time.Now().UnixNano())
				g.probeSeq.Add(1)
				continue
			}
			g.frames.put(b, flows[g.next])
			g.next++
			if g.next == len(flows) {
				g.next = 0
				g.passes.Add(1)
			}
		}
		k := p.Transmit(fs[:n])
		p.Release(fs[k:n])
		p.Flush()
		sent += uint64(k)
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
