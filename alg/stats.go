package alg

import (
	"sync"
	"sync/atomic"
)

// Counters are the FTP ALG's statistics for one scope: every control
// session, those classified by one port-mapping entry, or one session.
type Counters struct {
	Sessions      uint64 // control sessions the ALG has seen carry data (a handshake alone keeps no state)
	Commands      uint64 // PORT, EPRT, 227 and 229 lines inspected
	Rewritten     uint64 // of those, rewritten
	Refused       uint64 // refused by policy (third-party address, RFC 2577, or privileged port) and answered with an error
	Replaced      uint64 // expectations replaced, the session's oldest, at the per-session limit
	ParseFailures uint64 // malformed PORT/EPRT/227/229, passed through untouched
	LongLines     uint64 // lines longer than 512 bytes
	OutOfOrder    uint64 // data segments beyond a gap, dropped for retransmission
	Backlog       uint64 // dropped: too many unacknowledged records
	HeldAcked     uint64 // held partial lines the ALG acknowledged itself to a sender that stalled on them
	Discarded     uint64 // held partial lines discarded at the sender's FIN, never completed
	Resets        uint64 // connections reset: a PORT/EPRT/227/229 line longer than 512 bytes
	Replayed      uint64 // records reproduced in retransmitted segments
	ExpectCreated uint64 // expectations installed
	ExpectFailed  uint64 // expectations the NAT could not install (answered with an error)
	ExpectUsed    uint64 // expectations matched by a data connection (noted by the NAT)
	DeltaBytes    uint64 // total |length change| of the rewrites
	TLS           uint64 // control sessions that turned to TLS (AUTH accepted with 234), passed on uninspected from then on
	AckUnsent     uint64 // segments dropped: they acknowledge control-stream data the receiver has not sent
	Reassembled   uint64 // segments that came in IPv4 fragments, reassembled to be inspected
	FragDropped   uint64 // fragmented segments dropped unreassembled: too big for a frame, overlapping, incomplete at the timeout or evicted
	BadChecksum   uint64 // segments dropped unread: their TCP checksum is wrong
}

// EntryCounters are the counters of one port-mapping entry (-1: the
// default port 21).
type EntryCounters struct {
	Entry int16
	Counters
}

// Stats is a snapshot of the ALG's counters.
type Stats struct {
	Total   Counters
	Entries []EntryCounters // in Entry order; only entries that counted something
}

type counter uint8

const (
	cSessions counter = iota
	cCommands
	cRewritten
	cRefused
	cReplaced
	cParseFailures
	cLongLines
	cOutOfOrder
	cBacklog
	cHeldAcked
	cDiscarded
	cResets
	cReplayed
	cExpectCreated
	cExpectFailed
	cExpectUsed
	cDeltaBytes
	cTLS
	cAckUnsent
	cFragReassembled
	cFragDropped
	cBadChecksum
	numCounters
)

// counters is one scope's counters. Written by the ALG goroutine (and by
// the NAT's expectation notes), read by Stats: atomics, uncontended.
type counters [numCounters]atomic.Uint64

func (c *counters) load() Counters {
	return Counters{
		Sessions: c[cSessions].Load(), Commands: c[cCommands].Load(), Rewritten: c[cRewritten].Load(),
		Refused: c[cRefused].Load(), Replaced: c[cReplaced].Load(), ParseFailures: c[cParseFailures].Load(),
		LongLines: c[cLongLines].Load(), OutOfOrder: c[cOutOfOrder].Load(), Backlog: c[cBacklog].Load(),
		HeldAcked: c[cHeldAcked].Load(), Discarded: c[cDiscarded].Load(), Resets: c[cResets].Load(),
		Replayed: c[cReplayed].Load(), ExpectCreated: c[cExpectCreated].Load(), ExpectFailed: c[cExpectFailed].Load(),
		ExpectUsed: c[cExpectUsed].Load(), DeltaBytes: c[cDeltaBytes].Load(), TLS: c[cTLS].Load(),
		AckUnsent: c[cAckUnsent].Load(), Reassembled: c[cFragReassembled].Load(), FragDropped: c[cFragDropped].Load(),
		BadChecksum: c[cBadChecksum].Load(),
	}
}

func (c *counters) reset() {
	for i := range c {
		c[i].Store(0)
	}
}

// stats holds the total and the per-entry counters. The per-entry table
// is indexed by entry+1 and replaced, copied, when a new entry shows up.
type stats struct {
	total   counters
	mu      sync.Mutex // serialises growth of entries
	entries atomic.Pointer[[]*counters]
}

func (s *stats) init() {
	e := make([]*counters, 0)
	s.entries.Store(&e)
}

// entry returns the counters of mapping entry e, creating them on first
// use (slow path: once per entry).
func (s *stats) entry(e int16) *counters {
	i := int(e) + 1
	if i < 0 {
		i = 0
	}
	if t := *s.entries.Load(); i < len(t) && t[i] != nil {
		return t[i]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := *s.entries.Load()
	if i < len(t) && t[i] != nil {
		return t[i]
	}
	n := make([]*counters, max(len(t), i+1))
	copy(n, t)
	n[i] = new(counters)
	s.entries.Store(&n)
	return n[i]
}

// count adds n to counter c of the total, the session's entry and the
// session.
func (f *FTP) count(ss *session, c counter, n uint64) {
	f.stats.total[c].Add(n)
	ss.entry[c].Add(n)
	ss.own[c].Add(n)
}

// ExpectationUsed notes that a data connection matched an expectation of
// control session (parent, gen), classified by mapping entry (its
// Session.MapEntry): the callback for nat.NAT.OnExpectationUsed. Safe from
// any goroutine.
func (f *FTP) ExpectationUsed(parent, gen uint32, entry int16) {
	f.stats.total[cExpectUsed].Add(1)
	f.stats.entry(entry)[cExpectUsed].Add(1)
	f.liveMu.Lock()
	if c, ok := f.live[keyOf(parent, gen)]; ok {
		c[cExpectUsed].Add(1)
	}
	f.liveMu.Unlock()
}

// SessionCounters returns the counters of control session (id, gen), if
// the ALG holds state for it (it has seen data of it and the session
// has not ended). Safe from any goroutine.
func (f *FTP) SessionCounters(id, gen uint32) (Counters, bool) {
	f.liveMu.Lock()
	c, ok := f.live[keyOf(id, gen)]
	f.liveMu.Unlock()
	if !ok {
		return Counters{}, false
	}
	return c.load(), true
}

// Stats returns a snapshot of the counters. Safe from any goroutine.
func (f *FTP) Stats() Stats {
	st := Stats{Total: f.stats.total.load()}
	for i, c := range *f.stats.entries.Load() {
		if c != nil {
			st.Entries = append(st.Entries, EntryCounters{Entry: int16(i - 1), Counters: c.load()})
		}
	}
	return st
}
