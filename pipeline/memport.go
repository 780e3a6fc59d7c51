package pipeline

import (
	"sync"
	"sync/atomic"
	"time"
)

// MemPool is the frame space shared by the memory ports of one worker: a
// fixed set of frames of one size and an O(1) free stack of their handles.
// It stands in for an AF_XDP UMEM in tests and the in-memory benchmark.
//
// Unless made with NewMemPoolUnlocked, its operations take a mutex so that a
// test goroutine may inject frames while the worker runs.
type MemPool struct {
	frameSize int
	mem       []byte
	free      []uint64
	locked    bool
	mu        sync.Mutex
	wake      chan struct{}
}

// NewMemPool allocates n frames of frameSize bytes.
func NewMemPool(n, frameSize int) *MemPool {
	p := NewMemPoolUnlocked(n, frameSize)
	p.locked = true
	return p
}

// NewMemPoolUnlocked is NewMemPool for a pool used by one goroutine only
// (benchmarks): no locking at all.
func NewMemPoolUnlocked(n, frameSize int) *MemPool {
	p := &MemPool{frameSize: frameSize, mem: make([]byte, n*frameSize), free: make([]uint64, n), wake: make(chan struct{}, 1)}
	for i := range p.free {
		p.free[i] = uint64(n - 1 - i)
	}
	return p
}

// Free reports how many frames are in the free stack.
func (p *MemPool) Free() int {
	if p.locked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	return len(p.free)
}

func (p *MemPool) get() (Frame, bool) {
	if p.locked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	n := len(p.free)
	if n == 0 {
		return Frame{}, false
	}
	h := p.free[n-1]
	p.free = p.free[:n-1]
	off := int(h) * p.frameSize
	return Frame{Buf: p.mem[off : off : off+p.frameSize], Handle: h}, true
}

func (p *MemPool) put(h uint64) {
	if p.locked {
		p.mu.Lock()
		defer p.mu.Unlock()
	}
	p.free = append(p.free, h)
}

// MemPort is a Port backed by memory, for tests and benchmarks. Frames
// given to Inject are received in order; frames transmitted are kept for
// Sent (or, with SetSink, handed to a function and freed at once). It is
// owned by one worker like any Port, except that Inject, Sent,
// SetNeighbor, SetNoRoute, SetMTU and SetAddr may be called from a test
// goroutine: they take a mutex that the worker's methods also take (or
// store atomically), unless the port runs a generator (benchmarks), which
// is single-goroutine.
//
// Its next hops are a table: an address given to SetNeighbor is resolved,
// one given to SetNoRoute has no route, any other is pending forever. Its
// MTU is 1500 until SetMTU; its own address 0 until SetAddr; it has no
// connected prefix (and so no broadcast address) until SetPrefix.
type MemPort struct {
	name    string
	mac     [6]byte
	pool    *MemPool
	mu      sync.Mutex
	rx      []Frame
	sent    [][]byte
	sink    func([]Frame)
	gen     func([]Frame)
	neigh   map[uint32][6]byte
	noRoute map[uint32]bool
	mtu     atomic.Int64
	addr    atomic.Uint32
	bcast   atomic.Uint32 // the connected prefix's broadcast address, 0 none
}

// DefaultMemMTU is a memory port's MTU until SetMTU.
const DefaultMemMTU = 1500

// NewMemPort returns a memory port named name with hardware address mac,
// taking frames from pool.
func NewMemPort(name string, mac [6]byte, pool *MemPool) *MemPort {
	m := &MemPort{name: name, mac: mac, pool: pool, neigh: make(map[uint32][6]byte), noRoute: make(map[uint32]bool)}
	m.mtu.Store(DefaultMemMTU)
	return m
}

// SetNeighbor makes NextHop(addr) answer mac.
func (m *MemPort) SetNeighbor(addr uint32, mac [6]byte) {
	m.mu.Lock()
	m.neigh[addr] = mac
	delete(m.noRoute, addr)
	m.mu.Unlock()
}

// SetNoRoute makes NextHop(addr) answer HopNoRoute.
func (m *MemPort) SetNoRoute(addr uint32) {
	m.mu.Lock()
	m.noRoute[addr] = true
	delete(m.neigh, addr)
	m.mu.Unlock()
}

// SetMTU sets the port's MTU (the largest IP packet it sends).
func (m *MemPort) SetMTU(mtu int) { m.mtu.Store(int64(mtu)) }

// SetAddr sets the port's own address (host byte order), the source of the
// ICMP errors the worker sends through it.
func (m *MemPort) SetAddr(a uint32) { m.addr.Store(a) }

// SetPrefix sets the port's connected prefix (address in host byte order
// and length), whose directed broadcast address Broadcast recognises.
func (m *MemPort) SetPrefix(addr uint32, bits int) {
	var b uint32
	if bits < 31 {
		b = addr | ^uint32(0)>>bits
	}
	m.bcast.Store(b)
}

// SetSink makes the port pass every batch of transmitted frames to f
// (instead of keeping copies for Sent) and free them at once.
func (m *MemPort) SetSink(f func([]Frame)) { m.sink = f }

// SetGenerator makes Receive produce frames forever: Receive takes as many
// free frames as it may return, each Buf empty with the pool's frame size
// as capacity, and gen writes a frame into each and sets its length. Only
// one goroutine may use a generator's port and its pool (benchmarks: no
// locking at all). Frames come back from the worker translated; gen
// writes every byte that matters.
func (m *MemPort) SetGenerator(gen func([]Frame)) { m.gen = gen }

// Inject queues a copy of frame for reception. It reports false when the
// pool has no free frame.
func (m *MemPort) Inject(frame []byte) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.pool.get()
	if !ok {
		return false
	}
	f.Buf = append(f.Buf[:0], frame...)
	m.rx = append(m.rx, f)
	select {
	case m.pool.wake <- struct{}{}:
	default:
	}
	return true
}

// Sent returns copies of the frames transmitted since the last call.
func (m *MemPort) Sent() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sent
	m.sent = nil
	return s
}

// Name implements Port.
func (m *MemPort) Name() string { return m.name }

// MAC implements Port.
func (m *MemPort) MAC() [6]byte { return m.mac }

// Receive implements Port.
func (m *MemPort) Receive(fs []Frame) int {
	if m.gen != nil {
		// A generator's port is one goroutine's: take the frames from
		// the free stack at once, without the pool's lock.
		p := m.pool
		n := min(len(fs), len(p.free))
		top := len(p.free) - n
		for i, h := range p.free[top:] {
			off := int(h) * p.frameSize
			fs[i] = Frame{Buf: p.mem[off : off : off+p.frameSize], Handle: h}
		}
		p.free = p.free[:top]
		m.gen(fs[:n])
		return n
	}
	m.mu.Lock()
	n := copy(fs, m.rx)
	m.rx = m.rx[:copy(m.rx, m.rx[n:])]
	m.mu.Unlock()
	return n
}

// Transmit implements Port.
func (m *MemPort) Transmit(fs []Frame) int {
	if m.sink != nil {
		m.sink(fs)
		if !m.pool.locked {
			for _, f := range fs {
				m.pool.free = append(m.pool.free, f.Handle)
			}
			return len(fs)
		}
		for _, f := range fs {
			m.pool.put(f.Handle)
		}
		return len(fs)
	}
	m.mu.Lock()
	for _, f := range fs {
		m.sent = append(m.sent, append([]byte(nil), f.Buf...))
		m.pool.put(f.Handle)
	}
	m.mu.Unlock()
	return len(fs)
}

// Release implements Port.
func (m *MemPort) Release(fs []Frame) {
	for _, f := range fs {
		m.pool.put(f.Handle)
	}
}

// Flush implements Port.
func (m *MemPort) Flush() {}

// NextHop implements Port.
func (m *MemPort) NextHop(addr uint32) Hop {
	if m.gen == nil && m.sink == nil {
		m.mu.Lock()
		defer m.mu.Unlock()
	}
	if mac, ok := m.neigh[addr]; ok {
		return Hop{State: HopResolved, Addr: addr, MAC: mac}
	}
	if m.noRoute[addr] {
		return Hop{}
	}
	return Hop{State: HopPending, Addr: addr}
}

// MTU implements Port.
func (m *MemPort) MTU() int { return int(m.mtu.Load()) }

// Addr implements Port.
func (m *MemPort) Addr(uint32) uint32 { return m.addr.Load() }

// Broadcast implements Port.
func (m *MemPort) Broadcast(a uint32) bool { b := m.bcast.Load(); return b != 0 && a == b }

// Alloc implements Port.
func (m *MemPort) Alloc(fs []Frame) int {
	for i := range fs {
		f, ok := m.pool.get()
		if !ok {
			return i
		}
		fs[i] = f
	}
	return len(fs)
}

// Size returns the number of frames the pool holds.
func (p *MemPool) Size() int { return len(p.mem) / p.frameSize }

// Wait implements Waker for the worker whose ports share this pool: it
// returns when a frame is injected into any of them, or after timeout.
func (p *MemPool) Wait(timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.wake:
	case <-t.C:
	}
}
