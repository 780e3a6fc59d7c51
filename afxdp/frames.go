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

// push returns the frame holding UMEM address addr to the free stack. It
// reports false, changing nothing, unless the frame is in state from; the
// caller then calls bad, out of line, which keeps push inlinable.
func (p *framePool) push(addr uint64, from frameState) bool {
	i := addr >> p.shift
	if i >= uint64(len(p.state)) || p.state[i] != from {
		return false
	}
	p.state[i] = frameFree
	p.free = p.free[:len(p.free)+1] // never grows: one entry per frame at most
	p.free[len(p.free)-1] = uint32(i)
	return true
}

// take moves the frame holding addr from state from to state to, and
// reports false, changing nothing, if it is not in state from.
func (p *framePool) take(addr uint64, from, to frameState) bool {
	i := addr >> p.shift
	if i >= uint64(len(p.state)) || p.state[i] != from {
		return false
	}
	p.state[i] = to
	return true
}

// move is take for cold paths: a frame in the wrong state panics.
func (p *framePool) move(addr uint64, from, to frameState) {
	if !p.take(addr, from, to) {
		p.bad(addr, from, to)
	}
}

// release is push for cold paths.
func (p *framePool) release(addr uint64, from frameState) {
	if !p.push(addr, from) {
		p.bad(addr, from, frameFree)
	}
}

//go:noinline
func (p *framePool) bad(addr uint64, from, to frameState) {
	i := addr >> p.shift
	if i >= uint64(len(p.state)) {
		panic(fmt.Sprintf("afxdp: frame address %#x outside the UMEM", addr))
	}
	panic(fmt.Sprintf("afxdp: frame %d is %v, not %v, so it cannot become %v (released twice, or used after release?)",
		i, p.state[i], from, to))
}

// census counts the frames in each state.
func (p *framePool) census() (n [4]int) {
	for _, s := range p.state {
		n[s]++
	}
	return n
}
