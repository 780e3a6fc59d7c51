package pipeline

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/alg"
	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// ALGItem is a frame on its way to or back from the ALG.
type ALGItem = alg.Item

// ALGLink joins one worker to the ALG goroutine: frames of ALG sessions
// (already translated and addressed) go out on To; the ALG returns them,
// possibly rewritten, on From for the worker to transmit. Both rings are
// single-producer/single-consumer. A full To ring drops the frame with a
// counter — the peer's TCP retransmits — so the worker never waits.
type ALGLink struct {
	To   *alg.Ring
	From *alg.Ring
	// Wake, when set, is called after frames were pushed on To (the ALG
	// runner's Wake), so an idle ALG goroutine need not poll.
	Wake     func()
	inFlight atomic.Int64
}

// NewALGLink makes a link with rings of size slots (a power of two).
func NewALGLink(size int) (*ALGLink, error) {
	to, err := alg.NewRing(size)
	if err != nil {
		return nil, err
	}
	from, err := alg.NewRing(size)
	if err != nil {
		return nil, err
	}
	return &ALGLink{To: to, From: from}, nil
}

func (w *Worker) toALG() {
	l := w.cfg.ALG
	n := l.To.Push(w.algOut)
	l.inFlight.Add(int64(n))
	if n > 0 && l.Wake != nil {
		l.Wake()
	}
	w.c.algDiverted += uint64(n)
	for _, it := range w.algOut[n:] {
		w.c.drop[DropALGRingFull]++
		w.drop(Frame{Buf: it.Buf, Handle: it.Handle}, dropNames[DropALGRingFull])
	}
	w.algOut = w.algOut[:0]
	w.releaseDrops()
}

func (w *Worker) fromALG(now flowtable.Time) {
	l := w.cfg.ALG
	n := l.From.Pop(w.algIn)
	if n == 0 {
		return
	}
	l.inFlight.Add(-int64(n))
	w.c.algReturned += uint64(n)
	for i := range w.algIn[:n] {
		it := &w.algIn[i]
		f := Frame{Buf: it.Buf, Handle: it.Handle}
		if it.Back != nil {
			// The ALG's second frame, for the sender: it lives in the
			// spare room of f, so it is copied out before f goes.
			w.backCopy(it.Back, int(it.In), now)
			it.Back = nil
		}
		switch it.Verdict {
		case alg.Forward:
			w.emit(f, int(it.Port), int(it.FragSize))
		case alg.Reassembling:
			// A fragment whose bytes the ALG keeps: not a drop.
			w.drops = append(w.drops, f)
		case alg.Back:
			w.sendBack(f, int(it.In), now)
		default:
			w.c.drop[DropALGVerdict]++
			w.drop(f, dropNames[DropALGVerdict])
		}
	}
	w.releaseDrops()
}

// backCopy copies a frame the ALG made for a sender into a frame of the
// worker's own and sends it back out of port pi. Without a free frame the
// answer is lost like any packet; the sender's retransmission brings the
// ALG to answer again.
func (w *Worker) backCopy(b []byte, pi int, now flowtable.Time) {
	var fs [1]Frame
	if w.ports[pi].Alloc(fs[:]) == 0 {
		w.c.drop[DropALGNoFrame]++
		return
	}
	f := fs[0]
	f.Buf = append(f.Buf[:0], b...)
	w.sendBack(f, pi, now)
}

// sendBack transmits a frame the ALG turned into an answer to its sender
// out of port pi, where the sender's frame arrived, to the next hop of its
// IPv4 destination (waiting for resolution like any frame; never answered
// with an ICMP error itself).
func (w *Worker) sendBack(f Frame, pi int, now flowtable.Time) {
	l3 := l3Of(f.Buf)
	if len(f.Buf)-l3 < packet.IPv4MinLen {
		w.c.drop[DropALGVerdict]++
		w.drop(f, dropNames[DropALGVerdict])
		return
	}
	var r nat.Result
	w.route(f, pi, pi, packet.IPv4(f.Buf[l3:]).DstAddr(), nil, &r, now)
}
