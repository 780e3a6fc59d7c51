// Package afxdp is fastnat's only contact with AF_XDP: the UMEM and rings of
// each worker, the XDP program that steers fastnat's traffic to them, queue
// discovery, CPU pinning, the NAT's public addresses and next-hop
// (neighbour) resolution. A Port implements pipeline.Port and a Worker
// implements pipeline.Waker.
//
// # Lifetime and ownership
//
// An Interface (Load) is one network interface, shared by all workers: its
// XDP program, the program's maps and the neighbour resolver's goroutine. A
// Worker (Open) is one worker's share: queue q of every interface, one
// AF_XDP socket (Port) per interface, one UMEM and one free-frame stack. The
// Worker and its Ports belong to the worker's goroutine alone and take no
// locks; Interface methods are control-plane calls and lock. Start in this
// order, so that no packet finds a queue without a socket:
//
//	Load each interface → SetFilter → Open each worker → Attach each interface
//
// and stop in reverse: stop the worker goroutines, Close the Workers (frames
// they lent out become invalid), Close the Interfaces (which detaches the
// programs), Close the Addresses. Programs are attached through BPF links,
// so the kernel detaches them even if fastnat is killed; a fastnat program
// found attached the old way (netlink, which outlives its process) is stale
// and Attach replaces it; any other program is an ErrBusy. Load, Attach,
// Open, Queues and NewAddresses work in the network namespace of the calling
// OS thread. Linux 5.10 or later is required (shared UMEM across devices).
//
// # Frames
//
// One UMEM per worker holds FramesPerQueue frames per interface, and every
// socket of the worker is bound to it with XDP_SHARED_UMEM, so a frame
// received on one interface is transmitted on another by passing its
// address from one rx ring to the other tx ring, without a copy in user
// space. The kernel insists that a socket sharing a UMEM with a socket on
// another device or queue bring its own fill and completion rings
// (net/xdp/xsk.c, xsk_bind), so every Port has all four rings; the first
// socket registers the UMEM and decides copy or zero-copy mode and
// need_wakeup for all of them.
//
// Frame ownership stays in fastnat: the Worker keeps an O(1) stack of free
// frames and the owner of every frame (free, kernel, worker, in
// transmission). Receive moves frames from kernel to worker, Transmit from
// worker to transmission, completions and Release back to the stack, and
// refills top up the fill rings from it. Every move checks the frame's
// state, so a frame released twice or used after release panics at the bug
// (a broken invariant) instead of corrupting a packet later. Handle is the
// packet's UMEM address; Buf starts at the packet (the kernel leaves
// XDP_PACKET_HEADROOM, 256 bytes, in front of it) and reaches to the end of
// the frame, so cap(Buf) is the frame size less 256.
//
// # Rings
//
// Ring indices live in memory the kernel writes concurrently, so they are
// read and written with sync/atomic only; each side keeps cached copies of
// both indices and reads the other side's only when the cached view runs
// short, so a burst costs one shared load and one shared store per ring
// (the scheme of libxdp and of gVisor's pkg/xdp). Sockets use need_wakeup:
// Flush kicks the tx ring with sendto only when the kernel set the wakeup
// flag (in copy mode it always does, because the sendto itself transmits),
// and a refill wakes the fill ring with recvfrom only when asked
// (zero-copy drivers). A refill reads the kernel's consumer index and
// publishes the producer's, lines the kernel's CPU writes and reads, so a
// Port refills only once the fill ring lacks fillBatch frames (256, or a
// sixteenth of a smaller ring), counting them from the frames it
// receives and those still waiting in its rx ring, not on every Receive
// and Flush. The transmit budget of one sendto is raised from 32
// to the ring size where the kernel allows it (XDP_MAX_TX_SKB_BUDGET, Linux
// 6.17). sendto errors are counted in PortStats, never returned or
// panicked: the frames stay on the ring and the next kick retries them.
// Binding waits up to a second for a queue whose previous socket the
// kernel is still releasing (it frees buffer pools from a workqueue).
//
// github.com/asavie/xdp v0.3.3 was the starting point and is kept as the
// baseline of the measurements below, but fastnat does not use it: its
// GetDescs scans a flag per frame for free ones on every call; it reads and
// writes ring indices with plain loads and stores; it panics on unexpected
// sendto errors; it has neither shared UMEM nor need_wakeup; its Close
// leaves the rings mapped, so the socket keeps its queue until the device
// goes away; and Program.Detach detaches without the mode flag, so against
// a generic-mode program it waits forever. fastnat implements sockets and
// rings with golang.org/x/sys/unix and the program with cilium/ebpf.
//
// Receive prefetches the first line of every packet of the burst
// (prefetchRx: PREFETCHT0 on amd64, PRFM on arm64, nothing elsewhere)
// before handing the frames out. The kernel copied those packets into the
// UMEM on the CPU that ran the interface's receive: on veth the sender's,
// on a NIC the CPU its interrupt is steered to, which need not be the
// worker's. Taken one at a time in the worker's parse, each was a miss of
// its own (on veth at 0.4 Mpps, a tenth of the worker's CPU, 95 % of it on
// the parse's first load); prefetched together, a burst's misses overlap.
//
// # The XDP program
//
// The program (hand-written cilium/ebpf assembly, so CI needs no clang)
// redirects to the sockets only the IPv4 traffic fastnat owns and passes
// everything else (ARP, IPv6, traffic for the host itself) to the kernel,
// so the box stays manageable. On outside interfaces it redirects IPv4
// whose destination is in the public-address hash map; on inside
// interfaces IPv4 whose source is in the inside-prefix LPM trie and whose
// destination is not in the local-address hash map (public addresses do
// not count as local, so hairpin traffic reaches the NAT). One 802.1Q or
// 802.1ad tag is looked through. The redirect goes to the XSKMAP slot of
// the packet's rx queue with XDP_PASS as the fallback, so a queue without a
// socket passes to the kernel rather than dropping. SetFilter updates the
// maps in place (added before removed) for a reload.
//
// # Next hops
//
// Each Interface keeps a neighbour cache: an immutable snapshot of
// connected prefixes, gateway and resolved MAC addresses behind an atomic
// pointer, so NextHop is a pointer load and a map read, without locks. The
// resolver goroutine keeps it in step with the kernel's neighbour table
// from netlink events (neighbour and address changes) and a full re-read
// every second. On a miss NextHop stores the address in one of 64 request
// slots (an atomic store, no lock, no channel) and returns false; the
// resolver sweeps the slots every 10 ms while it is awake and makes the
// kernel resolve the address itself with an RTM_NEWNEIGH request carrying
// NTF_USE (as `ip neigh replace ADDR dev IF use`): the kernel creates an
// INCOMPLETE entry and sends an ARP request from the host stack, without
// any payload packet, and the answer arrives as an event. The resolver
// sleeps in the Go runtime's poller (waiter), not in a blocking recvfrom,
// so that an idle one holds no P; after 10 ms without an event or a miss
// it sleeps until its next re-read, and the first new miss wakes it
// through an eventfd (one write per sleep), so a miss still waits at most
// 10 ms. NextHop tells the worker whether the
// next hop is resolved, pending or has no route at all; the same snapshot
// carries the interface's MTU and its own addresses (Port.MTU, Port.Addr:
// the source of the ICMP errors the worker sends), which the resolver
// follows from link and address events. The same request re-probes STALE
// entries, which would otherwise age out because the kernel never sees the
// traffic fastnat forwards. Off-link destinations go to the configured
// gateway, or to the gateway of the kernel's default route through the
// interface.
//
// # veth
//
// Tests and the benchmarks run on veth pairs. A veth has no zero copy in
// either mode. In generic mode it hands every packet to the program as
// queue 0, so with several queues only worker 0 would receive; in native
// mode it keeps the queue its peer transmitted on. Both cost the same per
// packet (below), so ModeAuto is native on veth as elsewhere. A veth passes
// the packets its peer's stack sends as CHECKSUM_PARTIAL, with the TCP or
// UDP checksum not yet filled in; the AF_XDP copy carries that hole to the
// next hop, which drops the packet. Turn transmit checksum offload off on
// the peers of the veths fastnat reads (ethtool -K IF tx off).
// CheckPeerOffload finds a veth's peer (beside it, or in a named network
// namespace) and reads that setting, so the dataplane can warn at start.
//
// # Measurements
//
// On this machine (2 vCPU AMD EPYC, Linux 6.18, shared with other builds
// and tests, load average about 10 while measuring), 64-byte UDP frames on
// one veth pair, both libraries busy polling, sender and receiver in one
// goroutine on one core; frames per second of that thread's CPU time, which
// includes the kernel's work in its syscalls and softirqs and excludes the
// time other processes took the core (median of 7 alternating rounds; the
// wall-clock rates were 0.2 to 0.55 Mpps, depending on the other load):
//
//	                         fastnat     asavie/xdp   ratio
//	tx (peer drops in XDP)   0.86 Mpps   0.80 Mpps    1.07
//	rx, generic mode         0.77 Mpps   0.80 Mpps    0.99
//	rx, native mode          0.75 Mpps   0.79 Mpps    0.98
//	rx native / generic      0.98        1.00
//
//	FASTNAT_MEASURE=1 FASTNAT_MEASURE_ROUNDS=7 go test ./afxdp -run TestMeasureRings -v
//
// On veth the kernel's copy-mode path (build an skb, cross the pair, run
// the receiver's program, copy into its UMEM) costs about 1.2 µs a frame and
// hides the rings; fastnat's receive side also pays for its filter's map
// lookup, which the library's queue-only program does not do. Tx gains
// from one kick per 64 frames instead of one per 32. The rings' own cost
// shows against a simulated kernel: a burst of 64 received, transmitted
// back and completed costs 15 to 25 ns a frame with the free-frame stack
// and 35 to 55 ns with frames found by scanning a flag per frame, the way
// the library's GetDescs does (0 allocations in both; the spread is the
// machine's other load):
//
//	go test ./afxdp -run XXX -bench ForwardPath -count 5
package afxdp
