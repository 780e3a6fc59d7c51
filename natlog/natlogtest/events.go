// Package natlogtest holds sample events for the tests of natlog's
// exporters and consumers: one event of every type, as the NAT makes
// them, each with its own timestamp.
package natlogtest

import (
	"net/netip"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// T0 is the first sample's time: 2025-12-03T09:18:26.295Z in Unix
// milliseconds.
const T0 = 1764753506295

// IP returns a dotted-quad IPv4 address as a host-order word.
func IP(s string) uint32 {
	b := netip.MustParseAddr(s).As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// Events returns one event of every type, in Type order, with a
// SessionCreate from an inside host first and, last, a SessionCreate
// opened from outside through a nat server rule. Every event has its own
// Time.
func Events() []natlog.Event {
	create := natlog.Event{Type: natlog.SessionCreate, Time: T0, RuleKind: natlog.RuleOutbound, App: uint8(portmap.AppHTTP),
		Inside:  packet.Tuple{SrcAddr: IP("10.77.0.5"), SrcPort: 40000, DstAddr: IP("198.51.100.1"), DstPort: 80, Proto: packet.ProtoTCP},
		Outside: packet.Tuple{SrcAddr: IP("198.18.0.204"), SrcPort: 40123, DstAddr: IP("198.51.100.1"), DstPort: 80, Proto: packet.ProtoTCP}}
	del := create
	del.Type, del.Start, del.Time = natlog.SessionDelete, T0, T0+120500
	del.Packets, del.Bytes = [2]uint64{17, 16}, [2]uint64{822, 1289}
	return []natlog.Event{
		create,
		del,
		{Type: natlog.BindingCreate, Time: T0 + 1, RuleKind: natlog.RuleOutbound,
			Inside:  packet.Tuple{SrcAddr: IP("10.77.0.6"), SrcPort: 5000, Proto: packet.ProtoUDP},
			Outside: packet.Tuple{SrcAddr: IP("198.18.0.204"), SrcPort: 41000, Proto: packet.ProtoUDP}},
		{Type: natlog.BindingDelete, Time: T0 + 2, Start: T0 + 1, RuleKind: natlog.RuleOutbound,
			Inside:  packet.Tuple{SrcAddr: IP("10.77.0.6"), SrcPort: 5000, Proto: packet.ProtoUDP},
			Outside: packet.Tuple{SrcAddr: IP("198.18.0.204"), SrcPort: 41000, Proto: packet.ProtoUDP}},
		{Type: natlog.BlockAlloc, Time: T0 + 3, RuleKind: natlog.RuleOutbound, Rule: 1, First: 1024, Last: 1535,
			Inside: packet.Tuple{SrcAddr: IP("10.77.0.7")}, Outside: packet.Tuple{SrcAddr: IP("198.18.0.205")}},
		{Type: natlog.BlockRelease, Time: T0 + 4, Start: T0 + 3, RuleKind: natlog.RuleOutbound, Rule: 1, First: 1024, Last: 1535,
			Inside: packet.Tuple{SrcAddr: IP("10.77.0.7")}, Outside: packet.Tuple{SrcAddr: IP("198.18.0.205")}},
		{Type: natlog.AddressesExhausted, Time: T0 + 5, RuleKind: natlog.RuleOutbound, Rule: 2},
		{Type: natlog.PortsExhausted, Time: T0 + 6, RuleKind: natlog.RuleOutbound,
			Inside: packet.Tuple{Proto: packet.ProtoUDP}, Outside: packet.Tuple{SrcAddr: IP("198.18.0.204")}},
		{Type: natlog.QuotaExceeded, Time: T0 + 7, RuleKind: natlog.RuleOutbound, Rule: 1, Limit: 2048,
			Inside: packet.Tuple{SrcAddr: IP("10.77.0.7")}},
		{Type: natlog.SessionCreate, Time: T0 + 8, RuleKind: natlog.RuleServer, Rule: 0, App: uint8(portmap.AppFTP), Inbound: true,
			Inside:  packet.Tuple{SrcAddr: IP("10.77.0.226"), SrcPort: 2021, DstAddr: IP("198.51.100.7"), DstPort: 51000, Proto: packet.ProtoTCP},
			Outside: packet.Tuple{SrcAddr: IP("198.18.0.204"), SrcPort: 9091, DstAddr: IP("198.51.100.7"), DstPort: 51000, Proto: packet.ProtoTCP}},
	}
}
