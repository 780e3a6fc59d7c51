package afxdp

import "fmt"

// frameState says who owns a UMEM frame. Every transition is checked, so a
// frame released twice, or transmitted after release, stops the process at
// the bug instead of corrupting packets later.
type frameState uint8

const (
	frameFree   frameState = iota // on the worker's free stack
	frameKernel                   // in a fill ring or an unread rx slot
	frameUser                     // lent to the worker by Receive or Alloc
	frameTx                       // in a tx ring, in flight, or in a completion ring
)

var frameStateNames = [...]string{"free", "kernel", "user", "tx"}

func (s frameState) String() string {
	if int(s) < len(frameStateNames) {
		return frameStateNames[s]
	}
	return fmt.Sprintf("frameState(%d)", uint8(s))
}

// framePool is the worker's O(1) free-frame stack over one UMEM, with the
// owner of every frame. It is owned by one worker; no locking.
type framePool struct {
	free  []uint32     // indices of free frames; the top is free[len-1]
	state []frameState // owner of each frame, by index
	shift uint         // log2 of the frame size
	mask  uint64       // frame size - 1
}

func newFramePool(frames int, frameSize int) *framePool {
	p := &framePool{
		free:  make([]uint32, frames),
		state: make([]frameState, frames),
		mask:  uint64(frameSize - 1),
	}
	for frameSize > 1 {
		frameSize >>= 1
		p.shift++
	}
	// Lowest addresses on top, so a fresh worker touches the start of the
	// UMEM first.
	for i := range p.free {
		p.free[i] = uint32(frames - 1 - i)
	}
	return p
}

// available returns the number of free frames.
func (p *framePool) available() int { return len(p.free) }

// index returns the frame that UMEM address addr falls in, checking that it
// is in the UMEM.
func (p *framePool) index(addr uint64) uint32 {
	i := addr >> p.shift
	if i >= uint64(len(p.state)) {
		badAddr(addr)
	}
	return uint32(i)
}

// pop takes a free frame, moves it to state to, and returns its base
// address. ok is false when no frame is free.
func (p *framePool) pop(to frameState) (addr uint64, ok bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	i := p.free[n-1]
	p.free = p.free[:n-1]
	p.state[i] = to
	return uint64(i) << p.shift, true
}

// push returns the frame holding addr to the free stack; it must be in
// state from.
func (p *framePool) push(addr uint64, from frameState) {
	i := p.index(addr)
	p.move(i, from, frameFree)
	p.free = append(p.free, i) // never grows: at most one entry per frame
}

// move changes frame i from state from to state to.
func (p *framePool) move(i uint32, from, to frameState) {
	if p.state[i] != from {
		badTransition(i, p.state[i], from, to)
	}
	p.state[i] = to
}

func badAddr(addr uint64) {
	panic(fmt.Sprintf("afxdp: frame address %#x outside the UMEM", addr))
}

func badTransition(i uint32, have, from, to frameState) {
	panic(fmt.Sprintf("afxdp: frame %d is %v, not %v, so it cannot become %v (released twice, or used after release?)",
		i, have, from, to))
}

// census counts the frames in each state.
func (p *framePool) census() (n [4]int) {
	for _, s := range p.state {
		n[s]++
	}
	return n
}
