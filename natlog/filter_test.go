package natlog

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

func ip(s string) uint32 {
	b := netip.MustParseAddr(s).As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// sample events of every shape, as the NAT makes them.
var (
	evCreate = Event{Type: SessionCreate, Time: 1764753506295, RuleKind: RuleOutbound, Rule: 0, App: uint8(portmap.AppHTTP),
		Inside:  packet.Tuple{SrcAddr: ip("10.77.0.5"), SrcPort: 40000, DstAddr: ip("198.51.100.1"), DstPort: 80, Proto: packet.ProtoTCP},
		Outside: packet.Tuple{SrcAddr: ip("198.18.0.204"), SrcPort: 40123, DstAddr: ip("198.51.100.1"), DstPort: 80, Proto: packet.ProtoTCP}}
	evDelete = func() Event {
		e := evCreate
		e.Type, e.Start, e.Time = SessionDelete, evCreate.Time, evCreate.Time+120000
		e.Packets, e.Bytes = [2]uint64{17, 16}, [2]uint64{822, 1289}
		return e
	}()
	evInbound = Event{Type: SessionCreate, Time: 1764753506295, RuleKind: RuleServer, Rule: 1, App: uint8(portmap.AppFTP), Inbound: true,
		Inside:  packet.Tuple{SrcAddr: ip("10.77.0.226"), SrcPort: 2021, DstAddr: ip("198.51.100.7"), DstPort: 51000, Proto: packet.ProtoTCP},
		Outside: packet.Tuple{SrcAddr: ip("198.18.0.204"), SrcPort: 9091, DstAddr: ip("198.51.100.7"), DstPort: 51000, Proto: packet.ProtoTCP}}
	evBinding = Event{Type: BindingCreate, Time: 1764753506295, RuleKind: RuleOutbound,
		Inside:  packet.Tuple{SrcAddr: ip("10.77.0.5"), SrcPort: 5000, Proto: packet.ProtoUDP},
		Outside: packet.Tuple{SrcAddr: ip("198.18.0.204"), SrcPort: 41000, Proto: packet.ProtoUDP}}
	evBlock = Event{Type: BlockAlloc, Time: 1764753506295, RuleKind: RuleOutbound, First: 1024, Last: 1535,
		Inside: packet.Tuple{SrcAddr: ip("10.77.0.5")}, Outside: packet.Tuple{SrcAddr: ip("198.18.0.204")}}
	evAddrs = Event{Type: AddressesExhausted, Time: 1764753506295, RuleKind: RuleOutbound, Rule: 2}
	evPorts = Event{Type: PortsExhausted, Time: 1764753506295, RuleKind: RuleOutbound,
		Inside: packet.Tuple{Proto: packet.ProtoUDP}, Outside: packet.Tuple{SrcAddr: ip("198.18.0.204")}}
	evQuota = Event{Type: QuotaExceeded, Time: 1764753506295, RuleKind: RuleOutbound, Limit: 1024,
		Inside: packet.Tuple{SrcAddr: ip("10.77.0.5")}}
)

func TestFilterMatch(t *testing.T) {
	pfx := func(s string) netip.Prefix { return netip.MustParsePrefix(s) }
	all := []Event{evCreate, evDelete, evInbound, evBinding, evBlock, evAddrs, evPorts, evQuota}
	for _, tc := range []struct {
		name string
		f    Filter
		want []bool // per event of all
	}{
		{"zero matches all", Filter{}, []bool{true, true, true, true, true, true, true, true}},
		{"types", Filter{Types: TypeSet(0).With(SessionDelete).With(QuotaExceeded)}, []bool{false, true, false, false, false, false, false, true}},
		{"tcp", Filter{Proto: packet.ProtoTCP}, []bool{true, true, true, false, false, false, false, false}},
		{"udp has binding and ports", Filter{Proto: packet.ProtoUDP}, []bool{false, false, false, true, false, false, true, false}},
		{"inside host", Filter{Addr: pfx("10.77.0.5/32")}, []bool{true, true, false, true, true, false, false, true}},
		{"public address", Filter{Addr: pfx("198.18.0.204/32")}, []bool{true, true, true, true, true, false, true, false}},
		{"remote host", Filter{Addr: pfx("198.51.100.0/24")}, []bool{true, true, true, false, false, false, false, false}},
		{"public port", Filter{Port: 40123}, []bool{true, true, false, false, false, false, false, false}},
		{"port in block", Filter{Port: 1500}, []bool{false, false, false, false, true, false, false, false}},
		{"binding port", Filter{Port: 5000}, []bool{false, false, false, true, false, false, false, false}},
		{"app ftp", Filter{Apps: 1 << portmap.AppFTP}, []bool{false, false, true, false, false, false, false, false}},
		{"app and addr", Filter{Apps: 1 << portmap.AppHTTP, Addr: pfx("10.77.0.5/32")}, []bool{true, true, false, false, false, false, false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range all {
				if got := tc.f.Match(&all[i]); got != tc.want[i] {
					t.Errorf("%s: match %v, want %v", all[i].Type, got, tc.want[i])
				}
			}
		})
	}
}

func TestText(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{evCreate, "2025-12-03T09:18:26.295Z session-create tcp 10.77.0.5:40000 -> 198.51.100.1:80 as 198.18.0.204:40123 -> 198.51.100.1:80 nat.outbound[0] app=http"},
		{evDelete, "2025-12-03T09:20:26.295Z session-delete tcp 10.77.0.5:40000 -> 198.51.100.1:80 as 198.18.0.204:40123 -> 198.51.100.1:80 nat.outbound[0] app=http duration=2m0s initiator=17/822 responder=16/1289"},
		{evInbound, "2025-12-03T09:18:26.295Z session-create tcp 10.77.0.226:2021 -> 198.51.100.7:51000 as 198.18.0.204:9091 -> 198.51.100.7:51000 nat.server[1] inbound app=ftp"},
		{evBinding, "2025-12-03T09:18:26.295Z binding-create udp 10.77.0.5:5000 as 198.18.0.204:41000 nat.outbound[0]"},
		{evBlock, "2025-12-03T09:18:26.295Z block-alloc 10.77.0.5 as 198.18.0.204:1024-1535 nat.outbound[0]"},
		{evAddrs, "2025-12-03T09:18:26.295Z addresses-exhausted nat.outbound[2]"},
		{evPorts, "2025-12-03T09:18:26.295Z ports-exhausted udp 198.18.0.204 nat.outbound[0]"},
		{evQuota, "2025-12-03T09:18:26.295Z quota-exceeded 10.77.0.5 limit=1024 nat.outbound[0]"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.e.Type, got, tc.want)
		}
	}
}

func TestParseType(t *testing.T) {
	for ty := Type(1); ty < NumTypes; ty++ {
		if got, err := ParseType(ty.String()); got != ty || err != nil {
			t.Errorf("ParseType(%q) = %v, %v", ty.String(), got, err)
		}
	}
	if _, err := ParseType("session"); !errors.Is(err, ErrUnknownType) {
		t.Errorf("ParseType(session): %v", err)
	}
}

func TestThrottleOncePerKeyAndSecond(t *testing.T) {
	var th Throttle
	k1 := ThrottleKey(PortsExhausted, ip("198.18.0.204"), uint16(packet.ProtoTCP))
	k2 := ThrottleKey(PortsExhausted, ip("198.18.0.204"), uint16(packet.ProtoUDP))
	now := int64(1764753506295)
	if !th.Allow(k1, now) || th.Allow(k1, now+500) {
		t.Fatal("want the first event of a second through and the second one suppressed")
	}
	if !th.Allow(k2, now+600) {
		t.Fatal("another key is not throttled")
	}
	if !th.Allow(k1, now+1000) {
		t.Fatal("the next second lets one through again")
	}
	if th.Suppressed() != 1 {
		t.Fatalf("suppressed %d, want 1", th.Suppressed())
	}
	if n := testing.AllocsPerRun(100, func() { th.Allow(k1, now) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
