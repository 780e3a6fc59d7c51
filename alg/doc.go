// Package alg is fastnat's FTP application-level gateway: it reads FTP
// control connections as byte streams, rewrites the data endpoints they
// announce (PORT and EPRT from the client, 227 and 229 replies from the
// server — RFC 959, RFC 1123 4.1.2.6, RFC 2428) to what the other side
// must use through the NAT, installs an expectation per announced
// endpoint so that the data connection is translated on its first packet,
// and keeps the control connection's sequence numbers consistent from the
// SYN to the last FIN.
//
// Data flow and ownership. Pipeline workers translate every packet of a
// session classified ftp and push the translated frame onto their own
// single-producer/single-consumer Ring to the ALG goroutine (Runner). The
// Runner processes frames in ring order — so in order per control
// connection and direction — and pushes them back, verdict set, on the
// worker's return Ring; the worker transmits them. The ALG never touches
// a tx ring, and a worker never waits for it: a full ring drops and
// counts, and TCP retransmits. The ALG may turn a frame around (verdict
// Back: its answer to the frame's sender) or add a second frame for the
// sender in the spare room of the first (Item.Back); the worker sends
// those out of the port the frame arrived on. One FTP value belongs to one
// Runner goroutine; its per-connection state is an ordinary map of heap
// objects (the ALG is not the flow table), allocated once per control
// connection, so the per-packet path allocates nothing. A control session
// is named by flow-table id and generation (Item.Session, Item.Gen, from
// nat.Result), its state is keyed by both, and a frame whose generation
// the table no longer holds is dropped unread (DropStale): a reused slot's
// next session is never taken for the one before it. Forget, Stats,
// SessionCounters and the expectation notes are the only methods other
// goroutines call.
//
// Streams, not packets. Each direction of a control connection keeps its
// next expected sequence number and a line scanner; SYN and FIN occupy a
// sequence number each (RFC 9293 3.4), so the numbers after a close are
// right. A line is inspected when its terminator arrives, wherever it
// lies: several in one segment, one split over several, at any offset. A
// partial line that may still become PORT/EPRT/227/229 (its first bytes
// are a prefix of one) is held back for as long as the connection lives:
// the segment is cut before it, and the held bytes are passed on,
// rewritten, in front of the segment that completes the line — never
// unrewritten. Linux instead parses only at offset 0 and drops a split
// command. The receiver acknowledges nothing of a held line, so a sender
// retransmits it, and one whose timeout shrank its window sends nothing
// new until it is acknowledged (RFC 5681 3.1): when a segment brings held
// bytes again and nothing new, the ALG acknowledges them itself (an
// answer back to the sender, with the receiver's window and timestamps)
// and keeps a copy until the receiver acknowledges them, to pass them on
// again in front of a retransmission that no longer carries them. A held
// line the sender's FIN ends is discarded. Lines are bounded by maxLine
// (512 bytes, terminator included; lines with endpoints are under 100):
// one that may carry an endpoint and is longer resets the connection both
// ways — a reset to each end at the sequence number it expects, and one in
// answer to every later segment — counted and logged; other long lines
// pass and are counted. Data beyond a gap is dropped (counted): it cannot
// be placed while the gap may hold a rewrite that shifts it, and TCP sends
// it again after the gap is filled.
//
// Sequence correction. Every change to a direction's stream is a record
// (original position, old length, new text, accumulated length change
// after it): a rewritten endpoint, a refused reply's new text, a deleted
// command, an answer injected into the stream. A segment's sequence
// number is shifted by the change accumulated before it; the opposite
// direction's acknowledgement and SACK blocks are mapped back (a position
// inside new text maps conservatively, never acknowledging more than was
// received; a deleted command counts as received only once the client has
// acknowledged the answer to it). An acknowledgement that, mapped back,
// lies beyond every byte (or FIN) the peer has sent is a forgery, which
// the NAT's tracker cannot tell (it sees the numbers before the shift):
// the segment is dropped (DropAckUnsent), as conntrack drops it with
// nf_nat_ftp's offset taken off. A segment whose TCP checksum is wrong is
// dropped before anything reads it (DropBadChecksum): the ALG recomputes
// the checksum of what it changes, which would give corrupted bytes a
// valid one. Records are dropped only once the
// receiver has acknowledged past them, so every correction point that may
// still be retransmitted is kept — Linux keeps one, and two rewrites in
// flight corrupt its stream. A retransmitted segment is rebuilt from the
// records: the same rewrite, no second expectation, no second shift; a
// span the segment cuts is reproduced whole. Bytes below the acknowledged
// point are not sent on (their records are gone, and they must never
// leave unrewritten): a segment entirely below it — a stale
// retransmission, a keepalive probe one byte below the window — passes as
// an empty segment at its shifted place; one that crosses it is cut to
// start there.
//
// Policy (RFC 2577) and answers. An announced address must be the
// sender's own (real or public) unless AllowThirdParty, and its port at
// least 1024 (the server's active-mode source port, 20 by convention, is
// the unconstrained source side of the expectation, never its
// destination). A refused PORT or EPRT is deleted from the client's
// stream and answered at once with a 500 reply injected into the server's
// stream (both accounted in the records), the command never reaching the
// server — or, when the server is in the middle of a reply (inside which
// the answer would be text), injected right after that reply ends, among
// the server's own bytes; an answer acknowledges nothing before the
// command that the server has not. A refused 227 or 229 has its text
// replaced by a 425 reply; when
// the NAT cannot install an expectation the client gets a 425 the same
// way. Each is counted, and logged once per control session. At
// MaxExpectations open expectations a new one replaces the session's
// oldest. Malformed commands pass untouched and are counted.
//
// Fragments. A control segment that came in IPv4 fragments reaches the
// ALG fragment by fragment and is reassembled before it is read
// (reasm.go): inspected whole like any segment, never passed on in
// pieces, and dropped (DropFragment) when it cannot be reassembled.
//
// Frames. Process parses the frame itself, rewrites the payload in place
// (growing up to the frame's capacity and the MTU; beyond that the segment
// is cut and TCP resends the rest), fixes the IPv4 total length and header
// checksum and recomputes the TCP checksum over the small control segment.
// A frame that needs no change is not written at all. Answers and resets
// are built from scratch (packet.WriteSegment) with the addresses the
// sender knows, before translation.
package alg
