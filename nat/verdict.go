package nat

// Verdict is what the engine decided for one packet: Forward, or the reason
// it was dropped. Drop reasons are counted per worker; their String names are
// metric labels and stay stable.
type Verdict uint8

// Verdicts. Keep verdictNames in the same order.
const (
	Forward             Verdict = iota // translated; send it
	DropNoRule                         // new flow from inside matching no rule
	DropUnsolicited                    // new flow from outside: no session, expectation or server rule
	DropTCPNoSYN                       // new TCP flow whose first packet is not a SYN (or is a SYN with FIN)
	DropTableFull                      // flow table has no free slot
	DropPortsExhausted                 // no free public port in the pool (for an address-only session: no pool address free toward that remote)
	DropTTLExpired                     // TTL would reach zero
	DropFragNoSession                  // non-first fragment whose datagram's session is not on the side it came from
	DropICMPNoSession                  // ICMP error whose embedded packet matches no session, or not addressed to that packet's sender
	DropICMPUnsupported                // ICMP type fastnat does not translate
	DropProtocol                       // IP protocol fastnat does not translate: AH, SCTP, DCCP, UDP-Lite
	DropRace                           // a concurrent creation won and the retry failed
	DropTCPOutOfWindow                 // TCP segment outside the receiver's window (or a SYN/ACK or RST not acknowledging the SYN): state unchanged
	DropBadL4Checksum                  // a packet that would create a session has a wrong TCP or UDP checksum
	DropQuotaExceeded                  // the inside host holds all the ports its port blocks or deterministic range allow
	DropHairpinFiltered                // hairpinned to a mapping whose owner has not sent to the sender's public endpoint
	DropMartian                        // a new flow from or to an address no host has (0/8, 127/8, multicast, 255.255.255.255), or with an address of the router's own (public or an interface's) as its source
	DropTCPBadFlags                    // TCP segment of a tracked connection with flags no stack sends (NULL, FIN without ACK, SYN with RST, XMAS, ...)
	DropTCPAckWindow                   // TCP segment acknowledging data its receiver has not sent, or (a RST or FIN) data acknowledged long since: state unchanged
	DropBroadcast                      // a new flow to the broadcast address of a prefix of the router's interfaces (a directed broadcast: not forwarded)
	Hold                               // not a drop: an early fragment to keep until Released names its datagram
	NumVerdicts
)

var verdictNames = [NumVerdicts]string{
	"forward",
	"no_rule",
	"unsolicited",
	"tcp_no_syn",
	"table_full",
	"ports_exhausted",
	"ttl_expired",
	"frag_no_session",
	"icmp_no_session",
	"icmp_unsupported",
	"protocol",
	"race",
	"tcp_out_of_window",
	"bad_l4_checksum",
	"quota_exceeded",
	"hairpin_filtered",
	"martian",
	"tcp_bad_flags",
	"tcp_ack_out_of_window",
	"directed_broadcast",
	"frag_held",
}

// String returns the verdict's stable snake_case name.
func (v Verdict) String() string {
	if v < NumVerdicts {
		return verdictNames[v]
	}
	return "unknown"
}

// Side is the role of the interface a packet arrives on or leaves by.
type Side uint8

// Sides.
const (
	Inside Side = iota
	Outside
)

// String returns "inside" or "outside".
func (s Side) String() string {
	if s == Inside {
		return "inside"
	}
	return "outside"
}
