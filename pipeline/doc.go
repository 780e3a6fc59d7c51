// Package pipeline runs fastnat's per-core poll loops.
//
// A Worker owns one queue of every interface (a Port each) and runs every
// frame it receives to completion, a burst at a time: parse the whole
// burst, look up every flow, then translate and dispatch each frame (the
// lookups of a burst overlap their cache misses instead of stalling one by
// one), rewrite the Ethernet header for the next hop, and hand the frames
// to the output ports' tx rings. Frames of the common shape
// (packet.ParseCommonBurst) of established flows that need nothing but
// their translation take two loops that call nothing per packet in the
// common case (nat.Engine.ForwardCommonBurst over a run of them, then the
// worker's queueing to cached next hops); every other frame, and any the pass declines before changing
// it, takes the general path, so that both give the same result
// (TestCommonPathMatchesGeneral). The clock is read once per poll; aging
// walks the share of the worker's slice of the flow table that the time
// since the last poll calls for (all of it once a second). A poll is
// bracketed by the flow table's Enter and Leave (its grace periods): the
// per-packet stores into a session's hot line are plain stores, and a
// slot is reused only after every poll that might still store into it
// has ended.
//
// Frames of sessions that have an application-layer gateway (FTP control
// connections) are translated like any other and then handed to the ALG
// goroutine over a single-producer/single-consumer ring (ALGLink); the ALG
// returns them, possibly rewritten, on a second ring and the worker
// transmits them. A full ring drops the frame with a counter, so the fast
// path never waits for the ALG. A frame the ALG turned into its answer to
// the frame's sender (alg.Back), and a second frame it made for the sender
// (Item.Back, copied into a frame from Port.Alloc), leave by the port the
// frame arrived on, to the next hop of their destination. Every fragment
// of a control segment goes to the ALG, which keeps the bytes of all but
// the last (alg.Reassembling: the worker releases the frame) and returns
// the segment whole, to be fragmented again to the largest fragment it
// came in (Item.FragSize) and the egress MTU.
//
// The worker is also the router around the NAT: what needs more than a
// rewrite happens here, off the path of established flows. It answers
// packets whose TTL runs out, that are too big for the egress MTU with
// Don't Fragment, or whose next hop never resolves or has no route with
// the ICMP error a router sends, built in place in the dropped frame
// (icmp.go), rate-limited like Linux (RouterConfig); it fragments packets
// without Don't Fragment to the egress port's MTU, read once per poll
// (fragment.go); it clamps TCP MSS if asked; it queues frames for an
// unresolved neighbour per neighbour, bounded in bytes (neighbor.go); and
// it holds fragments that arrive before their datagram's first
// (hold.go). Waiting frames are bounded by the worker's frame space
// (Config.Frames) so they never starve reception.
//
// Ownership: a Worker and its Ports are used by one goroutine only; no
// locks. Counters are plain integers in the worker, published into
// padded atomic Counters that any goroutine may read once a millisecond
// while the worker is busy and on its first empty poll.
//
// Port is the seam between the loop and the packet I/O: package afxdp
// implements it over AF_XDP sockets; MemPort implements it in memory, so
// the whole pipeline runs in unit tests and in the in-memory benchmark
// without a kernel.
package pipeline
