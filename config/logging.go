package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/fastnat/fastnat/natlog"
	"github.com/fastnat/fastnat/natlog/ipfix"
	"github.com/fastnat/fastnat/natlog/syslog"
)

// Logging is the [logging] table: where the NAT's events go.
type Logging struct {
	// Ring is the size of each worker's event ring, a power of two.
	Ring   int
	IPFIX  []IPFIX
	Syslog []Syslog
}

// IPFIX is one [[logging.ipfix]] table: an RFC 8158 collector.
type IPFIX struct {
	Collector       netip.AddrPort
	Domain          uint32 // Observation Domain ID
	TemplateRefresh time.Duration
	MaxMessage      int
	Events          natlog.TypeSet // the events sent; never 0 once parsed
	Line            int
}

// Syslog is one [[logging.syslog]] table: an RFC 5424 receiver.
type Syslog struct {
	Transport string // syslog.UDP, syslog.TCP or syslog.Unix
	Address   string // "IP:PORT", or a socket path for unix
	Facility  int
	Hostname  string // "": the machine's
	Events    natlog.TypeSet
	Line      int
}

// DefaultIPFIXDomain is the Observation Domain ID of a collector that
// names none.
const DefaultIPFIXDomain = 1

func (c *converter) logging(r *rawLogging) Logging {
	l := Logging{Ring: natlog.DefaultRing}
	if r.Ring != nil {
		if n, ok := c.integer("logging.ring", r.Ring, natlog.MinRing, natlog.MaxRing); ok {
			if n&(n-1) != 0 {
				c.errorf("logging.ring", "%d is not a power of two; allowed: %d, %d, ... %d", n, natlog.MinRing, 2*natlog.MinRing, natlog.MaxRing)
			} else {
				l.Ring = int(n)
			}
		}
	}
	seen := map[netip.AddrPort]int{}
	for i, x := range r.IPFIX {
		p := element("logging.ipfix", i)
		e := IPFIX{Domain: DefaultIPFIXDomain, TemplateRefresh: ipfix.DefaultRefresh, MaxMessage: ipfix.DefaultMaxMessage,
			Events: natlog.AllTypes, Line: c.ix.keyAt(p).Line}
		if x.Collector == nil {
			c.missing(p, "collector", `write the collector's address and port, such as collector = "192.0.2.10:4739"`)
		} else if ap, ok := c.endpoint(p+".collector", x.Collector, "192.0.2.10:4739"); ok {
			e.Collector = ap
			if j, dup := seen[ap]; dup {
				c.warnf(p+".collector", "%s is already a collector of logging.ipfix[%d] (line %d); it gets every event twice", ap, j, l.IPFIX[j].Line)
			}
			seen[ap] = i
		}
		if x.Domain != nil {
			if n, ok := c.integer(p+".domain", x.Domain, 0, 1<<32-1); ok {
				e.Domain = uint32(n)
			}
		}
		if x.TemplateRefresh != nil {
			e.TemplateRefresh = c.duration(p+".template_refresh", x.TemplateRefresh, e.TemplateRefresh)
		}
		if x.MaxMessage != nil {
			if n, ok := c.integer(p+".max_message", x.MaxMessage, ipfix.MinMessage, 65535); ok {
				e.MaxMessage = int(n)
				if n > 1472 {
					c.warnf(p+".max_message", "%d bytes do not fit a 1500-byte path MTU with IPv4 and UDP headers (1472); the network may fragment the messages", n)
				}
			}
		}
		if x.Events != nil {
			e.Events = c.eventTypes(p+".events", x.Events)
		}
		l.IPFIX = append(l.IPFIX, e)
	}
	for i, x := range r.Syslog {
		p := element("logging.syslog", i)
		s := Syslog{Transport: syslog.UDP, Facility: syslog.DefaultFacility, Events: natlog.AllTypes, Line: c.ix.keyAt(p).Line}
		transports := []string{syslog.UDP, syslog.TCP, syslog.Unix}
		if x.Transport != nil {
			if k, ok := c.enum(p+".transport", x.Transport, transports); ok {
				s.Transport = transports[k]
			}
		}
		if x.Address == nil {
			c.missing(p, "address", `write the receiver, such as address = "192.0.2.10:514", or a socket path for transport = "unix"`)
		} else if s.Transport == syslog.Unix {
			if a, ok := c.str(p+".address", x.Address, `a socket path such as "/dev/log"`); ok {
				switch {
				case !filepath.IsAbs(a):
					c.errorf(p+".address", "%q is not an absolute path; write one such as \"/dev/log\"", a)
				case len(a) > maxSocketPathBytes:
					c.errorf(p+".address", "path is %d bytes long; a unix socket path may have at most %d", len(a), maxSocketPathBytes)
				default:
					s.Address = a
				}
			}
		} else if ap, ok := c.endpoint(p+".address", x.Address, "192.0.2.10:514"); ok {
			s.Address = ap.String()
		}
		if x.Facility != nil {
			names := syslog.FacilityNames()
			if k, ok := c.enum(p+".facility", x.Facility, names); ok {
				s.Facility = k
			}
		}
		if x.Hostname != nil {
			if h, ok := c.str(p+".hostname", x.Hostname, "a host name"); ok {
				if !printableASCII(h) || len(h) > 255 {
					c.errorf(p+".hostname", "%q: a syslog HOSTNAME is 1 to 255 printable ASCII characters without spaces (RFC 5424 §6.2.4), or \"\" for the machine's", h)
				} else {
					s.Hostname = h
				}
			}
		}
		if x.Events != nil {
			s.Events = c.eventTypes(p+".events", x.Events)
		}
		l.Syslog = append(l.Syslog, s)
	}
	return l
}

// endpoint parses "IP:PORT" (IPv4 or IPv6 in brackets) with a port 1-65535
// and an address a packet can be sent to.
func (c *converter) endpoint(path string, v any, example string) (netip.AddrPort, bool) {
	want := fmt.Sprintf("an IP address and port such as %q", example)
	s, ok := c.str(path, v, want)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s)
	switch {
	case err != nil:
		c.errorf(path, "%q is not %s", s, want)
	case ap.Port() == 0:
		c.errorf(path, "%q has port 0; allowed: ports 1 to 65535", s)
	case ap.Addr().IsUnspecified() || ap.Addr().IsMulticast():
		c.errorf(path, "%s is not an address to send to; want a unicast address", ap.Addr())
	default:
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
	}
	return netip.AddrPort{}, false
}

// eventTypes parses a non-empty list of event type names.
func (c *converter) eventTypes(path string, v any) natlog.TypeSet {
	all := `event types: ` + strings.Join(natlog.TypeNames(), ", ")
	l, ok := c.list(path, v, all)
	if !ok {
		return natlog.AllTypes
	}
	if len(l) == 0 {
		c.errorf(path, "empty array; list the events to send, or leave the key out for every event")
		return natlog.AllTypes
	}
	var set natlog.TypeSet
	first := map[natlog.Type]int{}
	for i, x := range l {
		p := element(path, i)
		s, ok := c.str(p, x, "an event type")
		if !ok {
			continue
		}
		t, err := natlog.ParseType(s)
		if err != nil {
			c.errorf(p, "%q is not an event type; allowed: %s", s, strings.Join(natlog.TypeNames(), ", "))
			continue
		}
		if j, dup := first[t]; dup {
			c.errorf(p, "%s is listed twice (also at %s); each may appear once", t, element(path, j))
			continue
		}
		first[t] = i
		set = set.With(t)
	}
	if set == 0 {
		return natlog.AllTypes
	}
	return set
}

// printableASCII reports whether s is RFC 5424's PRINTUSASCII only.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}
