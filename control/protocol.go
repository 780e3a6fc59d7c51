package control

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/fastnat/fastnat/metrics"
)

// Commands a Request may carry.
const (
	CmdStats        = "stats"
	CmdSessions     = "sessions"
	CmdExpectations = "expectations"
	CmdMappings     = "mappings"
	CmdRules        = "rules"
	CmdReload       = "reload"
	CmdClear        = "clear" // clear sessions: end the sessions Request.Filter selects
)

// Response codes of a failed request.
const (
	CodeBadRequest = "bad_request" // the request was malformed or named something unknown
	CodeRefused    = "refused"     // reload: the file has errors; the running configuration is kept
	CodeFailed     = "failed"      // the daemon could not do what was asked
)

// Sentinel errors. An *Error from Call matches ErrBadRequest or ErrRefused
// by its code; Listen's errors wrap ErrInUse and ErrNotSocket.
var (
	ErrBadRequest = errors.New("bad control request")
	ErrRefused    = errors.New("configuration refused")
	ErrInUse      = errors.New("control socket in use by a running daemon")
	ErrNotSocket  = errors.New("control socket path exists and is not a socket")
)

// MaxRequest bounds the size of a request the server reads.
const MaxRequest = 64 << 10

// Request is what a client asks.
type Request struct {
	Cmd string `json:"cmd"`
	// Filter selects the sessions of CmdSessions and CmdClear; nil: all
	// (CmdClear also needs All).
	Filter *SessionFilter `json:"filter,omitempty"`
	Limit  int            `json:"limit,omitempty"` // CmdSessions: at most this many; 0: all
	All    bool           `json:"all,omitempty"`   // CmdClear: every session, when Filter selects none
	// Events selects the events of a CmdEvents stream; nil: all.
	Events *EventFilter `json:"events,omitempty"`
	// Explain is the connection or session CmdExplain asks about.
	Explain *ExplainQuery `json:"explain,omitempty"`
}

// Response is the daemon's answer: on success the field of the command
// asked, on failure Code and Error.
type Response struct {
	Code         string            `json:"code,omitempty"`
	Error        string            `json:"error,omitempty"`
	Stream       bool              `json:"stream,omitempty"` // CmdEvents: events follow, one JSON Event per line
	Stats        *metrics.Snapshot `json:"stats,omitempty"`
	Sessions     *SessionList      `json:"sessions,omitempty"`
	Expectations []Expectation     `json:"expectations,omitempty"`
	Mappings     []Mapping         `json:"mappings,omitempty"`
	Rules        *Rules            `json:"rules,omitempty"`
	Reload       *ReloadResult     `json:"reload,omitempty"`
	Cleared      *ClearResult      `json:"cleared,omitempty"`
	Explain      *ExplainResult    `json:"explain,omitempty"`
}

// Error is a request the daemon answered with a failure code.
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is matches ErrBadRequest and ErrRefused by code.
func (e *Error) Is(target error) bool {
	return target == ErrBadRequest && e.Code == CodeBadRequest || target == ErrRefused && e.Code == CodeRefused
}

// SessionQuery selects the sessions ListSessions returns.
type SessionQuery struct {
	Filter SessionFilter
	Limit  int // 0: no limit
}

// SessionList is a page of sessions.
type SessionList struct {
	Sessions []Session `json:"sessions"`
	Matched  int       `json:"matched"` // sessions that matched the query, shown or not
}

// ClearResult is what `fastnat clear sessions` did.
type ClearResult struct {
	Matched int `json:"matched"` // sessions the filter selected
	Cleared int `json:"cleared"` // of those, ended by the clear (the others ended on their own meanwhile)
}

// Session is one session as every view shows it — `fastnat show
// sessions`, the live session of `fastnat explain` — and, under the same
// names, as a session event carries it: protocol, inside, outside, rule,
// app, inbound, start and traffic mean the same in Event.
//
// Initiator and responder are the terms of the case's firewall output:
// the initiator's tuple is its first packet as it arrived, the
// responder's a reply as it arrives (so after NAT). Inside and outside
// are the same flow seen from the inside host, as the event log sees it:
// inside.src is the inside host, outside.src the public endpoint that
// stands for it.
type Session struct {
	ID        uint32 `json:"id"`
	Protocol  string `json:"protocol"` // "tcp", "udp", "icmp", ...
	ProtoNum  uint8  `json:"protocol_number"`
	Initiator Flow   `json:"initiator"`
	Responder Flow   `json:"responder"`
	Inside    Flow   `json:"inside"`
	Outside   Flow   `json:"outside"`
	Inbound   bool   `json:"inbound,omitempty"` // opened from outside
	App       string `json:"app"`
	// Rule names the rule that made the session, as events do:
	// "nat.outbound[0]", "nat.server[1]/hairpin", "nat.server[0]/alg",
	// with " (removed)" when a reload has removed it.
	Rule string `json:"rule"`
	// Ingress is the interface the session's first packet arrived on.
	Ingress string    `json:"ingress"`
	Start   time.Time `json:"start"`       // to the flow table clock's second, as its delete event says
	Age     int64     `json:"age_seconds"` // since it started
	// State is TCP_ESTABLISHED and the like for TCP; for UDP and others
	// *_OPEN once a reply was seen, else *_READY; ICMP_REQUEST or
	// ICMP_REPLY for ICMP queries.
	State   string `json:"state"`
	Idle    int64  `json:"idle_seconds"`    // since the last packet
	TTL     int64  `json:"ttl_seconds"`     // until it expires if nothing more arrives
	Timeout uint32 `json:"timeout_seconds"` // its current idle timeout
	// Parent is the control session of an ALG data connection.
	Parent *uint32 `json:"parent,omitempty"`
	// Mapping is the index of the [[port_mapping]] that classified it; -1
	// for a built-in default or none.
	Mapping int      `json:"mapping"`
	Traffic Counters `json:"traffic"`
}

// Flow is one direction's tuple. For ICMP queries both ports hold the
// query identifier; a binding's has no destination.
type Flow struct {
	Src netip.AddrPort `json:"src"`
	Dst netip.AddrPort `json:"dst,omitzero"`
}

// Traffic counts one direction of a session.
type Traffic struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// Counters counts a session's traffic by the side that sent it.
type Counters struct {
	Initiator Traffic `json:"initiator"`
	Responder Traffic `json:"responder"`
}

// Expectation is a data connection an ALG is waiting for, named as
// sessions are where they say the same.
type Expectation struct {
	Protocol string `json:"protocol"`
	// Source is the only address the connection may come from, or "any";
	// its source port is always free.
	Source string         `json:"source"`
	Dst    netip.AddrPort `json:"dst"`           // where it connects, as it arrives
	To     netip.AddrPort `json:"translated_to"` // where the NAT sends it
	App    string         `json:"app"`
	Rule   string         `json:"rule"`        // the rule its session will name, as Session.Rule
	Parent uint32         `json:"parent"`      // the control session
	TTL    int64          `json:"ttl_seconds"` // until it expires unused
}

// Mapping is one line of the effective port-mapping table of the running
// configuration, with what the FTP ALG counted for it.
type Mapping struct {
	App      string `json:"app"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"` // "any" when the mapping names none
	Scope    string `json:"scope"`    // destination prefix, or "any"
	Index    int    `json:"index"`    // of the [[port_mapping]]; -1: a built-in default
	Line     int    `json:"line,omitempty"`
	// ALGSessions and ALGRewritten are the FTP ALG's control sessions and
	// rewritten lines for this mapping (ftp lines only; the default
	// counts every built-in ftp port).
	ALGSessions  uint64 `json:"alg_sessions,omitempty"`
	ALGRewritten uint64 `json:"alg_rewritten,omitempty"`
}

// ReloadResult is what a reload applied.
type ReloadResult struct {
	File         string `json:"file"`
	PortMappings int    `json:"port_mappings"`
	// Pending lists the changed keys that wait for a restart; the rest of
	// the file applies.
	Pending []Pending `json:"pending,omitempty"`
}

// Pending is a changed configuration key that a running daemon cannot
// apply: it takes effect at the next start, and until then the running
// value stays.
type Pending struct {
	Key     string `json:"key"`     // as the file spells it: "dataplane.workers"
	Running string `json:"running"` // the value in use
	File    string `json:"file"`    // the value in the file
}

func (p Pending) String() string {
	return fmt.Sprintf("%s (running %s, file %s)", p.Key, p.Running, p.File)
}

// Handler is what the daemon answers requests with. The server calls one
// method at a time.
type Handler interface {
	Stats() metrics.Snapshot
	Sessions(q SessionQuery) (SessionList, error)
	// Clear ends the sessions f selects, releasing what they held as
	// expiry does.
	Clear(f SessionFilter) (ClearResult, error)
	Expectations() []Expectation
	Mappings() []Mapping
	// Rules describes the NAT rules running now.
	Rules() Rules
	// Reload re-reads the configuration file. An error wrapping
	// ErrRefused means the file has errors and nothing changed.
	Reload() (ReloadResult, error)
}
