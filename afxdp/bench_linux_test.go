package afxdp

import (
	"testing"

	"github.com/fastnat/fastnat/pipeline"
)

// fakeKernel is the kernel's side of one socket's rings, in Go memory, for
// benchmarking the user-space half of the datapath without the kernel's
// cost (which dominates on veth and varies with machine load).
type fakeKernel struct {
	fill, comp, rx, tx shared
	s                  *xsk
}

func newFakeKernel(size uint32) *fakeKernel {
	k := &fakeKernel{}
	k.s = &xsk{
		fd:        -1,
		fill:      testRing(&k.fill, 0, size),
		comp:      testRing(&k.comp, 0, size),
		rx:        testRing(&k.rx, 0, size),
		tx:        testRing(&k.tx, 0, size),
		fillDescs: make([]uint64, size),
		compDescs: make([]uint64, size),
		rxDescs:   make([]desc, size),
		txDescs:   make([]desc, size),
	}
	k.s.fill.initProducer()
	k.s.tx.initProducer()
	return k
}

// receive moves up to n fill-ring frames to the rx ring as packets of
// length l, as the kernel does when packets arrive.
func (k *fakeKernel) receive(n, l uint32) {
	mask := k.s.fill.mask
	fc, fp := k.fill.consumer.Load(), k.fill.producer.Load()
	rp := k.rx.producer.Load()
	n = min(n, fp-fc, k.s.rx.size-(rp-k.rx.consumer.Load()))
	for i := range n {
		k.s.rxDescs[(rp+i)&mask] = desc{Addr: k.s.fillDescs[(fc+i)&mask] + headroom, Len: l}
	}
	k.fill.consumer.Store(fc + n)
	k.rx.producer.Store(rp + n)
}

// transmit moves the tx ring to the completion ring, as a kick does.
func (k *fakeKernel) transmit() {
	mask := k.s.tx.mask
	tc, tp := k.tx.consumer.Load(), k.tx.producer.Load()
	cp := k.comp.producer.Load()
	n := min(tp-tc, k.s.comp.size-(cp-k.comp.consumer.Load()))
	for i := range n {
		k.s.compDescs[(cp+i)&mask] = k.s.txDescs[(tc+i)&mask].Addr
	}
	k.tx.consumer.Store(tc + n)
	k.comp.producer.Store(cp + n)
}

func newFakePort(frames, frameSize int, k *fakeKernel) *Port {
	p := &Port{
		name: "fake/q0",
		umem: make([]byte, frames*frameSize),
		pool: newFramePool(frames, frameSize),
		xsk:  k.s,
	}
	p.refillAll()
	return p
}

// BenchmarkForwardPath is one worker's user-space work per burst of 64
// frames on a socket: Receive, Transmit them back, Flush (completions and
// refill), against a simulated kernel. "stack" is fastnat's O(1) free-frame
// stack; "scan" is the same rings with frames found by scanning a free
// flag per frame, the way asavie/xdp's GetDescs does.
func BenchmarkForwardPath(b *testing.B) {
	const burst, frames, size = 64, 4096, 2048
	b.Run("stack", func(b *testing.B) {
		k := newFakeKernel(size)
		p := newFakePort(frames, 2048, k)
		fs := make([]pipeline.Frame, burst)
		b.ReportAllocs()
		for b.Loop() {
			k.receive(burst, 64)
			n := p.Receive(fs)
			t := p.Transmit(fs[:n])
			p.Release(fs[t:n])
			k.transmit()
			p.Flush()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/pkt")
		b.ReportMetric(float64(b.N*burst)/b.Elapsed().Seconds()/1e6, "Mpps")
	})
	b.Run("scan", func(b *testing.B) {
		k := newFakeKernel(size)
		p := newScanPort(frames, 2048, k)
		b.ReportAllocs()
		for b.Loop() {
			k.receive(burst, 64)
			p.fill(p.getDescs(p.freeFillSlots()))
			d := p.receive(burst)
			p.transmit(d)
			k.transmit()
			p.complete()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/pkt")
		b.ReportMetric(float64(b.N*burst)/b.Elapsed().Seconds()/1e6, "Mpps")
	})
}

// scanPort is the baseline: asavie/xdp's frame bookkeeping (a free flag per
// frame, GetDescs scanning for free ones from the start of the UMEM) over
// the same rings.
type scanPort struct {
	s         *xsk
	free      []bool
	frameSize uint64
	descs     []desc
	rxDescs   []desc
}

func newScanPort(frames, frameSize int, k *fakeKernel) *scanPort {
	p := &scanPort{s: k.s, free: make([]bool, frames), frameSize: uint64(frameSize),
		descs: make([]desc, 0, frames), rxDescs: make([]desc, 0, k.s.rx.size)}
	for i := range p.free {
		p.free[i] = true
	}
	p.fill(p.getDescs(p.freeFillSlots()))
	return p
}

func (p *scanPort) freeFillSlots() int { return int(p.s.fill.free(p.s.fill.size)) }

func (p *scanPort) getDescs(n int) []desc {
	d := p.descs[:0]
	for i := 0; i < len(p.free) && len(d) < n; i++ {
		if p.free[i] {
			d = append(d, desc{Addr: uint64(i) * p.frameSize, Len: uint32(p.frameSize)})
		}
	}
	return d
}

func (p *scanPort) fill(d []desc) {
	n := min(uint32(len(d)), p.s.fill.free(uint32(len(d))))
	for i := range n {
		p.s.fillDescs[(p.s.fill.cachedProd+i)&p.s.fill.mask] = d[i].Addr
		p.free[d[i].Addr/p.frameSize] = false
	}
	p.s.fill.submit(n)
}

func (p *scanPort) receive(max uint32) []desc {
	n := p.s.rx.avail(max)
	d := p.rxDescs[:0]
	for i := range n {
		rd := p.s.rxDescs[(p.s.rx.cachedCons+i)&p.s.rx.mask]
		d = append(d, rd)
		p.free[rd.Addr/p.frameSize] = true
	}
	p.s.rx.release(n)
	return d
}

func (p *scanPort) transmit(d []desc) {
	n := min(uint32(len(d)), p.s.tx.free(uint32(len(d))))
	for i := range n {
		p.s.txDescs[(p.s.tx.cachedProd+i)&p.s.tx.mask] = d[i]
		p.free[d[i].Addr/p.frameSize] = false
	}
	p.s.tx.submit(n)
}

func (p *scanPort) complete() {
	n := p.s.comp.avail(p.s.comp.size)
	for i := range n {
		p.free[p.s.compDescs[(p.s.comp.cachedCons+i)&p.s.comp.mask]/p.frameSize] = true
	}
	p.s.comp.release(n)
}
