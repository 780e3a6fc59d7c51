package pipeline

import (
	"sync/atomic"

	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// DropReason is why the pipeline itself dropped a frame (parse failures
// and NAT verdicts have their own enumerations).
type DropReason uint8

// Pipeline drop reasons. Keep dropNames in the same order.
const (
	DropHostUnreachable DropReason = iota // the next hop never resolved (ICMP host unreachable sent when allowed)
	DropTxFull                            // the tx ring took fewer frames than offered
	DropALGRingFull                       // the ALG's ring was full (TCP retransmits)
	DropALGVerdict                        // the ALG dropped the frame (TCP retransmits)
	DropFragHeldEvicted                   // an early fragment evicted, oldest first, to hold a newer one
	DropFragHeldExpired                   // an early fragment whose first fragment never came
	DropNetUnreachable                    // no route: off-link and no gateway (ICMP net unreachable sent when allowed)
	DropNeighQueueFull                    // the oldest frame for an unresolved neighbour, pushed out by its byte bound
	DropWaitFull                          // the worker's budget of frames waiting for neighbours was used up
	DropMTUExceeded                       // Don't Fragment set and larger than the egress MTU (ICMP fragmentation needed sent when allowed)
	DropFragNoFrame                       // no free frame to fragment a packet into
	DropALGNoFrame                        // no free frame for an answer of the ALG's
	DropBadIPOptions                      // malformed IP options, as the kernel's ip_options_compile finds them (ICMP parameter problem sent when allowed)
	DropSourceRouted                      // a loose or strict source route option, which the kernel drops without accept_source_route
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	"host_unreachable", "tx_full", "alg_ring_full", "alg_dropped", "frag_held_evicted", "frag_held_expired",
	"net_unreachable", "neigh_queue_full", "wait_full", "mtu_exceeded", "frag_no_frame", "alg_no_frame",
	"bad_ip_options", "source_routed",
}

// String returns the reason's stable snake_case name.
func (d DropReason) String() string {
	if d < NumDropReasons {
		return dropNames[d]
	}
	return "unknown"
}

// Event is something a worker did that is not a drop: an ICMP error sent
// or suppressed, a packet fragmented or clamped, a datagram's fragment
// state freed. Events are counted per worker like drops.
type Event uint8

// Events. Keep eventNames in the same order.
const (
	EventICMPTimeExceeded    Event = iota // ICMP time exceeded sent (TTL ran out here)
	EventICMPFragNeeded                   // ICMP fragmentation needed sent (with the egress MTU)
	EventICMPHostUnreachable              // ICMP host unreachable sent (neighbour never resolved)
	EventICMPNetUnreachable               // ICMP net unreachable sent (no route)
	EventICMPRateLimited                  // an ICMP error not sent: rate limit
	EventICMPSuppressed                   // an ICMP error not sent: RFC 1812 §4.3.2.7 (about an ICMP error, a non-first fragment, a broadcast or multicast) or no address on the port
	EventFragmented                       // packets fragmented to fit the egress MTU
	EventFragmentsSent                    // fragments made from them
	EventMSSClamped                       // TCP SYNs whose MSS option was lowered
	EventNeighWaited                      // frames that waited for their next hop's resolution
	EventFragDatagrams                    // fragmented datagrams tracked (first fragment passed, or an early one held)
	EventFragCompleted                    // datagrams whose every fragment passed; state freed at once
	EventFragTimedOut                     // datagram state freed incomplete after the fragment timeout
	EventFragEvicted                      // datagram state evicted, oldest first, to make room
	EventFragUntracked                    // datagrams with overlapping or repeated fragments, left to time out
	EventICMPPortUnreachable              // ICMP port unreachable sent (UDP to a closed port of a public address)
	EventTCPReset                         // TCP reset sent (a segment to a closed port of a public address)
	EventICMPParamProblem                 // ICMP parameter problem sent (malformed IP options)
	NumEvents
)

var eventNames = [NumEvents]string{
	"icmp_time_exceeded", "icmp_frag_needed", "icmp_host_unreachable", "icmp_net_unreachable",
	"icmp_rate_limited", "icmp_suppressed", "frag_out_packets", "frag_out_fragments", "mss_clamped",
	"neigh_waited", "frag_datagrams", "frag_completed", "frag_timed_out", "frag_evicted", "frag_untracked",
	"icmp_port_unreachable", "tcp_reset", "icmp_param_problem",
}

// String returns the event's stable snake_case name.
func (e Event) String() string {
	if e < NumEvents {
		return eventNames[e]
	}
	return "unknown"
}

// parseDropNames and verdictDropNames are the drop tap's reasons for
// parse failures and NAT drop verdicts, built once so that naming a drop
// allocates nothing.
var (
	parseDropNames   [packet.NumResults]string
	verdictDropNames [nat.NumVerdicts]string
)

func init() {
	for i := range parseDropNames {
		parseDropNames[i] = "parse_" + packet.Result(i).String()
	}
	for i := range verdictDropNames {
		verdictDropNames[i] = "nat_" + nat.Verdict(i).String()
	}
}

// DropName returns the drop tap's name for a drop counted under a parse
// result, a NAT verdict or a pipeline drop reason: "parse_" or "nat_"
// followed by the result's or verdict's name, or the pipeline reason's
// own name.
func DropName(stage DropStage, code uint8) string {
	switch stage {
	case StageParse:
		if int(code) < len(parseDropNames) {
			return parseDropNames[code]
		}
	case StageNAT:
		if int(code) < len(verdictDropNames) {
			return verdictDropNames[code]
		}
	case StagePipeline:
		return DropReason(code).String()
	}
	return "unknown"
}

// DropStage says which enumeration a drop's code belongs to.
type DropStage uint8

// Drop stages.
const (
	StageParse    DropStage = iota // packet.Result
	StageNAT                       // nat.Verdict
	StagePipeline                  // DropReason
)

// counts are a worker's running totals, written by the worker alone as
// plain integers and published once per burst.
type counts struct {
	rxPackets, rxBytes, txPackets, txBytes uint64
	algDiverted, algReturned, held         uint64
	parse                                  [packet.NumResults]uint64
	verdict                                [nat.NumVerdicts]uint64
	drop                                   [NumDropReasons]uint64
	event                                  [NumEvents]uint64
}

// Counters are a worker's published totals: readable from any goroutine
// (metrics, `fastnat show stats`) while the worker runs. The worker keeps
// plain integers and stores them here once per burst, so the per-packet
// path has no atomic read-modify-write. Padded to keep neighbouring
// workers' counters off each other's cache lines.
type Counters struct {
	_           [64]byte
	RxPackets   atomic.Uint64
	RxBytes     atomic.Uint64
	TxPackets   atomic.Uint64
	TxBytes     atomic.Uint64
	ALGDiverted atomic.Uint64
	ALGReturned atomic.Uint64
	Held        atomic.Uint64
	// Parse counts frames by parse result; Parse[packet.OK] are the good ones.
	Parse [packet.NumResults]atomic.Uint64
	// Verdict counts NAT verdicts; Verdict[nat.Forward] are translated frames.
	Verdict [nat.NumVerdicts]atomic.Uint64
	// Drop counts the pipeline's own drops.
	Drop [NumDropReasons]atomic.Uint64
	// Event counts what the worker did besides forwarding and dropping.
	Event [NumEvents]atomic.Uint64
	_     [64]byte
}

// publish stores the worker's running totals k into c, skipping those
// that did not change since the last publish (last, the worker's copy of
// what c holds): an atomic store is a locked instruction on most CPUs,
// and most counters stand still between two polls.
func (c *Counters) publish(k, last *counts) {
	pub(&c.RxPackets, k.rxPackets, &last.rxPackets)
	pub(&c.RxBytes, k.rxBytes, &last.rxBytes)
	pub(&c.TxPackets, k.txPackets, &last.txPackets)
	pub(&c.TxBytes, k.txBytes, &last.txBytes)
	pub(&c.ALGDiverted, k.algDiverted, &last.algDiverted)
	pub(&c.ALGReturned, k.algReturned, &last.algReturned)
	pub(&c.Held, k.held, &last.held)
	for i := range k.parse {
		pub(&c.Parse[i], k.parse[i], &last.parse[i])
	}
	for i := range k.verdict {
		pub(&c.Verdict[i], k.verdict[i], &last.verdict[i])
	}
	for i := range k.drop {
		pub(&c.Drop[i], k.drop[i], &last.drop[i])
	}
	for i := range k.event {
		pub(&c.Event[i], k.event[i], &last.event[i])
	}
}

// pub stores v into a when it differs from *last, the value a holds.
func pub(a *atomic.Uint64, v uint64, last *uint64) {
	if v != *last {
		a.Store(v)
		*last = v
	}
}

// Drops returns the total of every kind of drop: parse failures, NAT drop
// verdicts and pipeline drops.
func (c *Counters) Drops() uint64 {
	var n uint64
	for i := range c.Parse {
		if packet.Result(i) != packet.OK {
			n += c.Parse[i].Load()
		}
	}
	for i := range c.Verdict {
		if v := nat.Verdict(i); v != nat.Forward && v != nat.Hold {
			n += c.Verdict[i].Load()
		}
	}
	for i := range c.Drop {
		n += c.Drop[i].Load()
	}
	return n
}
