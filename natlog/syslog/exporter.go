package syslog

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fastnat/fastnat/natlog"
)

// Transports.
const (
	UDP  = "udp"  // one message per datagram (RFC 5426)
	TCP  = "tcp"  // a stream with octet-counting framing (RFC 6587 §3.4.1)
	Unix = "unix" // one message per datagram on a local socket such as /dev/log
)

// Facilities by name (RFC 5424 §6.2.1), the ones syslog.conf knows.
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14, "clock": 15,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// FacilityNames lists the facility names ParseFacility accepts.
func FacilityNames() []string {
	names := make([]string, 24)
	for n, f := range facilities {
		names[f] = n
	}
	return names
}

// ParseFacility returns the code of a facility name ("local0").
func ParseFacility(name string) (int, error) {
	if f, ok := facilities[strings.ToLower(name)]; ok {
		return f, nil
	}
	return 0, fmt.Errorf("%w: unknown facility %q; known: %s", ErrConfig, name, strings.Join(FacilityNames(), ", "))
}

// DefaultFacility is local0.
const DefaultFacility = 16

// Timeouts of the stream transport.
const (
	dialTimeout  = 2 * time.Second
	writeTimeout = 2 * time.Second
	maxBackoff   = 30 * time.Second
)

// ErrConfig is wrapped by New's errors about its Config.
var ErrConfig = errors.New("invalid syslog exporter configuration")

// Config sets up an Exporter.
type Config struct {
	Transport string // UDP, TCP or Unix
	Address   string // "HOST:PORT" (an IP address) for UDP and TCP, a socket path for Unix
	Facility  int    // 0 to 23
	// Hostname is the messages' HOSTNAME; "" means os.Hostname.
	Hostname string
}

// Exporter writes events as RFC 5424 syslog messages, one per event. It
// is a natlog.Sink: the Hub calls it from one goroutine.
type Exporter struct {
	cfg  Config
	h    header
	to   netip.AddrPort // UDP
	udp  *net.UDPConn
	conn net.Conn // TCP or Unix, nil while disconnected
	// TCP reconnection: no dial before retry; backoff doubles per failure.
	retry   time.Time
	backoff time.Duration
	buf     []byte
	one     []byte // TCP: one message before framing
	msgEnds []int  // TCP: where each framed message ends in buf
}

// New checks cfg and, for UDP, opens the socket. TCP and Unix connect on
// the first Export, and again after a failure.
func New(cfg Config) (*Exporter, error) {
	x := &Exporter{cfg: cfg, buf: make([]byte, 0, 64<<10)}
	if cfg.Facility < 0 || cfg.Facility > 23 {
		return nil, fmt.Errorf("facility %d: %w: allowed 0 to 23", cfg.Facility, ErrConfig)
	}
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	x.h = header{facility: cfg.Facility, hostname: printable(host, 255), appName: "fastnat", procID: strconv.Itoa(os.Getpid())}
	switch cfg.Transport {
	case UDP, TCP:
		ap, err := netip.ParseAddrPort(cfg.Address)
		if err != nil || ap.Port() == 0 {
			return nil, fmt.Errorf("syslog address %q: %w: want an IP address and a port", cfg.Address, ErrConfig)
		}
		x.to = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if cfg.Transport == UDP {
			network := "udp4"
			if x.to.Addr().Is6() {
				network = "udp6"
			}
			// Unconnected, as for IPFIX: a receiver that is down costs
			// datagrams, not errors on later sends.
			c, err := net.ListenUDP(network, nil)
			if err != nil {
				return nil, fmt.Errorf("syslog to %v: %w", x.to, err)
			}
			x.udp = c
		}
	case Unix:
		if cfg.Address == "" {
			return nil, fmt.Errorf("syslog: %w: want a socket path", ErrConfig)
		}
	default:
		return nil, fmt.Errorf("syslog transport %q: %w: want %q, %q or %q", cfg.Transport, ErrConfig, UDP, TCP, Unix)
	}
	return x, nil
}

// printable keeps a header field to RFC 5424's PRINTUSASCII and max
// length; an empty field is the NILVALUE "-".
func printable(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b.WriteByte(c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// Export writes one message per event and returns how many were not
// sent.
func (x *Exporter) Export(events []natlog.Event) (failed int, err error) {
	switch x.cfg.Transport {
	case UDP:
		for i := range events {
			x.buf = x.h.appendMessage(x.buf[:0], &events[i])
			if _, e := x.udp.WriteToUDPAddrPort(x.buf, x.to); e != nil {
				failed, err = failed+1, fmt.Errorf("send to %v: %w", x.to, e)
			}
		}
		return failed, err
	case Unix:
		for i := range events {
			if x.conn == nil {
				if err := x.dial(); err != nil {
					return len(events) - i, err
				}
			}
			x.buf = x.h.appendMessage(x.buf[:0], &events[i])
			if _, e := x.conn.Write(x.buf); e != nil {
				// The reader went away (a restarted syslog daemon binds
				// a new socket): reconnect for the next message.
				failed, err = failed+1, fmt.Errorf("send to %s: %w", x.cfg.Address, e)
				x.conn.Close()
				x.conn = nil
			}
		}
		return failed, err
	}
	return x.exportStream(events)
}

// exportStream writes the whole batch with one write, each message
// framed by its length (RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG).
func (x *Exporter) exportStream(events []natlog.Event) (int, error) {
	if x.conn == nil {
		if time.Now().Before(x.retry) {
			return len(events), nil // still backing off; the dial error was reported
		}
		if err := x.dial(); err != nil {
			x.fail()
			return len(events), err
		}
	}
	x.buf, x.msgEnds = x.buf[:0], x.msgEnds[:0]
	for i := range events {
		x.one = x.h.appendMessage(x.one[:0], &events[i])
		x.buf = strconv.AppendInt(x.buf, int64(len(x.one)), 10)
		x.buf = append(x.buf, ' ')
		x.buf = append(x.buf, x.one...)
		x.msgEnds = append(x.msgEnds, len(x.buf))
	}
	x.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	n, err := x.conn.Write(x.buf)
	if err == nil {
		x.backoff = 0
		return 0, nil
	}
	// Messages wholly written reached the socket; a message cut short
	// breaks the framing, so the connection is dropped with it.
	sent := 0
	for sent < len(x.msgEnds) && x.msgEnds[sent] <= n {
		sent++
	}
	x.conn.Close()
	x.conn = nil
	x.fail()
	return len(events) - sent, fmt.Errorf("send to %v: %w", x.to, err)
}

func (x *Exporter) dial() error {
	var c net.Conn
	var err error
	if x.cfg.Transport == Unix {
		c, err = net.DialTimeout("unixgram", x.cfg.Address, dialTimeout)
	} else {
		c, err = net.DialTimeout("tcp", x.to.String(), dialTimeout)
	}
	if err != nil {
		return fmt.Errorf("connect to syslog %s: %w", x.cfg.Address, err)
	}
	x.conn = c
	return nil
}

// fail schedules the next TCP connection attempt.
func (x *Exporter) fail() {
	x.backoff = min(max(2*x.backoff, time.Second), maxBackoff)
	x.retry = time.Now().Add(x.backoff)
}

// Tick reconnects a stream whose back-off has passed, so that the first
// events after an outage need not wait for a dial.
func (x *Exporter) Tick(now time.Time) error {
	if x.cfg.Transport != TCP || x.conn != nil || now.Before(x.retry) {
		return nil
	}
	if err := x.dial(); err != nil {
		x.fail()
		return err
	}
	return nil
}

// Close closes the socket.
func (x *Exporter) Close() error {
	var err error
	if x.udp != nil {
		err = x.udp.Close()
	}
	if x.conn != nil {
		err = errors.Join(err, x.conn.Close())
	}
	return err
}
