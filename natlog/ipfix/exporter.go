package ipfix

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/fastnat/fastnat/natlog"
)

// Set IDs and the message version (RFC 7011 §3.1, §3.3.2).
const (
	version     = 10
	setTemplate = 2
	headerLen   = 16
	setHeadLen  = 4
)

// Defaults and limits.
const (
	// DefaultMaxMessage keeps a message and its IPv4 and UDP headers well
	// inside a 1500-byte path MTU: RFC 7011 §10.3.3 asks an Exporter not
	// to let the network fragment its messages.
	DefaultMaxMessage = 1400
	// MinMessage leaves room for the message that carries every template
	// (276 bytes).
	MinMessage = 512
	// DefaultRefresh is how often templates are resent over UDP (RFC
	// 7011 §8.4: a collector that starts, or restarts, late learns them
	// within this time).
	DefaultRefresh = time.Minute
)

// ErrConfig is wrapped by New's errors about its Config.
var ErrConfig = errors.New("invalid IPFIX exporter configuration")

// Config sets up an Exporter.
type Config struct {
	Collector netip.AddrPort // where to send
	Domain    uint32         // Observation Domain ID
	// Refresh is the template refresh interval; 0 means DefaultRefresh.
	Refresh time.Duration
	// MaxMessage bounds a message in bytes; 0 means DefaultMaxMessage.
	MaxMessage int
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Exporter sends events as IPFIX over UDP to one collector. It is a
// natlog.Sink: the Hub calls it from one goroutine.
type Exporter struct {
	conn      *net.UDPConn
	to        netip.AddrPort
	domain    uint32
	refresh   time.Duration
	max       int
	now       func() time.Time
	seq       uint32 // data records sent so far (RFC 7011 §3.1)
	templated time.Time
	msg       []byte
	set       int // offset of the open set's header in msg, -1 none
	setID     uint16
	records   int // data records in msg
	stats     Stats
}

// Stats counts what an Exporter sent.
type Stats struct {
	Messages  uint64 // messages sent, templates included
	Templates uint64 // template sets sent
	Records   uint64 // data records sent
}

// New opens a UDP socket for cfg.Collector. It sends nothing until the
// first Export or Tick, which start with the templates.
func New(cfg Config) (*Exporter, error) {
	if !cfg.Collector.IsValid() || cfg.Collector.Port() == 0 {
		return nil, fmt.Errorf("collector %v: %w: want an address and a port", cfg.Collector, ErrConfig)
	}
	x := &Exporter{
		domain: cfg.Domain, refresh: cfg.Refresh, max: cfg.MaxMessage, now: cfg.Now, set: -1,
		to: netip.AddrPortFrom(cfg.Collector.Addr().Unmap(), cfg.Collector.Port()),
	}
	if x.refresh <= 0 {
		x.refresh = DefaultRefresh
	}
	if x.max == 0 {
		x.max = DefaultMaxMessage
	}
	if x.max < MinMessage || x.max > 65535 {
		return nil, fmt.Errorf("message size %d: %w: allowed %d to 65535", x.max, ErrConfig, MinMessage)
	}
	if x.now == nil {
		x.now = time.Now
	}
	network := "udp4"
	if x.to.Addr().Is6() {
		network = "udp6"
	}
	// An unconnected socket: a collector that is down makes the kernel
	// drop datagrams, not fail later sends with ECONNREFUSED from an
	// earlier one, so a failed send is this message's, counted exactly.
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("ipfix exporter to %v: %w", cfg.Collector, err)
	}
	x.conn = conn
	x.msg = make([]byte, 0, x.max)
	return x, nil
}

// Export encodes events into as few messages as fit and sends them. A
// message the kernel refuses counts its records as failed; the sequence
// number advances only by records sent (RFC 7011 §3.1), so a collector's
// sequence check reveals only what the network lost, and Failed what
// fastnat did.
func (x *Exporter) Export(events []natlog.Event) (failed int, err error) {
	now := x.now()
	// A failed template send does not stop the records: a collector that
	// knows the templates still takes them.
	terr := x.templatesDue(now)
	x.begin()
	for i := range events {
		e := &events[i]
		if e.Type == 0 || e.Type >= natlog.NumTypes {
			failed++
			continue
		}
		k := kinds[e.Type]
		t := &templates[k.tmpl]
		n := t.recordLen()
		if x.setID != t.id {
			if len(x.msg)+setHeadLen+n > x.max {
				if f, e := x.flush(now); e != nil {
					failed, err = failed+f, e
				}
				x.begin()
			}
			x.openSet(t.id)
		} else if len(x.msg)+n > x.max {
			if f, e := x.flush(now); e != nil {
				failed, err = failed+f, e
			}
			x.begin()
			x.openSet(t.id)
		}
		x.msg = t.encode(x.msg, e, k.natEvent)
		x.records++
	}
	if f, e := x.flush(now); e != nil {
		failed, err = failed+f, e
	}
	if err == nil && terr != nil {
		err = fmt.Errorf("templates: %w", terr)
	}
	return failed, err
}

// Tick resends the templates when they are due.
func (x *Exporter) Tick(now time.Time) error { return x.templatesDue(now) }

// Close closes the socket.
func (x *Exporter) Close() error { return x.conn.Close() }

// Stats returns the counters; call it from the Hub's sink goroutine or
// after Close.
func (x *Exporter) Stats() Stats { return x.stats }

func (x *Exporter) templatesDue(now time.Time) error {
	if !x.templated.IsZero() && now.Sub(x.templated) < x.refresh {
		return nil
	}
	x.templated = now
	x.begin()
	x.msg = appendTemplateSet(x.msg)
	x.stats.Templates++
	_, err := x.flush(now)
	return err
}

// begin starts a message: the header is written by flush.
func (x *Exporter) begin() {
	x.msg = x.msg[:headerLen]
	x.set, x.setID, x.records = -1, 0, 0
}

func (x *Exporter) openSet(id uint16) {
	x.closeSet()
	x.set, x.setID = len(x.msg), id
	x.msg = be.AppendUint16(x.msg, id)
	x.msg = be.AppendUint16(x.msg, 0)
}

func (x *Exporter) closeSet() {
	if x.set >= 0 {
		be.PutUint16(x.msg[x.set+2:], uint16(len(x.msg)-x.set))
		x.set = -1
	}
}

// flush sends the message built so far, if it holds anything, and
// returns how many data records failed with it.
func (x *Exporter) flush(now time.Time) (int, error) {
	x.closeSet()
	if len(x.msg) == headerLen {
		return 0, nil
	}
	// RFC 7011 §3.1: version, length, export time in seconds, the
	// sequence number counting data records sent before this message, and
	// the observation domain.
	be.PutUint16(x.msg[0:], version)
	be.PutUint16(x.msg[2:], uint16(len(x.msg)))
	be.PutUint32(x.msg[4:], uint32(now.Unix()))
	be.PutUint32(x.msg[8:], x.seq)
	be.PutUint32(x.msg[12:], x.domain)
	out, records := x.msg, x.records
	x.begin()
	if _, err := x.conn.WriteToUDPAddrPort(out, x.to); err != nil {
		return records, fmt.Errorf("send to %v: %w", x.to, err)
	}
	x.seq += uint32(records)
	x.stats.Messages++
	x.stats.Records += uint64(records)
	return 0, nil
}
