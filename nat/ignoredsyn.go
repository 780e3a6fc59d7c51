package nat

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/flowtable"
)

// ignoredSYNSlots is the size of the ignored-SYN memory (8 bytes a slot):
// it only has to hold the SYNs ignored during one round trip.
const ignoredSYNSlots = 4096

// ignoredSYNs remembers, by session id, where the sequence space of the
// last SYN ignored on a live connection ends, the way conntrack keeps
// last_end for the one packet it last ignored. A connection fastnat still
// believes live (it missed the FIN or RST that ended it, so tcpOver is
// false) may have been closed by both endpoints; a new connection on the
// same tuple then opens with a SYN that tcpStep lets pass without
// touching the session, and the server's SYN/ACK acknowledges a sequence
// number the session never saw. Without this memory that SYN/ACK is out
// of window and the tuple stays blocked until the established timeout;
// with it, a SYN/ACK from the responder that acknowledges exactly the
// ignored SYN shows that both endpoints agree on a new connection, and
// the session is tracked again from the handshake (conntrack's "SYN/ACK
// acknowledges a SYN that we earlier ignored as invalid").
//
// Forging the pair needs both sides: the SYN must arrive on the side the
// session's initiator is on and the SYN/ACK on the responder's (forward
// checks the side before the tracker runs), so an attacker outside cannot
// re-open an inside host's connection alone.
//
// A slot packs the session id (high 32 bits) and the SYN's end (low 32);
// an id colliding on a slot overwrites it, which only costs that session
// the recovery. The slots are shared by the workers (the SYN and its
// SYN/ACK arrive on different interfaces, often at different workers)
// and written only for ignored SYNs, off the established path.
type ignoredSYNs struct {
	slot [ignoredSYNSlots]atomic.Uint64
}

// note remembers that a SYN of session id whose sequence space ends at
// end was ignored.
func (m *ignoredSYNs) note(id, end uint32) {
	m.slot[id%ignoredSYNSlots].Store(uint64(id)<<32 | uint64(end))
}

// take reports whether ack acknowledges the SYN last ignored on session
// id, and forgets that SYN if so.
func (m *ignoredSYNs) take(id, ack uint32) bool {
	s := &m.slot[id%ignoredSYNSlots]
	want := uint64(id)<<32 | uint64(ack)
	return s.Load() == want && s.CompareAndSwap(want, 0)
}

// resyncWords are the tracking words of a connection taken up again at
// SYN/ACK g, which acknowledges a SYN that ended at g.ack: the responder
// tracked from its SYN/ACK, the initiator liberally (the ignored SYN's
// window and scale were not kept), so that window checks resume once the
// connection has shown its windows — as conntrack does for a connection
// it picks up without its SYN.
func resyncWords(g *tcpSeg) [2]uint64 {
	var w [2]uint64
	w[flowtable.Orig] = trWith(trInit|trLiberal, g.ack, max(g.win, 1))
	w[flowtable.Reply] = synWord(g, g.seq+1) | trLiberal
	return w
}
