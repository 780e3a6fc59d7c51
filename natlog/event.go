package natlog

import (
	"fmt"
	"strings"

	"github.com/fastnat/fastnat/packet"
)

// Type is what an Event records.
type Type uint8

// Event types. The zero value is not a type: an Event always names one.
// Keep typeNames in the same order.
const (
	SessionCreate      Type = iota + 1 // a session was created
	SessionDelete                      // a session ended (idle timeout, TCP close, reload)
	BindingCreate                      // an endpoint-independent mapping began (RFC 4787 REQ-1)
	BindingDelete                      // its last session ended
	BlockAlloc                         // a port block was given to an inside host
	BlockRelease                       // a port block went back to the pool
	AddressesExhausted                 // no public address of a rule could take a new host
	PortsExhausted                     // a public address had no free port for a new session
	QuotaExceeded                      // an inside host hit its per-host limit
	NumTypes
)

var typeNames = [NumTypes]string{
	"",
	"session-create",
	"session-delete",
	"binding-create",
	"binding-delete",
	"block-alloc",
	"block-release",
	"addresses-exhausted",
	"ports-exhausted",
	"quota-exceeded",
}

// String returns the type's stable name, such as "session-create".
func (t Type) String() string {
	if t > 0 && t < NumTypes {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// TypeNames lists every type's name, in Type order.
func TypeNames() []string { return append([]string(nil), typeNames[1:]...) }

// ParseType returns the type called name (case-insensitive).
func ParseType(name string) (Type, error) {
	lower := strings.ToLower(name)
	for t := Type(1); t < NumTypes; t++ {
		if typeNames[t] == lower {
			return t, nil
		}
	}
	return 0, fmt.Errorf("%w %q; known: %s", ErrUnknownType, name, strings.Join(TypeNames(), ", "))
}

// RuleKind says which kind of rule Event.Rule indexes.
type RuleKind uint8

// Rule kinds.
const (
	RuleNone     RuleKind = iota // no rule: Event.Rule means nothing
	RuleOutbound                 // nat.outbound[Rule]
	RuleServer                   // nat.server[Rule]
)

// String returns the rule list's configuration path, such as
// "nat.outbound"; "" for none.
func (k RuleKind) String() string {
	switch k {
	case RuleOutbound:
		return "nat.outbound"
	case RuleServer:
		return "nat.server"
	}
	return ""
}

// Via says how a rule made a session when the session is not the rule's
// plain translation.
type Via uint8

// Ways a rule makes a session.
const (
	ViaRule    Via = iota // the rule itself: an outbound or a published flow
	ViaHairpin            // an inside host reached a public endpoint of the NAT (RFC 4787 REQ-9): the server rule published it, or the outbound rule gave the sender its source
	ViaALG                // a data connection an ALG announced inside a control session the rule made (RuleNone: that session's rule is not known)
)

// String returns "hairpin", "alg", or "" for ViaRule.
func (v Via) String() string {
	switch v {
	case ViaHairpin:
		return "hairpin"
	case ViaALG:
		return "alg"
	}
	return ""
}

// Event is one thing the NAT decided. It is fixed-size and holds no
// pointers, so that a worker copies it into its Ring without allocating
// and the garbage collector never scans a ring.
//
// Tuples are always seen from the inside host's side of the NAT, whoever
// opened the session: Inside is the flow as it crosses the inside
// interface from the inside host (its source) to the remote endpoint as
// the inside host sees it, and Outside is the same flow as it crosses the
// outside interface, from the public address and port that stand for the
// inside host. So Outside.Src is always the public endpoint an outside
// party saw, and Inside.Src the host behind it — the pair a log must
// answer for. Which side opened the session is Inbound.
//
// Which fields mean something depends on Type:
//
//	SessionCreate       Time, Inside, Outside, Rule (and Via), App, Inbound
//	SessionDelete       as SessionCreate, plus Start, Packets, Bytes
//	BindingCreate       Time, Inside.Src (inside endpoint), Outside.Src (public endpoint), Inside.Proto, Rule
//	BindingDelete       as BindingCreate, plus Start
//	BlockAlloc          Time, Inside.SrcAddr (host), Outside.SrcAddr (public address), First, Last, Rule
//	BlockRelease        as BlockAlloc, plus Start
//	AddressesExhausted  Time, Rule
//	PortsExhausted      Time, Outside.SrcAddr (the full address), Inside.Proto, Rule
//	QuotaExceeded       Time, Inside.SrcAddr (host), Limit, Rule
type Event struct {
	// Time is when it happened, in Unix milliseconds.
	Time int64
	// Start is when what ended began (a session, binding or block), in
	// Unix milliseconds; 0 when unknown. A session's start is kept to the
	// second of the flow table's clock, so a deleted session's Start is
	// its create event's Time rounded down to that second.
	Start int64
	// Inside and Outside are the flow on either side of the NAT (see
	// above); Inside.Proto is the transport protocol of every event that
	// has one. ICMP queries carry their identifier in both ports.
	Inside  packet.Tuple
	Outside packet.Tuple
	// Packets and Bytes count a deleted session's traffic (whole IPv4
	// packets): [0] from its initiator, [1] from its responder.
	Packets [2]uint64
	Bytes   [2]uint64
	// Limit is the per-host limit a QuotaExceeded event hit, in ports.
	Limit uint32
	// Rule is the index of the rule in its configuration list (RuleKind
	// says which list).
	Rule uint16
	// First and Last are the ports of a port block, inclusive.
	First, Last uint16
	Type        Type
	RuleKind    RuleKind
	// Via says how the rule made a session: directly, by hairpinning or
	// as an ALG's data connection.
	Via Via
	// App is the session's portmap.App.
	App uint8
	// Inbound is set when the session was opened from outside (a nat
	// server rule or an ALG data connection to an inside host).
	Inbound bool
}
