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
	DropNoNeighbor   DropReason = iota // next hop's MAC not resolved yet
	DropTxFull                         // the tx ring took fewer frames than offered
	DropALGRingFull                    // the ALG's ring was full (TCP retransmits)
	DropALGVerdict                     // the ALG dropped the frame (TCP retransmits)
	DropHoldOverflow                   // no room to hold an early fragment
	DropALGNoFrame                     // no free frame for an answer of the ALG's
	NumDropReasons
)

var dropNames = [NumDropReasons]string{"no_neighbor", "tx_full", "alg_ring_full", "alg_dropped", "hold_overflow", "alg_no_frame"}

// String returns the reason's stable snake_case name.
func (d DropReason) String() string {
	if d < NumDropReasons {
		return dropNames[d]
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
	_    [64]byte
}

func (c *Counters) publish(k *counts) {
	c.RxPackets.Store(k.rxPackets)
	c.RxBytes.Store(k.rxBytes)
	c.TxPackets.Store(k.txPackets)
	c.TxBytes.Store(k.txBytes)
	c.ALGDiverted.Store(k.algDiverted)
	c.ALGReturned.Store(k.algReturned)
	c.Held.Store(k.held)
	for i := range k.parse {
		c.Parse[i].Store(k.parse[i])
	}
	for i := range k.verdict {
		c.Verdict[i].Store(k.verdict[i])
	}
	for i := range k.drop {
		c.Drop[i].Store(k.drop[i])
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
