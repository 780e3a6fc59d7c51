package pipeline

import (
	"github.com/fastnat/fastnat/packet"
)

// Fragmentation to fit the egress MTU (RFC 791 §3.2, RFC 1812 §5.2.6). A
// packet without Don't Fragment that is larger than the MTU of the port it
// leaves by is split: the first fragment stays in the packet's own frame,
// the others are written into frames the worker takes from the port's
// frame space (Port.Alloc). Each fragment then travels like any packet.
// A packet with Don't Fragment is answered with ICMP fragmentation needed
// instead (dispatch), so path MTU discovery works through fastnat.

// maxFragments bounds the fragments of one packet: a 2048-byte frame at
// the smallest MTU of 68 bytes makes 43.
const maxFragments = 64

// split cuts the IPv4 packet at f.Buf[l3:] into fragments that fit mtu,
// in w.frags (the first is f itself, shortened). It reports false, having
// dropped f, when the packet cannot be split or no frames are free.
func (w *Worker) split(f Frame, l3, mtu int) bool {
	ip := packet.IPv4(f.Buf[l3:])
	pl, ok := packet.PlanFragments(ip, mtu)
	if !ok || pl.Count > maxFragments || l3+pl.RestHeader+pl.Rest > cap(f.Buf) {
		w.c.drop[DropMTUExceeded]++
		w.drop(f, dropNames[DropMTUExceeded])
		return false
	}
	more := w.fragBuf[:pl.Count-1]
	if n := w.ports[0].Alloc(more); n < len(more) {
		w.ports[0].Release(more[:n])
		w.c.drop[DropFragNoFrame]++
		w.drop(f, dropNames[DropFragNoFrame])
		return false
	}
	for k := range more {
		g := &more[k]
		g.Buf = g.Buf[:l3+pl.RestHeader+pl.Rest]
		copy(g.Buf, f.Buf[:l3])
		n := packet.WriteFragment(g.Buf[l3:], ip, &pl, k+1)
		g.Buf = g.Buf[:l3+n]
	}
	f.Buf = f.Buf[:l3+packet.FirstFragment(ip, &pl)]
	w.frags = append(append(w.frags[:0], f), more...)
	w.c.event[EventFragmented]++
	w.c.event[EventFragmentsSent] += uint64(pl.Count)
	return true
}
