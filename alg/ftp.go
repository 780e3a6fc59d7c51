package alg

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fastnat/fastnat/flowtable"
	"github.com/fastnat/fastnat/packet"
	"github.com/fastnat/fastnat/portmap"
)

// DefaultMaxExpectations is the default limit of open expectations per
// control session.
const DefaultMaxExpectations = 8

// DefaultMTU is the default largest IPv4 packet the ALG produces when a
// rewrite or a held-back line makes a segment grow.
const DefaultMTU = 1500

// Errors returned by New.
var (
	ErrConfig = errors.New("alg: invalid configuration")
	ErrNoNAT  = errors.New("alg: no flow table or expecter")
)

// Config is the FTP ALG's configuration, filled from [alg.ftp].
type Config struct {
	// Enabled turns the ALG on; when false Process forwards every frame
	// untouched.
	Enabled bool
	// AllowThirdParty relaxes the FTP bounce check (RFC 2577): PORT, EPRT
	// and 227 may name a host other than the peer announcing them.
	AllowThirdParty bool
	// MaxExpectations bounds the open expectations of one control session;
	// 0 means DefaultMaxExpectations. A new one at the limit replaces the
	// session's oldest.
	MaxExpectations int
	// MTU is the largest IPv4 packet the ALG makes by growing a segment
	// when the frame does not say (Item.MTU, the egress link's); 0 means
	// DefaultMTU. A segment that would exceed it is cut and TCP
	// retransmits the rest.
	MTU int
	// Log receives one message per control session whose command or reply
	// is refused, and one per connection the ALG resets. nil discards.
	Log *slog.Logger
}

// Expecter is what the ALG asks of the NAT. nat.NAT implements it.
type Expecter interface {
	// ExpectData: the endpoint addr:port (host byte order) was announced in
	// the payload of a packet travelling in direction dir of control
	// session (parent, gen). It installs the expectation (with the right
	// translation, App ftp-data, expiry) and returns the endpoint the
	// receiver must be told — equal to the input when no rewrite is needed
	// — or ok=false (pool exhausted, table full). Third-party and low-port
	// policy and the per-session limit are the ALG's, checked before.
	ExpectData(parent, gen uint32, dir flowtable.Dir, addr uint32, port uint16, now flowtable.Time) (newAddr uint32, newPort uint16, ok bool)
	// DropOldestExpectation removes the oldest open expectation of control
	// session (parent, gen), with what it holds (a claimed public port),
	// and reports whether there was one.
	DropOldestExpectation(parent, gen uint32) bool
	// ResetSession tells the NAT that the ALG reset both ends of session
	// (id, gen): it may let the session go like any closed connection.
	ResetSession(id, gen uint32)
}

// Table is the part of the flow table the ALG reads: a control session's
// keys and mapping entry (once per session), and its open expectations
// (once per announced endpoint). *flowtable.Table implements it.
type Table interface {
	// Read copies session (id, gen) into s and reports whether it is still
	// live with that generation.
	Read(id, gen uint32, s *flowtable.Session) bool
	ExpectationCount(parent, gen uint32) int
}

// Verdict is the ALG's decision for one frame.
type Verdict uint8

// Verdicts. Forward and Back transmit the frame; Reassembling releases it,
// its bytes kept by the ALG; every other verdict drops it, and TCP
// retransmits it.
const (
	// Forward: transmit the frame, possibly rewritten, towards its
	// receiver (Item.Port).
	Forward Verdict = iota
	// Back: the frame became the ALG's own answer to its sender (an
	// acknowledgement of held bytes, the error reply to a refused command,
	// a reset): transmit it back out of the port it arrived on (Item.In),
	// to the next hop of its new destination.
	Back
	DropBacklog      // too many unacknowledged records in one direction
	DropOutOfOrder   // data beyond a gap in the control stream
	DropInconsistent // a retransmission disagrees with data rewritten before
	DropStale        // the session ended before the ALG saw the frame
	DropReset        // a frame of a connection the ALG reset, needing no answer
	DropRingFull     // the pipeline's: no room on the ring to the ALG
	DropAckUnsent    // a segment acknowledging control-stream data its receiver has not sent
	DropFragment     // a fragment of a datagram that cannot be reassembled (see reasm.go)
	DropBadChecksum  // a segment whose TCP checksum is wrong: never read, nor given a valid one by a rewrite
	// Reassembling: the frame is a fragment whose bytes the ALG keeps
	// until its datagram is whole (or a duplicate of bytes it has): the
	// worker releases the frame, nothing is lost.
	Reassembling
	NumVerdicts
)

var verdictNames = [NumVerdicts]string{
	"forward", "back", "alg_rewrite_backlog", "alg_out_of_order", "alg_inconsistent_retransmission",
	"alg_stale_session", "alg_reset_connection", "alg_ring_full", "alg_ack_unsent", "alg_fragment_dropped",
	"alg_bad_checksum", "alg_reassembling",
}

// String returns a stable snake_case name, used as a drop-reason label.
func (v Verdict) String() string {
	if v < NumVerdicts {
		return verdictNames[v]
	}
	return fmt.Sprintf("alg_verdict_%d", uint8(v))
}

// FTP is the FTP ALG of one ALG goroutine. Process is not safe for
// concurrent use; Forget, Stats, SessionCounters and the
// ExpectationUsed/Expired notes are, from any goroutine.
type FTP struct {
	cfg Config
	// policy holds the settings a reload may change (SetPolicy), read by
	// the ALG goroutine once per frame.
	policy atomic.Pointer[Policy]
	table  Table
	exp    Expecter
	log    *slog.Logger

	sessions map[sessKey]*session
	free     []*session // at most maxFree, for the next sessions
	// hands are the control sessions that have carried no data yet: the
	// initial sequence numbers their SYNs announced, 12 bytes each, so
	// that a SYN flood to an FTP port never costs a whole session's state
	// (4 KiB) per SYN.
	hands map[sessKey]handshake

	// live finds a session's counters for other goroutines
	// (SessionCounters); written by the ALG goroutine once per session.
	liveMu sync.Mutex
	live   map[sessKey]*counters

	// Forget requests from other goroutines, applied by the ALG goroutine.
	forgetMu      sync.Mutex
	forgetQueue   []sessKey
	forgetSpare   []sessKey
	forgetPending atomic.Bool

	stats stats

	// Per-frame scratch, reused: the payload being composed, the rewritten
	// spans in it, the held line joined with new bytes, owned bytes put
	// back in front of a retransmission, the answer to the sender.
	out   []byte
	spans []span
	work  []byte
	pre   []byte
	txt   [textMax]byte
	dirty bool
	ans   answer

	// reasm holds the fragmented control segments being reassembled.
	reasm reassembly
}

// Policy is the part of the configuration a reload changes while the ALG
// runs: the FTP bounce check and the expectation limit.
type Policy struct {
	AllowThirdParty bool
	MaxExpectations int
}

// SetPolicy replaces the ALG's policy for the frames it processes from now
// on (a configuration reload). Safe from any goroutine.
func (f *FTP) SetPolicy(p Policy) {
	if p.MaxExpectations <= 0 {
		p.MaxExpectations = DefaultMaxExpectations
	}
	f.policy.Store(&p)
}

// New returns an FTP ALG that reads sessions from table and installs
// expectations through exp.
func New(cfg Config, table Table, exp Expecter) (*FTP, error) {
	if table == nil || exp == nil {
		return nil, ErrNoNAT
	}
	if cfg.MaxExpectations < 0 {
		return nil, fmt.Errorf("max expectations %d: %w", cfg.MaxExpectations, ErrConfig)
	}
	if cfg.MaxExpectations == 0 {
		cfg.MaxExpectations = DefaultMaxExpectations
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 576 || cfg.MTU > 65535 {
		return nil, fmt.Errorf("mtu %d not in 576-65535: %w", cfg.MTU, ErrConfig)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &FTP{
		cfg: cfg, table: table, exp: exp, log: log,
		sessions: make(map[sessKey]*session),
		hands:    make(map[sessKey]handshake),
		live:     make(map[sessKey]*counters),
		out:      make([]byte, 0, maxFrame),
		spans:    make([]span, 0, 2*maxRecords), // a span per record at most, in each of render and feed
		work:     make([]byte, 0, maxLine+maxFrame),
		pre:      make([]byte, 0, maxLine+maxFrame),
	}
	f.stats.init()
	f.SetPolicy(Policy{AllowThirdParty: cfg.AllowThirdParty, MaxExpectations: cfg.MaxExpectations})
	return f, nil
}

// maxFrame bounds the frames the ALG handles (the frame size of a UMEM
// chunk); larger capacities are used only up to this.
const maxFrame = 4096

// sessKey names a control session: a flow-table slot and the generation
// the session lived with there, so that a slot's next session is never
// taken for the one before it. One word, for the map's fast path.
type sessKey uint64

func keyOf(id, gen uint32) sessKey { return sessKey(id)<<32 | sessKey(gen) }

// handshake is what the ALG keeps of a control session before its first
// byte of data, per direction: where the stream starts, as its SYN said
// (ISN + 1, RFC 9293 3.4), once seen, and the last window and timestamp
// sent, which the ALG's own acknowledgements on the peer's behalf repeat.
type handshake struct {
	start [2]uint32
	tsVal [2]uint32
	win   [2]uint16
	seen  [2]bool
	hasTS [2]bool
}

// maxFree bounds the forgotten sessions kept for reuse: after a flood of
// control connections their memory goes back to the runtime.
const maxFree = 64

// session is the ALG's state of one control connection.
type session struct {
	key    [2]packet.Tuple // the flow-table keys, read at first sight
	entry  *counters       // statistics of the session's mapping entry
	own    counters        // the session's own statistics
	logged bool            // a refusal has been logged
	dead   bool            // the ALG reset the connection
	// tls: the server accepted AUTH (234, RFC 4217): both directions are
	// TLS from the next byte on, which the ALG cannot read. It passes them
	// on as they come, holding nothing: a held byte of a TLS record would
	// stall the peer waiting for the rest of the record.
	tls  bool
	dirs [2]stream
}

// SessionEnded is the callback for nat.NAT.OnSessionEnd: it forgets the
// session if it was an FTP control connection and ignores every other.
// Safe from any goroutine.
func (f *FTP) SessionEnded(id, gen uint32, s flowtable.Session) {
	if portmap.App(s.App) == portmap.AppFTP {
		f.Forget(id, gen)
	}
}

// Forget drops the state of control session (id, gen) when the session
// ends. Safe from any goroutine: the ALG goroutine applies it before it
// processes its next frame (and the Runner between polls). Call it for
// control sessions only (SessionEnded filters): each call costs a lock and
// a queue slot until applied.
func (f *FTP) Forget(id, gen uint32) {
	f.forgetMu.Lock()
	f.forgetQueue = append(f.forgetQueue, keyOf(id, gen))
	f.forgetPending.Store(true)
	f.forgetMu.Unlock()
}

func (f *FTP) applyForget() {
	f.forgetMu.Lock()
	q := f.forgetQueue
	f.forgetQueue = f.forgetSpare[:0]
	f.forgetPending.Store(false)
	f.forgetMu.Unlock()
	for _, k := range q {
		delete(f.hands, k)
		if ss, ok := f.sessions[k]; ok {
			delete(f.sessions, k)
			f.liveMu.Lock()
			delete(f.live, k)
			f.liveMu.Unlock()
			if len(f.free) < maxFree {
				f.free = append(f.free, ss)
			}
		}
	}
	f.forgetSpare = q[:0]
}

// session returns the state of control session (id, gen) for a frame of
// direction dir whose (translated) tuple is t, creating it for the first
// frame that carries data. nil with Forward means the frame is not the
// session's, or that the session has carried no data yet (the frame is
// left alone: nothing before the first byte needs rewriting; a SYN's
// initial sequence number is noted in hands); nil with DropStale that the
// session ended before the ALG could read it.
func (f *FTP) session(id, gen uint32, dir flowtable.Dir, t packet.Tuple, tcp packet.TCP, flags uint8, data bool) (*session, Verdict) {
	k := keyOf(id, gen)
	// A frame of direction d had tuple Key[d] before translation and has
	// Key[1-d].Reverse() after it.
	if ss := f.sessions[k]; ss != nil {
		if ss.key[1-dir].Reverse() != t {
			return nil, Forward
		}
		return ss, Forward
	}
	var s flowtable.Session
	if !f.table.Read(id, gen, &s) {
		return nil, DropStale
	}
	if s.Key[1-dir].Reverse() != t {
		return nil, Forward
	}
	if !data {
		h := f.hands[k]
		if flags&packet.FlagSYN != 0 {
			h.start[dir], h.seen[dir] = tcp.Seq()+1, true
		}
		h.win[dir] = tcp.Window()
		h.tsVal[dir], _, h.hasTS[dir] = tcp.Timestamps()
		f.hands[k] = h
		return nil, Forward
	}
	var ss *session
	if n := len(f.free); n > 0 {
		ss = f.free[n-1]
		f.free = f.free[:n-1]
	} else {
		ss = new(session)
	}
	ss.key, ss.logged, ss.dead = s.Key, false, false
	ss.dirs[0].reset()
	ss.dirs[1].reset()
	if h, ok := f.hands[k]; ok {
		for d := range h.seen {
			st := &ss.dirs[d]
			if h.seen[d] {
				st.start(h.start[d])
			}
			st.win, st.tsVal, st.hasTS = h.win[d], h.tsVal[d], h.hasTS[d]
		}
		delete(f.hands, k)
	}
	ss.own.reset()
	ss.entry = f.stats.entry(s.MapEntry)
	f.sessions[k] = ss
	f.liveMu.Lock()
	f.live[k] = &ss.own
	f.liveMu.Unlock()
	f.count(ss, cSessions, 1)
	return ss, Forward
}

// Process runs the ALG on one frame of a control session, already
// translated by the NAT: it.Buf is the whole Ethernet frame (len the
// packet, cap the frame size), it.Session, it.Gen and it.Dir say whose
// and which way. The payload may be rewritten in place, growing up to
// cap and within the egress link's MTU (it.MTU; 0: Config.MTU); Process
// sets it.Buf's length, it.Verdict and, when the ALG also answers the
// frame's sender, it.Back. The IPv4 total length and header checksum and
// the TCP checksum are fixed whenever anything changed.
func (f *FTP) Process(it *Item, now flowtable.Time) {
	it.Verdict, it.Back, it.FragSize = Forward, nil, 0
	if !f.cfg.Enabled || it.Dir > flowtable.Reply {
		return
	}
	if f.forgetPending.Load() {
		f.applyForget()
	}
	if f.reasm.live > 0 {
		f.expireFragments(now)
	}
	var p packet.Parsed
	if packet.Parse(it.Buf, &p) != packet.OK || p.Tuple.Proto != packet.ProtoTCP {
		return
	}
	reassembled := p.Frag.IsFragment()
	if reassembled {
		// Inspected whole, never passed on in pieces (reasm.go), its
		// checksum checked once whole.
		if !f.fragment(it, &p, now) {
			return
		}
		if packet.Parse(it.Buf, &p) != packet.OK {
			it.Verdict = DropFragment
			return
		}
	}
	ss, v := f.session(it.Session, it.Gen, it.Dir, p.Tuple, packet.TCP(it.Buf[p.L4:p.End]), p.TCPFlags, p.Payload < p.End)
	if ss == nil {
		it.Verdict = v
		return
	}
	if !reassembled && !tcpChecksumOK(packet.IPv4(it.Buf[p.L3:p.End]), it.Buf[p.L4:p.End]) {
		// Corrupted on the way, or forged carelessly: its receiver would
		// drop it, and conntrack (nf_conntrack_checksum) finds it
		// invalid. The ALG must not read its line, nor give it a valid
		// checksum by recomputing one after a rewrite or a sequence
		// shift (the NAT's translation before it is incremental and
		// keeps a wrong checksum wrong).
		f.count(ss, cBadChecksum, 1)
		it.Verdict = DropBadChecksum
		return
	}
	n, v := f.segment(it, &p, ss, now)
	it.Buf, it.Verdict = it.Buf[:n], v
}

// The flow table is what the ALG reads sessions from.
var _ Table = (*flowtable.Table)(nil)
