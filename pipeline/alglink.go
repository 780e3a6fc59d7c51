package pipeline

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/alg"
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

func (w *Worker) fromALG() {
	l := w.cfg.ALG
	n := l.From.Pop(w.algIn)
	if n == 0 {
		return
	}
	l.inFlight.Add(-int64(n))
	w.c.algReturned += uint64(n)
	for _, it := range w.algIn[:n] {
		f := Frame{Buf: it.Buf, Handle: it.Handle}
		if it.Verdict != alg.Forward {
			w.c.drop[DropALGVerdict]++
			w.drop(f, dropNames[DropALGVerdict])
			continue
		}
		w.emit(f, int(it.Port))
	}
	w.releaseDrops()
}
