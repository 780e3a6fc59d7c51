package control

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// CmdEvents asks for a live stream of the NAT's events.
const CmdEvents = "events"

// EventFilter selects the events of a stream (Request.Events). Every
// field set must match; an event that lacks a field a filter names does
// not (natlog.Filter).
type EventFilter struct {
	Types    []string `json:"types,omitempty"`    // event types ("session-create", ...); none: all
	Addr     string   `json:"addr,omitempty"`     // an address or prefix any address of the event lies in
	Port     int      `json:"port,omitempty"`     // a port of the event (or of its port block); 0: any
	Protocol string   `json:"protocol,omitempty"` // "tcp", "udp", "icmp" or another protocol name or number
	App      string   `json:"app,omitempty"`      // sessions of this application
}

// Event is one event of a stream, the JSON form of a natlog.Event. A
// session event names what it says of the session as Session does
// (protocol, inside, outside, rule, app, inbound, start, traffic): the
// tuples are seen from the inside host's side whoever opened the session,
// inside.src the inside host and outside.src the public endpoint that
// stood for it. A stream that fell behind says so with an event of type
// "lost" carrying the number of events it lost.
type Event struct {
	Type     string     `json:"type"`
	Time     time.Time  `json:"time"`
	Protocol string     `json:"protocol,omitempty"`
	Inside   *Flow      `json:"inside,omitempty"`  // sessions and bindings
	Outside  *Flow      `json:"outside,omitempty"` // sessions and bindings
	Host     netip.Addr `json:"host,omitzero"`     // port blocks, quota: the inside host
	Public   netip.Addr `json:"public,omitzero"`   // port blocks, ports exhausted: the public address
	Ports    *PortRange `json:"ports,omitempty"`   // port blocks
	Rule     string     `json:"rule,omitempty"`    // "nat.outbound[0]", "nat.server[2]/hairpin", "alg", as Session.Rule
	App      string     `json:"app,omitempty"`     // sessions
	Inbound  bool       `json:"inbound,omitempty"` // a session opened from outside
	Start    *time.Time `json:"start,omitempty"`   // when a deleted session, binding or released block began
	// Traffic counts a deleted session's packets and bytes, from the side
	// that opened it and from the other.
	Traffic *Counters `json:"traffic,omitempty"`
	Limit   uint32    `json:"limit,omitempty"` // quota: the ports a host may hold
	Lost    uint64    `json:"lost,omitempty"`  // type "lost": events this stream lost
}

// PortRange is a port block, inclusive.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// TypeLost is the type of the Event that reports a stream's losses.
const TypeLost = "lost"

func ap(a uint32, p uint16) netip.AddrPort { return netip.AddrPortFrom(nat.Addr(a), p) }

func ms(t int64) time.Time { return time.UnixMilli(t).UTC() }

// EventView returns the JSON form of e.
func EventView(e *natlog.Event) Event {
	v := Event{Type: e.Type.String(), Time: ms(e.Time), Rule: string(e.AppendRule(nil))}
	if e.Start != 0 {
		t := ms(e.Start)
		v.Start = &t
	}
	switch e.Type {
	case natlog.SessionCreate, natlog.SessionDelete:
		v.Protocol = packet.ProtoName(e.Inside.Proto)
		in, out := flowOf(e.Inside), flowOf(e.Outside)
		v.Inside, v.Outside = &in, &out
		v.App, v.Inbound = portmap.App(e.App).String(), e.Inbound
		if e.Type == natlog.SessionDelete {
			v.Traffic = &Counters{Initiator: Traffic{Packets: e.Packets[0], Bytes: e.Bytes[0]},
				Responder: Traffic{Packets: e.Packets[1], Bytes: e.Bytes[1]}}
		}
	case natlog.BindingCreate, natlog.BindingDelete:
		v.Protocol = packet.ProtoName(e.Inside.Proto)
		v.Inside = &Flow{Src: ap(e.Inside.SrcAddr, e.Inside.SrcPort)}
		v.Outside = &Flow{Src: ap(e.Outside.SrcAddr, e.Outside.SrcPort)}
	case natlog.BlockAlloc, natlog.BlockRelease:
		v.Host, v.Public = nat.Addr(e.Inside.SrcAddr), nat.Addr(e.Outside.SrcAddr)
		v.Ports = &PortRange{First: e.First, Last: e.Last}
	case natlog.PortsExhausted:
		v.Protocol = packet.ProtoName(e.Inside.Proto)
		v.Public = nat.Addr(e.Outside.SrcAddr)
	case natlog.QuotaExceeded:
		v.Host, v.Limit = nat.Addr(e.Inside.SrcAddr), e.Limit
	}
	return v
}

// Natlog returns the event v is the JSON form of, for printing it the way
// natlog does. A "lost" event has no natlog form.
func (v *Event) Natlog() (natlog.Event, error) {
	t, err := natlog.ParseType(v.Type)
	if err != nil {
		return natlog.Event{}, err
	}
	e := natlog.Event{Type: t, Time: v.Time.UnixMilli(), Inbound: v.Inbound}
	if v.Start != nil {
		e.Start = v.Start.UnixMilli()
	}
	if e.RuleKind, e.Rule, e.Via, err = parseRule(v.Rule); err != nil {
		return e, err
	}
	if v.Protocol != "" {
		if e.Inside.Proto, err = parseProtocol(v.Protocol); err != nil {
			return e, err
		}
	}
	if v.App != "" {
		a, err := appOf(v.App)
		if err != nil {
			return e, err
		}
		e.App = uint8(a)
	}
	word := func(a netip.Addr) uint32 {
		if !a.Is4() {
			return 0
		}
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	tuple := func(f *Flow, proto uint8) packet.Tuple {
		if f == nil {
			return packet.Tuple{Proto: proto}
		}
		return packet.Tuple{SrcAddr: word(f.Src.Addr()), SrcPort: f.Src.Port(), DstAddr: word(f.Dst.Addr()), DstPort: f.Dst.Port(), Proto: proto}
	}
	proto := e.Inside.Proto
	e.Inside = tuple(v.Inside, proto)
	if v.Outside != nil {
		e.Outside = tuple(v.Outside, proto)
	}
	if v.Host.IsValid() {
		e.Inside.SrcAddr = word(v.Host)
	}
	if v.Public.IsValid() {
		e.Outside.SrcAddr = word(v.Public)
	}
	if v.Ports != nil {
		e.First, e.Last = v.Ports.First, v.Ports.Last
	}
	if c := v.Traffic; c != nil {
		e.Packets = [2]uint64{c.Initiator.Packets, c.Responder.Packets}
		e.Bytes = [2]uint64{c.Initiator.Bytes, c.Responder.Bytes}
	}
	e.Limit = v.Limit
	return e, nil
}

// parseRule reads what natlog's AppendRule writes: "nat.outbound[3]",
// "nat.server[0]/hairpin", "alg" or "".
func parseRule(s string) (natlog.RuleKind, uint16, natlog.Via, error) {
	switch s {
	case "":
		return natlog.RuleNone, 0, natlog.ViaRule, nil
	case natlog.ViaALG.String():
		return natlog.RuleNone, 0, natlog.ViaALG, nil
	}
	m := rulePattern.FindStringSubmatch(s)
	if m == nil || m[2] == "" {
		return 0, 0, 0, fmt.Errorf("%w: rule %q", ErrBadRequest, s)
	}
	n, err := strconv.ParseUint(m[2], 10, 16)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: rule %q", ErrBadRequest, s)
	}
	k, v := natlog.RuleOutbound, natlog.ViaRule
	if m[1] == natlog.RuleServer.String() {
		k = natlog.RuleServer
	}
	switch m[3] {
	case "hairpin":
		v = natlog.ViaHairpin
	case "alg":
		v = natlog.ViaALG
	}
	return k, uint16(n), v, nil
}

// parseProtocol reads a protocol name ("tcp", "gre") or number.
func parseProtocol(s string) (uint8, error) {
	if p, ok := packet.ParseProtoName(s); ok && p != 0 {
		return p, nil
	}
	return 0, fmt.Errorf("%w: unknown protocol %q; known: %s, or a number 1-255", ErrBadRequest, s, strings.Join(packet.ProtoNames(), ", "))
}

// Filter checks f and returns the natlog filter it asks for; its errors
// wrap ErrBadRequest.
func (f EventFilter) Filter() (natlog.Filter, error) {
	var nf natlog.Filter
	for _, name := range f.Types {
		t, err := natlog.ParseType(name)
		if err != nil {
			return nf, fmt.Errorf("%w: %v", ErrBadRequest, err)
		}
		nf.Types = nf.Types.With(t)
	}
	var err error
	if f.Addr != "" {
		if nf.Addr, err = parsePrefix(f.Addr); err != nil {
			return nf, err
		}
	}
	if nf.Port, err = parsePort(f.Port); err != nil {
		return nf, err
	}
	if f.Protocol != "" {
		p, err := parseProtocol(f.Protocol)
		if err != nil {
			return nf, err
		}
		nf.Proto = p
	}
	if f.App != "" {
		a, err := appOf(f.App)
		if err != nil {
			return nf, err
		}
		nf.Apps = 1 << a
	}
	return nf, nil
}
