// Package natlog is fastnat's record of what the NAT decides — sessions
// created and deleted, endpoint-independent bindings, port blocks,
// exhausted pools, exceeded quotas — and the plumbing that carries it off
// the fast path to exporters (IPFIX, syslog) and live subscribers
// (`fastnat events`).
//
// Design. An Event is a fixed-size, pointer-free value. Every producer —
// each pipeline worker, and any other goroutine that makes events — owns
// one Ring, a bounded single-producer/single-consumer queue: Push copies
// the event into a slot and publishes it with one atomic store (a worker
// Stages a poll's events and Publishes them together), never allocates,
// never blocks and never makes a system call; a full ring drops the event
// and counts it. The Hub's goroutine polls every ring
// (producers never wake it) and copies each event into the queue of every
// outlet whose Filter passes it: a Sink, run on a goroutine of its own,
// or a Subscription read by a control-socket client. A slow outlet loses
// events from its own queue, counted, and holds up nobody else. The
// sub-packages natlog/ipfix and natlog/syslog are the Sinks.
//
// Timestamps are wall-clock Unix milliseconds, set by the producer.
// Tuples are seen from the inside host's side whoever opened the session
// (see Event), so the pair "public endpoint → inside host" a log must
// answer for is always Outside.Src → Inside.Src.
//
// Rate. Pool and quota events can repeat for every refused packet; a
// producer passes them through its own Throttle (one event per key and
// second) before pushing them.
//
// Ownership and lifetime: a Ring's Push belongs to one goroutine, its
// Pop to the Hub. Stop the producers before Hub.Close, which drains the
// rings once more, lets every sink export what it holds and closes it.
package natlog
