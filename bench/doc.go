// Package bench is fastnat's benchmark harness. Every benchmark keeps the
// baseline it is judged against beside fastnat's own code and measures
// both in one run, so that each speed claim is a ratio, not a number from
// another day.
//
//   - pipeline.go, pipeline_report.go: `fastnat bench pipeline`, the whole
//     per-core pipeline over in-memory ports (also BenchmarkPipeline), no
//     kernel involved: ns per packet, Mpps and the new-session rate of the
//     slow path.
//   - flowtable.go, flowtable_test.go: `fastnat bench flowtable`, the flow
//     table against general-purpose concurrent maps (puzpuzpuz/xsync,
//     sync.Map) on the same keys.
//   - veth*.go, report*.go: `fastnat bench veth`, end to end on one
//     machine: fastnat against the Linux kernel's own NAT (nftables with
//     conntrack, the setup a user would pick instead) on the same veth
//     topology, in one invocation.
//   - tcp.go: `fastnat bench tcp`, iperf3 TCP (at each stream count) and
//     UDP through fastnat and the kernel's NAT on the same topology, in
//     one invocation: throughput, fastnat's ratio to the kernel,
//     retransmissions, loss, CPU and the drops at fastnat's full rx rings.
//
// Every command prints a table, writes JSON (--json) and a chart (--plot,
// gonum.org/v1/plot), reports progress on standard error and names the
// machine it ran on.
//
// # The veth benchmark
//
// RunVeth runs one case per DUT (device under test: "kernel", "fastnat",
// or "none", plain forwarding to calibrate the harness), flow count and
// frame size, each on a fresh internal/testnet topology, so no case
// inherits sessions or conntrack entries from another. The traffic is the
// NAT's everyday direction, and the same for every DUT: UDP from the
// inside host (the server namespace, 10.77.0.226) to the outside client
// (198.18.0.1), source-translated to 198.18.0.204 (nat outbound, and no
// other rule, on both NATs). Flows differ in their ports: up to 16,384
// source ports times as many destination ports as needed, which fits
// 65,536 flows into the one public address of both the kernel's ruleset
// (which keeps source ports) and fastnat's endpoint-independent mapping.
//
// The generator is an AF_XDP socket of fastnat's own afxdp package on the
// inside host's veth, on a thread pinned to VethConfig.GenCPU. Every UMEM
// frame holds the case's template from the start; a packet costs two port
// stores and a precomputed UDP checksum, so the generator spends its CPU
// in the kernel's transmit path, not on building frames. The load is open
// loop: the socket's send buffer is raised so that the generator does not
// wait for the DUT (in copy mode each frame in flight is an skb charged to
// the socket), and the DUT drops what it cannot take; frames in flight are
// capped at the router's receive backlog plus the client's veth ring, so
// that the generator's own tx ring stays short and probes time the DUT,
// not the generator.
//
// The sink is an XDP program on the client's veth, native mode, so that
// veth gives the client a NAPI ring of its own (see vethSink.attach). It
// counts IPv4 UDP frames in a per-CPU array and drops them; only frames
// whose source is the DUT's expected one (the public address) count as
// delivered, so a DUT that forwards without translating scores nothing.
// It passes ARP and the probes to the client's kernel.
//
// A case runs in four phases. First, probes alone until one arrives:
// neighbours resolved, the DUT forwarding (or ErrNoPath). Second, every
// flow once, as fast as the generator goes: the sink's count over the time
// until it stops rising is the new-session rate (for 1,024 flows or
// more). Third, the load — as fast as the generator goes, or
// VethConfig.Rate — for the warm-up and then the measured window; offered
// is what the generator's socket completed, delivered what the sink
// counted, loss the difference. A DUT that loses under 1% kept up with the
// generator: its rate is a lower bound, marked "≥". Fourth, latency at a
// fixed light load (VethConfig.LatencyRate).
//
// Latency: a few hundred probes per second replace normal frames in the
// stream (and are left out of the offered load). Each carries the
// generator's CLOCK_REALTIME stamp taken as it is written; the client's
// kernel stamps it on arrival (SO_TIMESTAMPNS) and verifies its UDP
// checksum, so a probe that arrives was translated correctly. The
// percentiles are one way, generator to client. Under the full load they
// include the queue in front of the bottleneck (the kernel's receive
// backlog, fastnat's AF_XDP rx ring), which is what a user of a saturated
// NAT sees; at the light load they show the DUT's own delay.
//
// CPU placement: the generator owns VethConfig.GenCPU, the DUT
// VethConfig.DUTCPU. On veth the receiving side of a link runs on the
// sender's CPU, inside the sender's system call, so without help the
// kernel DUT would forward everything on the generator's CPU and leave
// the other idle. The kernel DUT (and "none") therefore steer the router's
// receive processing to the DUT's CPU with RPS, their best setting
// (measured: about 1.5 times the rate without). fastnat pins its worker
// to the DUT's CPU and leaves RPS off: its XDP program runs where the
// frame arrives and hands it to the worker's socket, and with RPS that
// softirq work would preempt the busy-polling worker on its own CPU
// (measured: about half the rate).
//
// CPU per packet: the kernel's tick-based accounting (USER_HZ, from
// /proc/stat) over the window. The DUT is charged all busy time of every
// CPU except the generator's, plus the interrupt and softirq time on the
// generator's CPU, which is receive processing the kernel runs where a
// packet arrives (for fastnat its XDP program); the generator's user and
// system time is not charged. The sink's XDP program runs in the DUT's
// transmit path and is charged to every DUT alike. fastnat's worker spins
// while traffic flows (adaptive polling), so under load its CPU per packet
// is a full CPU divided by its rate; ProcessCPUPerPacket gives its
// process's own share (which includes the softirq work its transmit
// system calls run, the sink among it). Other processes on
// the machine and a hypervisor's steal inflate every number; each result
// records both, and the table warns. Other load is the CPUs' busy time
// less that of the harness, the DUT and the kernel's threads, so that
// compilers and tests that start and end inside a window count (summing
// the processes alive at both ends missed them: a round in which another
// benchmark held 40-80 % of the worker's CPU read as 33-43 % of a CPU).
//
// Noise: with VethConfig.Rounds above one every case runs that many
// times, the DUTs taking turns in alternating order, and the report keeps
// the round with the median delivered rate and the spread of all of them.
//
// Lifetime: RunVeth owns everything it creates — namespaces, the DUT
// process, XDP programs and sockets — and removes it before it returns,
// also on error or when its context ends. The generator's thread is locked
// before any DUT process starts and lives for the whole run, because a
// process started with Pdeathsig dies with the thread that forked it.
package bench
