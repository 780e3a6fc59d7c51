package natlog

import "net/netip"

// TypeSet is a set of event types: bit t stands for Type t.
type TypeSet uint32

// AllTypes holds every type.
const AllTypes = TypeSet(1<<NumTypes-1) &^ 1

// Has reports whether t is in the set.
func (s TypeSet) Has(t Type) bool { return s&(1<<t) != 0 }

// With returns the set with t added.
func (s TypeSet) With(t Type) TypeSet { return s | 1<<t }

// Filter selects events, as `fastnat events` asks. The zero Filter
// matches everything. An event matches when it carries every field the
// filter names and each matches: a filter on a port passes no
// addresses-exhausted event, a filter on an application no port block.
type Filter struct {
	Types TypeSet      // 0: every type
	Addr  netip.Prefix // an address of the event lies in it; invalid: any
	Port  uint16       // a port of the event (or of its port block) is Port; 0: any
	Proto uint8        // the event's IP protocol; 0: any
	Apps  uint32       // bit a: sessions of portmap.App a; 0: any
}

// Match reports whether e passes the filter.
func (f *Filter) Match(e *Event) bool {
	if f.Types != 0 && !f.Types.Has(e.Type) {
		return false
	}
	if f.Proto != 0 && (!hasProto(e.Type) || e.Inside.Proto != f.Proto) {
		return false
	}
	if f.Apps != 0 && (!isSession(e.Type) || e.App >= 32 || f.Apps&(1<<e.App) == 0) {
		return false
	}
	if f.Addr.IsValid() && !f.matchAddr(e) {
		return false
	}
	if f.Port != 0 && !f.matchPort(e) {
		return false
	}
	return true
}

func isSession(t Type) bool { return t == SessionCreate || t == SessionDelete }

func hasProto(t Type) bool {
	return isSession(t) || t == BindingCreate || t == BindingDelete || t == PortsExhausted
}

func (f *Filter) in(a uint32) bool {
	return f.Addr.Contains(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}))
}

func (f *Filter) matchAddr(e *Event) bool {
	switch e.Type {
	case SessionCreate, SessionDelete:
		return f.in(e.Inside.SrcAddr) || f.in(e.Inside.DstAddr) || f.in(e.Outside.SrcAddr) || f.in(e.Outside.DstAddr)
	case BindingCreate, BindingDelete, BlockAlloc, BlockRelease:
		return f.in(e.Inside.SrcAddr) || f.in(e.Outside.SrcAddr)
	case PortsExhausted:
		return f.in(e.Outside.SrcAddr)
	case QuotaExceeded:
		return f.in(e.Inside.SrcAddr)
	}
	return false
}

func (f *Filter) matchPort(e *Event) bool {
	p := f.Port
	switch e.Type {
	case SessionCreate, SessionDelete:
		return e.Inside.SrcPort == p || e.Inside.DstPort == p || e.Outside.SrcPort == p || e.Outside.DstPort == p
	case BindingCreate, BindingDelete:
		return e.Inside.SrcPort == p || e.Outside.SrcPort == p
	case BlockAlloc, BlockRelease:
		return e.First <= p && p <= e.Last
	}
	return false
}
