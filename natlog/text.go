package natlog

import (
	"strconv"
	"time"

	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// AppendText appends the event's one-line human form, as `fastnat
// events` prints it and syslog carries it as the message:
//
//	2025-12-03T09:18:26.295Z session-create tcp 10.77.0.5:40000 -> 198.51.100.1:80 as 198.18.0.204:40123 -> 198.51.100.1:80 nat.outbound[0] app=http
//	2025-12-03T09:20:26.000Z session-delete tcp ... nat.outbound[0] app=http duration=120s initiator=17/822 responder=16/1289
//	2025-12-03T09:18:26.295Z block-alloc 10.77.0.5 as 198.18.0.204:1024-1535 nat.outbound[0]
//
// (packets/bytes per direction).
func (e *Event) AppendText(b []byte) []byte {
	b = time.UnixMilli(e.Time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, ' ')
	return e.AppendBody(b)
}

// AppendBody appends AppendText's line without its timestamp, for
// formats that carry the time in a field of their own.
func (e *Event) AppendBody(b []byte) []byte {
	b = append(b, e.Type.String()...)
	switch e.Type {
	case SessionCreate, SessionDelete:
		b = append(b, ' ')
		b = append(b, packet.ProtoName(e.Inside.Proto)...)
		b = append(b, ' ')
		b = appendEndpoint(b, e.Inside.SrcAddr, e.Inside.SrcPort)
		b = append(b, " -> "...)
		b = appendEndpoint(b, e.Inside.DstAddr, e.Inside.DstPort)
		b = append(b, " as "...)
		b = appendEndpoint(b, e.Outside.SrcAddr, e.Outside.SrcPort)
		b = append(b, " -> "...)
		b = appendEndpoint(b, e.Outside.DstAddr, e.Outside.DstPort)
		b = appendRule(b, e)
		if e.Inbound {
			b = append(b, " inbound"...)
		}
		b = append(b, " app="...)
		b = append(b, portmap.App(e.App).String()...)
		if e.Type == SessionDelete {
			b = appendDuration(b, e)
			b = append(b, " initiator="...)
			b = appendCount(b, e.Packets[0], e.Bytes[0])
			b = append(b, " responder="...)
			b = appendCount(b, e.Packets[1], e.Bytes[1])
		}
	case BindingCreate, BindingDelete:
		b = append(b, ' ')
		b = append(b, packet.ProtoName(e.Inside.Proto)...)
		b = append(b, ' ')
		b = appendEndpoint(b, e.Inside.SrcAddr, e.Inside.SrcPort)
		b = append(b, " as "...)
		b = appendEndpoint(b, e.Outside.SrcAddr, e.Outside.SrcPort)
		b = appendRule(b, e)
		if e.Type == BindingDelete {
			b = appendDuration(b, e)
		}
	case BlockAlloc, BlockRelease:
		b = append(b, ' ')
		b = AppendAddr(b, e.Inside.SrcAddr)
		b = append(b, " as "...)
		b = AppendAddr(b, e.Outside.SrcAddr)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(e.First), 10)
		b = append(b, '-')
		b = strconv.AppendUint(b, uint64(e.Last), 10)
		b = appendRule(b, e)
		if e.Type == BlockRelease {
			b = appendDuration(b, e)
		}
	case AddressesExhausted:
		b = appendRule(b, e)
	case PortsExhausted:
		b = append(b, ' ')
		b = append(b, packet.ProtoName(e.Inside.Proto)...)
		b = append(b, ' ')
		b = AppendAddr(b, e.Outside.SrcAddr)
		b = appendRule(b, e)
	case QuotaExceeded:
		b = append(b, ' ')
		b = AppendAddr(b, e.Inside.SrcAddr)
		b = append(b, " limit="...)
		b = strconv.AppendUint(b, uint64(e.Limit), 10)
		b = appendRule(b, e)
	}
	return b
}

// String returns AppendText's line.
func (e *Event) String() string { return string(e.AppendText(nil)) }

// HasRule reports whether the event names a rule (AppendRule appends
// something).
func (e *Event) HasRule() bool { return e.RuleKind != RuleNone || e.Via != ViaRule }

// AppendRule appends the rule's configuration path, such as
// "nat.outbound[2]", with "/hairpin" or "/alg" for a session the rule
// made that way ("nat.server[0]/alg"); "alg" alone for an ALG's data
// connection whose control session's rule is not known; nothing for no
// rule. Sessions in `fastnat show sessions` name their rules the same way.
func (e *Event) AppendRule(b []byte) []byte {
	return AppendRuleName(b, e.RuleKind, e.Rule, e.Via)
}

// AppendRuleName appends the name of rule index of kind, made via v, as
// AppendRule does.
func AppendRuleName(b []byte, kind RuleKind, index uint16, v Via) []byte {
	if kind == RuleNone {
		return append(b, v.String()...)
	}
	b = append(b, kind.String()...)
	b = append(b, '[')
	b = strconv.AppendUint(b, uint64(index), 10)
	b = append(b, ']')
	if v != ViaRule {
		b = append(b, '/')
		b = append(b, v.String()...)
	}
	return b
}

func appendRule(b []byte, e *Event) []byte {
	if !e.HasRule() {
		return b
	}
	return e.AppendRule(append(b, ' '))
}

func appendDuration(b []byte, e *Event) []byte {
	if e.Start == 0 {
		return b
	}
	b = append(b, " duration="...)
	return append(b, (time.Duration(e.Time-e.Start) * time.Millisecond).String()...)
}

func appendCount(b []byte, packets, bytes uint64) []byte {
	b = strconv.AppendUint(b, packets, 10)
	b = append(b, '/')
	return strconv.AppendUint(b, bytes, 10)
}

// AppendAddr appends a host-order IPv4 address in dotted quad.
func AppendAddr(b []byte, a uint32) []byte {
	b = strconv.AppendUint(b, uint64(a>>24), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(a>>16&0xff), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(a>>8&0xff), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(a&0xff), 10)
}

func appendEndpoint(b []byte, a uint32, p uint16) []byte {
	b = AppendAddr(b, a)
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(p), 10)
}
