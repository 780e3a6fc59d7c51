package packet

import "strconv"

// Result is the outcome of Parse. Everything but OK is a reason to drop (or,
// for ErrNotIPv4, to pass the frame on untouched); String gives a stable
// snake_case name for use as a counter label.
type Result uint8

// Parse results, in the order Parse checks for them.
const (
	OK                Result = iota
	ErrTooShort              // frame shorter than the headers it claims
	ErrNotIPv4               // EtherType is not IPv4 (ARP, IPv6, QinQ, ...): not ours
	ErrBadIPVersion          // EtherType IPv4 but version field not 4
	ErrBadIHL                // IHL < 5
	ErrBadTotalLength        // total length < IHL*4 or beyond the frame
	ErrBadIPChecksum         // IPv4 header checksum verification failed
	ErrSourceRoute           // a source route option (LSRR or SSRR): dropped, as the kernel does by default
	ErrBadL4                 // transport header truncated or inconsistent
	ErrBadEmbedded           // ICMP error whose embedded IPv4/L4 header is unusable
	NumResults               // number of Result values, for counter arrays
)

var resultNames = [NumResults]string{
	OK:                "ok",
	ErrTooShort:       "too_short",
	ErrNotIPv4:        "not_ipv4",
	ErrBadIPVersion:   "bad_ip_version",
	ErrBadIHL:         "bad_ihl",
	ErrBadTotalLength: "bad_total_length",
	ErrBadIPChecksum:  "bad_ip_checksum",
	ErrSourceRoute:    "source_route",
	ErrBadL4:          "bad_l4",
	ErrBadEmbedded:    "bad_embedded",
}

// String returns the snake_case name of r, or "result_N" for a value out of
// range.
func (r Result) String() string {
	if r < NumResults {
		return resultNames[r]
	}
	return "result_" + strconv.Itoa(int(r))
}

// ICMPKind sorts ICMP messages by what NAT must do with them.
type ICMPKind uint8

// ICMP kinds.
const (
	ICMPNone       ICMPKind = iota // not ICMP, a non-first fragment, or a type NAT does not translate
	ICMPQuery                      // echo, timestamp, information or address mask request: opens a flow keyed by its identifier
	ICMPQueryReply                 // the matching replies: belong to the flow of their request
	ICMPError                      // destination unreachable, source quench, redirect, time exceeded, parameter problem: about an embedded packet
)

var icmpKindNames = [...]string{
	ICMPNone:       "none",
	ICMPQuery:      "query",
	ICMPQueryReply: "query_reply",
	ICMPError:      "error",
}

// String returns the snake_case name of k.
func (k ICMPKind) String() string {
	if int(k) < len(icmpKindNames) {
		return icmpKindNames[k]
	}
	return "icmp_kind_" + strconv.Itoa(int(k))
}

// KindOf returns the ICMPKind of an ICMP message type.
func KindOf(icmpType uint8) ICMPKind {
	switch icmpType {
	case ICMPEcho, ICMPTimestamp, ICMPInfoRequest, ICMPAddressMaskRequest:
		return ICMPQuery
	case ICMPEchoReply, ICMPTimestampReply, ICMPInfoReply, ICMPAddressMaskReply:
		return ICMPQueryReply
	case ICMPDestUnreachable, ICMPSourceQuench, ICMPRedirect, ICMPTimeExceeded, ICMPParamProblem:
		return ICMPError
	}
	return ICMPNone
}
