package ipfix

import (
	"encoding/binary"

	"github.com/fastnat/fastnat/natlog"
)

// IANA IPFIX Information Elements the templates use (the "IPFIX
// Information Elements" registry; RFC 8158 defines the NAT ones).
const (
	ieProtocolIdentifier               = 4
	ieSourceTransportPort              = 7
	ieSourceIPv4Address                = 8
	ieDestinationTransportPort         = 11
	ieDestinationIPv4Address           = 12
	ieOctetTotalCount                  = 85
	iePacketTotalCount                 = 86
	ieFlowStartMilliseconds            = 152
	ieFlowEndMilliseconds              = 153
	iePostNATSourceIPv4Address         = 225
	iePostNATDestinationIPv4Address    = 226
	iePostNAPTSourceTransportPort      = 227
	iePostNAPTDestinationTransportPort = 228
	ieNATEvent                         = 230
	ieNATPoolID                        = 283
	ieObservationTimeMilliseconds      = 323
	iePortRangeStart                   = 361
	iePortRangeEnd                     = 362
	iePortRangeStepSize                = 363
	iePortRangeNumPorts                = 364
	ieNATQuotaExceededEvent            = 466
	ieMaxEntriesPerUser                = 473
)

// reversePEN is the enterprise number of RFC 5103's reverse Information
// Elements: the same element, counted in the opposite direction of a
// biflow.
const reversePEN = 29305

// natEvent values, from the IANA "NAT Event Type" registry that RFC 8158
// created (1 and 2 are the historic NSEL translation create and delete;
// RFC 8158's NAT44 events start at 3).
const (
	natEventAddressesExhausted = 3
	natEventSessionCreate      = 4 // NAT44 session create
	natEventSessionDelete      = 5 // NAT44 session delete
	natEventBIBCreate          = 8 // NAT44 BIB create: an endpoint-independent binding
	natEventBIBDelete          = 9
	natEventPortsExhausted     = 12
	natEventQuotaExceeded      = 13
	natEventBlockAlloc         = 16 // port block allocation
	natEventBlockRelease       = 17 // port block de-allocation
)

// natQuotaExceededEvent value for a per-host limit (IANA registry:
// "Maximum entries per user").
const quotaEntriesPerUser = 3

// field is one Field Specifier of a template (RFC 7011 §3.2): an
// Information Element, its length in a data record and, for an
// enterprise-specific element, its enterprise number.
type field struct {
	id, length uint16
	pen        uint32
}

// template is one Template Record and the record encoder that follows it
// field for field.
type template struct {
	id     uint16
	name   string
	fields []field
	encode func(b []byte, e *natlog.Event, natEvent uint8) []byte
}

// recordLen is the length of one data record of t.
func (t *template) recordLen() int {
	n := 0
	for _, f := range t.fields {
		n += int(f.length)
	}
	return n
}

// Templates, by index; their IDs start at 256 (RFC 7011 §3.4.1: 0-255
// are reserved for sets).
const (
	tmplSessionCreate = iota
	tmplSessionDelete
	tmplBinding
	tmplAddressesExhausted
	tmplPortsExhausted
	tmplQuotaExceeded
	tmplBlock
	numTemplates
)

var be = binary.BigEndian

// sessionFields are RFC 8158's NAT44 session template: the tuple
// before and after translation. fastnat logs every session from the
// inside host's side (natlog.Event), so the source is the inside host and
// the postNAT source the public endpoint that stood for it.
var sessionFields = []field{
	{ieObservationTimeMilliseconds, 8, 0},
	{ieNATEvent, 1, 0},
	{ieSourceIPv4Address, 4, 0},
	{iePostNATSourceIPv4Address, 4, 0},
	{ieProtocolIdentifier, 1, 0},
	{ieSourceTransportPort, 2, 0},
	{iePostNAPTSourceTransportPort, 2, 0},
	{ieDestinationIPv4Address, 4, 0},
	{iePostNATDestinationIPv4Address, 4, 0},
	{ieDestinationTransportPort, 2, 0},
	{iePostNAPTDestinationTransportPort, 2, 0},
}

func appendSession(b []byte, e *natlog.Event, ev uint8) []byte {
	b = be.AppendUint64(b, uint64(e.Time))
	b = append(b, ev)
	b = be.AppendUint32(b, e.Inside.SrcAddr)
	b = be.AppendUint32(b, e.Outside.SrcAddr)
	b = append(b, e.Inside.Proto)
	b = be.AppendUint16(b, e.Inside.SrcPort)
	b = be.AppendUint16(b, e.Outside.SrcPort)
	b = be.AppendUint32(b, e.Inside.DstAddr)
	b = be.AppendUint32(b, e.Outside.DstAddr)
	b = be.AppendUint16(b, e.Inside.DstPort)
	return be.AppendUint16(b, e.Outside.DstPort)
}

var templates = [numTemplates]template{
	tmplSessionCreate: {id: 256, name: "NAT44 session create", fields: sessionFields, encode: appendSession},
	// A delete adds when the session began and ended and its traffic:
	// packetTotalCount and octetTotalCount (whole IPv4 packets, as
	// fastnat counts them) from the initiator, and RFC 5103's reverse
	// elements for the responder's direction. (initiatorOctets would count
	// layer-4 payload only.)
	tmplSessionDelete: {id: 257, name: "NAT44 session delete",
		fields: append(append([]field(nil), sessionFields...),
			field{ieFlowStartMilliseconds, 8, 0},
			field{ieFlowEndMilliseconds, 8, 0},
			field{iePacketTotalCount, 8, 0},
			field{iePacketTotalCount, 8, reversePEN},
			field{ieOctetTotalCount, 8, 0},
			field{ieOctetTotalCount, 8, reversePEN},
		),
		encode: func(b []byte, e *natlog.Event, ev uint8) []byte {
			b = appendSession(b, e, ev)
			b = be.AppendUint64(b, uint64(e.Start))
			b = be.AppendUint64(b, uint64(e.Time))
			b = be.AppendUint64(b, e.Packets[0])
			b = be.AppendUint64(b, e.Packets[1])
			b = be.AppendUint64(b, e.Bytes[0])
			return be.AppendUint64(b, e.Bytes[1])
		}},
	// RFC 8158: NAT44 BIB create and delete.
	tmplBinding: {id: 258, name: "NAT44 BIB create/delete",
		fields: []field{
			{ieObservationTimeMilliseconds, 8, 0},
			{ieNATEvent, 1, 0},
			{ieSourceIPv4Address, 4, 0},
			{iePostNATSourceIPv4Address, 4, 0},
			{ieProtocolIdentifier, 1, 0},
			{ieSourceTransportPort, 2, 0},
			{iePostNAPTSourceTransportPort, 2, 0},
		},
		encode: func(b []byte, e *natlog.Event, ev uint8) []byte {
			b = be.AppendUint64(b, uint64(e.Time))
			b = append(b, ev)
			b = be.AppendUint32(b, e.Inside.SrcAddr)
			b = be.AppendUint32(b, e.Outside.SrcAddr)
			b = append(b, e.Inside.Proto)
			b = be.AppendUint16(b, e.Inside.SrcPort)
			return be.AppendUint16(b, e.Outside.SrcPort)
		}},
	// RFC 8158: NAT addresses exhausted, with the pool's ID; fastnat
	// numbers pools by their nat.outbound rule, from 1.
	tmplAddressesExhausted: {id: 259, name: "NAT addresses exhausted",
		fields: []field{
			{ieObservationTimeMilliseconds, 8, 0},
			{ieNATEvent, 1, 0},
			{ieNATPoolID, 4, 0},
		},
		encode: func(b []byte, e *natlog.Event, ev uint8) []byte {
			b = be.AppendUint64(b, uint64(e.Time))
			b = append(b, ev)
			return be.AppendUint32(b, PoolID(e))
		}},
	// RFC 8158: NAT ports exhausted on one public address.
	tmplPortsExhausted: {id: 260, name: "NAT ports exhausted",
		fields: []field{
			{ieObservationTimeMilliseconds, 8, 0},
			{ieNATEvent, 1, 0},
			{iePostNATSourceIPv4Address, 4, 0},
			{ieProtocolIdentifier, 1, 0},
		},
		encode: func(b []byte, e *natlog.Event, ev uint8) []byte {
			b = be.AppendUint64(b, uint64(e.Time))
			b = append(b, ev)
			b = be.AppendUint32(b, e.Outside.SrcAddr)
			return append(b, e.Inside.Proto)
		}},
	// RFC 8158: quota exceeded, maximum entries per user. The
	// entries are the ports a host may hold.
	tmplQuotaExceeded: {id: 261, name: "NAT quota exceeded (entries per user)",
		fields: []field{
			{ieObservationTimeMilliseconds, 8, 0},
			{ieNATEvent, 1, 0},
			{ieNATQuotaExceededEvent, 4, 0},
			{ieMaxEntriesPerUser, 4, 0},
			{ieSourceIPv4Address, 4, 0},
		},
		encode: func(b []byte, e *natlog.Event, ev uint8) []byte {
			b = be.AppendUint64(b, uint64(e.Time))
			b = append(b, ev)
			b = be.AppendUint32(b, quotaEntriesPerUser)
			b = be.AppendUint32(b, e.Limit)
			return be.AppendUint32(b, e.Inside.SrcAddr)
		}},
	// RFC 8158: port block allocation and de-allocation. A block is
	// a contiguous range, so its step is 1.
	tmplBlock: {id: 262, name: "NAT port block allocation/de-allocation",
		fields: []field{
			{ieObservationTimeMilliseconds, 8, 0},
			{ieNATEvent, 1, 0},
			{ieSourceIPv4Address, 4, 0},
			{iePostNATSourceIPv4Address, 4, 0},
			{iePortRangeStart, 2, 0},
			{iePortRangeEnd, 2, 0},
			{iePortRangeStepSize, 2, 0},
			{iePortRangeNumPorts, 2, 0},
		},
		encode: func(b []byte, e *natlog.Event, ev uint8) []byte {
			b = be.AppendUint64(b, uint64(e.Time))
			b = append(b, ev)
			b = be.AppendUint32(b, e.Inside.SrcAddr)
			b = be.AppendUint32(b, e.Outside.SrcAddr)
			b = be.AppendUint16(b, e.First)
			b = be.AppendUint16(b, e.Last)
			b = be.AppendUint16(b, 1)
			return be.AppendUint16(b, e.Last-e.First+1)
		}},
}

// PoolID is the natPoolId fastnat exports for an event's rule: the
// nat.outbound rule's index plus 1 (0 means no pool).
func PoolID(e *natlog.Event) uint32 {
	if e.RuleKind != natlog.RuleOutbound {
		return 0
	}
	return uint32(e.Rule) + 1
}

// kinds maps an event type to its template and natEvent value.
var kinds = [natlog.NumTypes]struct {
	tmpl     int
	natEvent uint8
}{
	natlog.SessionCreate:      {tmplSessionCreate, natEventSessionCreate},
	natlog.SessionDelete:      {tmplSessionDelete, natEventSessionDelete},
	natlog.BindingCreate:      {tmplBinding, natEventBIBCreate},
	natlog.BindingDelete:      {tmplBinding, natEventBIBDelete},
	natlog.BlockAlloc:         {tmplBlock, natEventBlockAlloc},
	natlog.BlockRelease:       {tmplBlock, natEventBlockRelease},
	natlog.AddressesExhausted: {tmplAddressesExhausted, natEventAddressesExhausted},
	natlog.PortsExhausted:     {tmplPortsExhausted, natEventPortsExhausted},
	natlog.QuotaExceeded:      {tmplQuotaExceeded, natEventQuotaExceeded},
}

// appendTemplateSet appends one Template Set (RFC 7011 §3.3.2, Set ID 2)
// holding every template.
func appendTemplateSet(b []byte) []byte {
	start := len(b)
	b = be.AppendUint16(b, setTemplate)
	b = be.AppendUint16(b, 0) // length, below
	for i := range templates {
		t := &templates[i]
		b = be.AppendUint16(b, t.id)
		b = be.AppendUint16(b, uint16(len(t.fields)))
		for _, f := range t.fields {
			if f.pen != 0 {
				// The enterprise bit on the element ID says an
				// enterprise number follows (RFC 7011 §3.2).
				b = be.AppendUint16(b, f.id|0x8000)
				b = be.AppendUint16(b, f.length)
				b = be.AppendUint32(b, f.pen)
				continue
			}
			b = be.AppendUint16(b, f.id)
			b = be.AppendUint16(b, f.length)
		}
	}
	be.PutUint16(b[start+2:], uint16(len(b)-start))
	return b
}
