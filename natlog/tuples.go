package natlog

import "github.com/fastnat/fastnat/packet"

// SessionTuples returns a session's Inside and Outside tuples as Event
// wants them, from its two flow-table keys: orig, the tuple of its first
// packet as it arrived, and reply, the tuple its replies arrive with.
// fromInside says whether the first packet arrived on an inside
// interface; a session opened from outside is Inbound.
//
// A session from inside (nat outbound, or hairpinning to a nat server):
// the inside flow is orig itself, the outside flow the first packet as it
// left, which is reply reversed. A session from outside (nat server, or an
// ALG data connection to an inside host): the inside flow runs from the
// inside host, as its replies arrive (reply), and the outside flow is
// orig reversed, from the public endpoint to the remote one.
func SessionTuples(orig, reply packet.Tuple, fromInside bool) (inside, outside packet.Tuple) {
	if fromInside {
		return orig, reply.Reverse()
	}
	return reply, orig.Reverse()
}
