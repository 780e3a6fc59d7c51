// Package alg is fastnat's FTP application-level gateway: it reads FTP
// control connections as byte streams, rewrites the data endpoints they
// announce (PORT and EPRT from the client, 227 and 229 replies from the
// server — RFC 959, RFC 1123 4.1.2.6, RFC 2428) to what the other side
// must use through the NAT, installs an expectation per announced
// endpoint so that the data connection is translated on its first packet,
// and keeps the control connection's sequence numbers consistent.
//
// Data flow and ownership. Pipeline workers translate every packet of a
// session classified ftp and push the translated frame onto their own
// single-producer/single-consumer Ring to the ALG goroutine (Runner). The
// Runner processes frames in ring order — so in order per control
// connection and direction — and pushes them back, verdict set, on the
// worker's return Ring; the worker transmits them. The ALG never touches
// a tx ring, and a worker never waits for it: a full ring drops and
// counts, and TCP retransmits. One FTP value belongs to one Runner
// goroutine; its per-connection state is an ordinary map of heap objects
// (the ALG is not the flow table), allocated once per control connection,
// so the per-packet path allocates nothing. Forget, Stats and the
// expectation notes are the only methods other goroutines call.
//
// Streams, not packets. Each direction of a control connection keeps its
// next expected sequence number and a line scanner. A line is inspected
// when its terminator arrives, wherever it lies: several in one segment,
// one split over several, at any offset. A partial line that may still
// become PORT/EPRT/227/229 (its first bytes are a prefix of one) is held
// back: the segment is cut before it, and the held bytes are passed on in
// front of the segment that completes the line, rewritten. Linux instead
// parses only at offset 0 and drops a split command. Other partial lines
// pass at once. Held lines are bounded by 512 bytes; a longer line passes
// untouched and is counted. A held line whose bytes come again twice with
// nothing after them (a sender that retransmits without coalescing, while
// the rest was lost) is given up on and passed untouched, counted: the
// receiver acknowledges nothing while a line is held, and the sender must
// not starve. Data beyond a gap is dropped (counted): it cannot be placed
// while the gap may hold a rewrite that shifts it, and TCP sends it again
// after the gap is filled.
//
// Sequence correction. Every rewrite is recorded per direction as (the
// original sequence number of the replaced text, its old length, the new
// text, the accumulated length change after it). A segment's sequence
// number is shifted by the change accumulated before it; the opposite
// direction's acknowledgement and SACK blocks are mapped back (a position
// inside rewritten text maps conservatively, never acknowledging more
// than was received). Records are dropped only once the receiver has
// acknowledged past them, so every correction point that may still be
// retransmitted is kept — Linux keeps one, and two rewrites in flight
// corrupt its stream. A retransmitted segment is rebuilt from the records:
// the same rewrite, no second expectation, no second shift; a span the
// segment cuts is reproduced whole. Bytes below the acknowledged point
// are not rebuilt (their records are gone): a segment entirely below it —
// a stale retransmission, a keepalive probe one byte below the window —
// passes as it is, shifted by the change accumulated there; one that
// crosses it is cut to start there.
//
// Policy (RFC 2577). An announced address must be the sender's own (real
// or public); otherwise the frame is dropped, counted and logged once per
// session, unless AllowThirdParty. Ports below 1024 are refused (the
// server's active-mode source port, 20 by convention, is the unconstrained
// source side of the expectation, never its destination). At most
// MaxExpectations open expectations per control session. Malformed
// commands pass untouched and are counted.
//
// Frames. Process parses the frame itself, rewrites the payload in place
// (growing up to the frame's capacity and the MTU; beyond that the segment
// is cut and TCP resends the rest), fixes the IPv4 total length and header
// checksum and recomputes the TCP checksum over the small control segment.
// A frame that needs no change is not written at all.
package alg
