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
	// 0 means DefaultMaxExpectations.
	MaxExpectations int
	// MTU is the largest IPv4 packet the ALG makes by growing a segment
	// when the frame does not say (Item.MTU, the egress link's); 0 means
	// DefaultMTU. A segment that would exceed it is cut and TCP
	// retransmits the rest.
	MTU int
	// Log receives one message per control session whose command is
	// refused. nil discards.
	Log *slog.Logger
}

// Expecter makes an announced data endpoint reachable through the NAT.
// nat.NAT implements it.
type Expecter interface {
	// ExpectData: the endpoint addr:port (host byte order) was announced in
	// the payload of a packet travelling in direction dir of control
	// session parent. It installs the expectation (with the right
	// translation, App ftp-data, expiry) and returns the endpoint the
	// receiver must be told — equal to the input when no rewrite is needed
	// — or ok=false with a reason (pool exhausted, expectation limit, table
	// full). Third-party and low-port policy is the ALG's, checked before.
	ExpectData(parent, gen uint32, dir flowtable.Dir, addr uint32, port uint16, now flowtable.Time) (newAddr uint32, newPort uint16, ok bool)
}

// Table is the part of the flow table the ALG reads: a control session's
// keys and mapping entry (once per session), and its open expectations
// (once per announced endpoint). *flowtable.Table implements it.
type Table interface {
	Gen(id uint32) uint32
	Read(id, gen uint32, s *flowtable.Session) bool
	ExpectationCount(parent, gen uint32) int
}

// Verdict is the ALG's decision for one frame.
type Verdict uint8

// Verdicts. Every verdict but Forward drops the frame; TCP retransmits it.
const (
	Forward          Verdict = iota
	DropRefused              // PORT/EPRT/227 naming a third host (RFC 2577), or a port below 1024
	DropLimit                // the control session has MaxExpectations open expectations
	DropExpectFailed         // the NAT could not install the expectation
	DropBacklog              // too many unacknowledged rewrites in one direction
	DropOutOfOrder           // data beyond a gap in the control stream
	DropInconsistent         // a retransmission disagrees with data rewritten before
	DropRingFull             // the pipeline's: no room on the ring to the ALG
	NumVerdicts
)

var verdictNames = [NumVerdicts]string{
	"forward", "alg_refused", "alg_expectation_limit", "alg_expectation_failed",
	"alg_rewrite_backlog", "alg_out_of_order", "alg_inconsistent_retransmission", "alg_ring_full",
}

// String returns a stable snake_case name, used as a drop-reason label.
func (v Verdict) String() string {
	if v < NumVerdicts {
		return verdictNames[v]
	}
	return fmt.Sprintf("alg_verdict_%d", uint8(v))
}

// FTP is the FTP ALG of one ALG goroutine. Process is not safe for
// concurrent use; Forget, Stats and the ExpectationUsed/Expired notes are,
// from any goroutine.
type FTP struct {
	cfg Config
	// policy holds the settings a reload may change (SetPolicy), read by
	// the ALG goroutine once per frame.
	policy atomic.Pointer[Policy]
	table  Table
	exp    Expecter
	log    *slog.Logger

	sessions map[uint32]*session
	free     []*session

	// Forget requests from other goroutines, applied by the ALG goroutine.
	forgetMu      sync.Mutex
	forgetQueue   []uint32
	forgetSpare   []uint32
	forgetPending atomic.Bool

	stats stats

	// Per-frame scratch, reused: the payload being composed, the rewritten
	// spans in it, the held line joined with new bytes.
	out   []byte
	spans []span
	work  []byte
	txt   [textMax]byte
	dirty bool
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
		sessions: make(map[uint32]*session),
		out:      make([]byte, 0, maxFrame),
		spans:    make([]span, 0, maxRecords), // a span per record at most
		work:     make([]byte, 0, maxLine+maxFrame),
	}
	f.stats.init()
	f.SetPolicy(Policy{AllowThirdParty: cfg.AllowThirdParty, MaxExpectations: cfg.MaxExpectations})
	return f, nil
}

// maxFrame bounds the frames the ALG handles (the frame size of a UMEM
// chunk); larger capacities are used only up to this.
const maxFrame = 4096

// session is the ALG's state of one control connection.
type session struct {
	key    [2]packet.Tuple // the flow-table keys, cached at first sight
	gen    uint32          // the flow-table generation read at first sight
	entry  *counters       // statistics of the session's mapping entry
	logged bool            // a refusal has been logged
	dirs   [2]stream
}

// SessionEnded is the callback for nat.NAT.OnSessionEnd: it forgets the
// session if it was an FTP control connection and ignores every other.
// Safe from any goroutine.
func (f *FTP) SessionEnded(id, _ uint32, s flowtable.Session) {
	if portmap.App(s.App) == portmap.AppFTP {
		f.Forget(id)
	}
}

// Forget drops the state of control session id when the session ends.
// Safe from any goroutine: the ALG goroutine applies it before it
// processes its next frame (and the Runner between polls). Call it for
// control sessions only (SessionEnded filters): each call costs a lock and
// a queue slot until applied.
func (f *FTP) Forget(id uint32) {
	f.forgetMu.Lock()
	f.forgetQueue = append(f.forgetQueue, id)
	f.forgetPending.Store(true)
	f.forgetMu.Unlock()
}

func (f *FTP) applyForget() {
	f.forgetMu.Lock()
	q := f.forgetQueue
	f.forgetQueue = f.forgetSpare[:0]
	f.forgetPending.Store(false)
	f.forgetMu.Unlock()
	for _, id := range q {
		if ss, ok := f.sessions[id]; ok {
			delete(f.sessions, id)
			f.free = append(f.free, ss)
		}
	}
	f.forgetSpare = q[:0]
}

// session returns the state of control session id for a frame of
// direction dir whose (translated) tuple is t, creating it on first sight
// or when id has been recycled for another connection. nil means the flow
// table does not know the frame's session.
func (f *FTP) session(id uint32, dir flowtable.Dir, t packet.Tuple) *session {
	ss := f.sessions[id]
	// A frame of direction d had tuple Key[d] before translation and has
	// Key[1-d].Reverse() after it.
	if ss != nil && ss.key[1-dir].Reverse() == t {
		return ss
	}
	// The generation is read here until the pipeline hands the ALG the
	// one its Result carries; the tuple check below confirms the copy.
	gen := f.table.Gen(id)
	var s flowtable.Session
	if !f.table.Read(id, gen, &s) || s.Key[1-dir].Reverse() != t {
		return nil
	}
	if ss == nil {
		if n := len(f.free); n > 0 {
			ss = f.free[n-1]
			f.free = f.free[:n-1]
		} else {
			ss = new(session)
		}
		f.sessions[id] = ss
	}
	ss.key, ss.gen, ss.logged = s.Key, gen, false
	ss.dirs[0].reset()
	ss.dirs[1].reset()
	ss.entry = f.stats.entry(s.MapEntry)
	f.count(ss, cSessions, 1)
	return ss
}

// Process runs the ALG on one frame of control session id travelling in
// direction dir, already translated by the NAT. buf is the whole Ethernet
// frame: len is the packet, cap the frame size. The payload may be
// rewritten in place, growing up to cap; n is the new frame length. The
// IPv4 total length and header checksum and the TCP checksum are fixed
// whenever anything changed.
func (f *FTP) Process(buf []byte, id uint32, dir flowtable.Dir, now flowtable.Time) (n int, v Verdict) {
	return f.ProcessMTU(buf, id, dir, 0, now)
}

// ProcessMTU is Process for a frame that leaves by a link of the given MTU:
// a segment the ALG grows stays within it (0: Config.MTU).
func (f *FTP) ProcessMTU(buf []byte, id uint32, dir flowtable.Dir, mtu int, now flowtable.Time) (n int, v Verdict) {
	n = len(buf)
	if !f.cfg.Enabled || dir > flowtable.Reply {
		return n, Forward
	}
	if f.forgetPending.Load() {
		f.applyForget()
	}
	var p packet.Parsed
	if packet.Parse(buf, &p) != packet.OK || p.Tuple.Proto != packet.ProtoTCP || p.Frag.Offset != 0 || p.Frag.More {
		return n, Forward
	}
	ss := f.session(id, dir, p.Tuple)
	if ss == nil {
		return n, Forward
	}
	if mtu <= 0 {
		mtu = f.cfg.MTU
	}
	return f.segment(buf, &p, ss, id, dir, mtu, now)
}

// The flow table is what the ALG reads sessions from.
var _ Table = (*flowtable.Table)(nil)
