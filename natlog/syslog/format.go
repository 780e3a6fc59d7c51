package syslog

import (
	"strconv"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// SDID is the SD-ID of fastnat's structured data. RFC 5424 §7.2.2 keeps
// names without "@" for IANA; private ones carry an enterprise number, and
// 32473 is the one RFC 5612 reserves for documentation and examples.
const SDID = "nat@32473"

// Severities (RFC 5424 §6.2.1).
const (
	sevWarning = 4
	sevInfo    = 6
)

// header holds the parts of an RFC 5424 header that do not change from
// one message to the next.
type header struct {
	facility int
	hostname string // HOSTNAME, or "-"
	appName  string // APP-NAME
	procID   string // PROCID
}

// severity is informational for what the NAT did and warning for what it
// could not do.
func severity(t natlog.Type) int {
	switch t {
	case natlog.AddressesExhausted, natlog.PortsExhausted, natlog.QuotaExceeded:
		return sevWarning
	}
	return sevInfo
}

// appendMessage appends one RFC 5424 message for e:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [nat@32473 ...] MSG
//
// MSGID is the event type; the structured data carries every field of
// the event as a parameter; MSG is natlog's one-line text without its
// timestamp, plain ASCII (RFC 5424 §6.4 MSG-ANY: no BOM).
func (h *header) appendMessage(b []byte, e *natlog.Event) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(h.facility*8+severity(e.Type)), 10)
	b = append(b, ">1 "...)
	// RFC 5424 §6.2.3: RFC 3339 with at most six fractional digits; UTC.
	b = time.UnixMilli(e.Time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, ' ')
	b = append(b, h.hostname...)
	b = append(b, ' ')
	b = append(b, h.appName...)
	b = append(b, ' ')
	b = append(b, h.procID...)
	b = append(b, ' ')
	b = append(b, e.Type.String()...)
	b = append(b, " ["...)
	b = append(b, SDID...)
	b = appendSD(b, e)
	b = append(b, "] "...)
	return e.AppendBody(b)
}

// appendSD appends the SD-PARAMs of e.
func appendSD(b []byte, e *natlog.Event) []byte {
	if e.HasRule() {
		b = append(b, ` rule="`...)
		start := len(b)
		b = e.AppendRule(b)
		b = escape(b, start)
		b = append(b, '"')
	}
	proto := func(b []byte) []byte { return param(b, "proto", packet.ProtoName(e.Inside.Proto)) }
	switch e.Type {
	case natlog.SessionCreate, natlog.SessionDelete:
		b = proto(b)
		b = addrParam(b, "src", e.Inside.SrcAddr)
		b = uintParam(b, "sport", uint64(e.Inside.SrcPort))
		b = addrParam(b, "dst", e.Inside.DstAddr)
		b = uintParam(b, "dport", uint64(e.Inside.DstPort))
		b = addrParam(b, "xsrc", e.Outside.SrcAddr)
		b = uintParam(b, "xsport", uint64(e.Outside.SrcPort))
		b = addrParam(b, "xdst", e.Outside.DstAddr)
		b = uintParam(b, "xdport", uint64(e.Outside.DstPort))
		b = param(b, "app", portmap.App(e.App).String())
		if e.Inbound {
			b = param(b, "inbound", "1")
		}
		if e.Type == natlog.SessionDelete {
			b = timeParam(b, "start", e.Start)
			b = uintParam(b, "ipkts", e.Packets[0])
			b = uintParam(b, "ibytes", e.Bytes[0])
			b = uintParam(b, "rpkts", e.Packets[1])
			b = uintParam(b, "rbytes", e.Bytes[1])
		}
	case natlog.BindingCreate, natlog.BindingDelete:
		b = proto(b)
		b = addrParam(b, "src", e.Inside.SrcAddr)
		b = uintParam(b, "sport", uint64(e.Inside.SrcPort))
		b = addrParam(b, "xsrc", e.Outside.SrcAddr)
		b = uintParam(b, "xsport", uint64(e.Outside.SrcPort))
		if e.Type == natlog.BindingDelete {
			b = timeParam(b, "start", e.Start)
		}
	case natlog.BlockAlloc, natlog.BlockRelease:
		b = addrParam(b, "src", e.Inside.SrcAddr)
		b = addrParam(b, "xsrc", e.Outside.SrcAddr)
		b = uintParam(b, "first", uint64(e.First))
		b = uintParam(b, "last", uint64(e.Last))
		if e.Type == natlog.BlockRelease {
			b = timeParam(b, "start", e.Start)
		}
	case natlog.PortsExhausted:
		b = proto(b)
		b = addrParam(b, "xsrc", e.Outside.SrcAddr)
	case natlog.QuotaExceeded:
		b = addrParam(b, "src", e.Inside.SrcAddr)
		b = uintParam(b, "limit", uint64(e.Limit))
	}
	return b
}

// escape escapes b[start:] as a PARAM-VALUE: RFC 5424 §6.3.3 wants '"',
// '\' and ']' preceded by a backslash (the rule's "nat.outbound[0]" has
// one). The other values are addresses, numbers and fixed names without
// any of them.
func escape(b []byte, start int) []byte {
	n := 0
	for _, c := range b[start:] {
		if c == '"' || c == '\\' || c == ']' {
			n++
		}
	}
	if n == 0 {
		return b
	}
	b = append(b, make([]byte, n)...)
	w := len(b)
	for r := len(b) - n - 1; r >= start; r-- {
		c := b[r]
		w--
		b[w] = c
		if c == '"' || c == '\\' || c == ']' {
			w--
			b[w] = '\\'
		}
	}
	return b
}

func param(b []byte, name, value string) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = append(b, value...)
	return append(b, '"')
}

func uintParam(b []byte, name string, v uint64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = strconv.AppendUint(b, v, 10)
	return append(b, '"')
}

func addrParam(b []byte, name string, a uint32) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = natlog.AppendAddr(b, a)
	return append(b, '"')
}

func timeParam(b []byte, name string, ms int64) []byte {
	if ms == 0 {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}
