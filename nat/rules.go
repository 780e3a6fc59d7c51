package nat

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/fastnat/fastnat/portmap"
)

// Outbound is one "nat outbound" rule: source NAT of the inside prefixes to
// the pool's addresses and ports.
type Outbound struct {
	Inside []netip.Prefix
	Pool   []netip.Addr
	PortLo uint16 // first port of the dynamic range
	PortHi uint16 // last port of the dynamic range
	// EndpointIndependent selects endpoint-independent mapping (RFC 4787
	// REQ-1): one inside endpoint keeps one public endpoint for every
	// destination. Otherwise every session gets its own public port
	// (address-and-port-dependent mapping).
	EndpointIndependent bool
	// Deterministic maps every inside address to a fixed public address
	// and range of PortsPerHost ports (RFC 7422; see Deterministic).
	Deterministic bool
	PortsPerHost  int
	// BlockSize, when not 0, hands inside hosts ports in blocks of that
	// many on one public address, at most BlocksPerHost at a time (port
	// block allocation; see blocks.go).
	BlockSize     int
	BlocksPerHost int
}

// Server is one "nat server" rule: connections to Public are sent to Inside.
type Server struct {
	Proto  uint8 // packet.ProtoTCP or packet.ProtoUDP
	Public netip.AddrPort
	Inside netip.AddrPort
}

// Timeouts are the idle timeouts of sessions by protocol and state.
type Timeouts struct {
	TCPSyn         time.Duration
	TCPEstablished time.Duration
	TCPTransitory  time.Duration
	UDP            time.Duration
	ICMP           time.Duration
	Expectation    time.Duration
}

// DefaultTimeouts are RFC 5382/4787 compliant defaults (the config's defaults).
var DefaultTimeouts = Timeouts{
	TCPSyn:         30 * time.Second,
	TCPEstablished: 2*time.Hour + 4*time.Minute,
	TCPTransitory:  4 * time.Minute,
	UDP:            5 * time.Minute,
	ICMP:           60 * time.Second,
	Expectation:    5 * time.Minute,
}

// Rules is everything the engine needs from the configuration. The wiring in
// package dataplane builds it from config.Config; tests build it directly.
type Rules struct {
	Outbound []Outbound
	Servers  []Server
	// InsideNets are the networks reached through inside interfaces besides
	// the rules' own prefixes (connected inside subnets). A translated
	// destination inside any of them leaves by an inside interface.
	InsideNets []netip.Prefix
	PortMap    *portmap.Table // nil: classify nothing
	Timeouts   Timeouts
	// FTPALG diverts sessions classified as ftp to the FTP ALG.
	FTPALG bool
}

// prefix4 is an IPv4 prefix as two host-order words.
type prefix4 struct{ addr, mask uint32 }

func (p prefix4) contains(a uint32) bool { return a&p.mask == p.addr }

func toPrefix4(p netip.Prefix) prefix4 {
	b := p.Masked().Addr().As4()
	mask := uint32(0)
	if p.Bits() > 0 {
		mask = ^uint32(0) << (32 - p.Bits())
	}
	return prefix4{addr: be32(b), mask: mask}
}

func be32(b [4]byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr4(a netip.Addr) uint32 { return be32(a.As4()) }

// Addr converts a host-order IPv4 address back to netip.Addr.
func Addr(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

type outboundRule struct {
	inside []prefix4
	pool   []uint32
	lo, hi uint16
	eim    bool
}

type serverKey struct {
	addr  uint32
	port  uint16
	proto uint8
}

type serverDest struct {
	addr uint32
	port uint16
	rule int // index in Rules.Servers (Explain names it)
}

// compiled is an immutable, validated form of Rules. Workers read the
// current one through an atomic pointer; a reload publishes a new one.
type compiled struct {
	outbound   []outboundRule
	servers    map[serverKey]serverDest
	public     map[uint32]bool // every address the NAT answers for
	insideNets []prefix4
	portmap    *portmap.Table
	timeouts   [numTimeouts]uint32 // seconds
	expectTTL  uint32
	ftpALG     bool
}

const (
	toTCPSyn = iota
	toTCPEstablished
	toTCPTransitory
	toUDP
	toICMP
	numTimeouts
)

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s < 1 {
		s = 1
	}
	return uint32(s)
}

func compile(r Rules) (*compiled, error) {
	c := &compiled{
		servers: make(map[serverKey]serverDest),
		public:  make(map[uint32]bool),
		portmap: r.PortMap,
		ftpALG:  r.FTPALG,
	}
	t := r.Timeouts
	if t == (Timeouts{}) {
		t = DefaultTimeouts
	}
	c.timeouts = [numTimeouts]uint32{seconds(t.TCPSyn), seconds(t.TCPEstablished), seconds(t.TCPTransitory), seconds(t.UDP), seconds(t.ICMP)}
	c.expectTTL = seconds(t.Expectation)
	for i, o := range r.Outbound {
		if len(o.Pool) == 0 {
			return nil, fmt.Errorf("outbound rule %d: empty pool", i)
		}
		if o.PortLo == 0 || o.PortLo > o.PortHi {
			return nil, fmt.Errorf("outbound rule %d: bad port range %d-%d", i, o.PortLo, o.PortHi)
		}
		if o.Deterministic || o.BlockSize > 0 {
			return nil, fmt.Errorf("outbound rule %d: %w (issue 13)", i, ErrNotWired)
		}
		or := outboundRule{lo: o.PortLo, hi: o.PortHi, eim: o.EndpointIndependent}
		for _, p := range o.Inside {
			if !p.Addr().Is4() {
				return nil, fmt.Errorf("outbound rule %d: %v is not IPv4", i, p)
			}
			or.inside = append(or.inside, toPrefix4(p))
			c.insideNets = append(c.insideNets, toPrefix4(p))
		}
		for _, a := range o.Pool {
			if !a.Is4() {
				return nil, fmt.Errorf("outbound rule %d: pool address %v is not IPv4", i, a)
			}
			or.pool = append(or.pool, addr4(a))
			c.public[addr4(a)] = true
		}
		c.outbound = append(c.outbound, or)
	}
	for i, s := range r.Servers {
		if !s.Public.Addr().Is4() || !s.Inside.Addr().Is4() {
			return nil, fmt.Errorf("server rule %d: addresses must be IPv4", i)
		}
		k := serverKey{addr: addr4(s.Public.Addr()), port: s.Public.Port(), proto: s.Proto}
		if _, dup := c.servers[k]; dup {
			return nil, fmt.Errorf("server rule %d: %v/%d defined twice", i, s.Public, s.Proto)
		}
		c.servers[k] = serverDest{addr: addr4(s.Inside.Addr()), port: s.Inside.Port(), rule: i}
		c.public[k.addr] = true
		c.insideNets = append(c.insideNets, prefix4{addr: addr4(s.Inside.Addr()), mask: ^uint32(0)})
	}
	for _, p := range r.InsideNets {
		if p.Addr().Is4() {
			c.insideNets = append(c.insideNets, toPrefix4(p))
		}
	}
	return c, nil
}

// isInside reports whether addr is reached through an inside interface.
func (c *compiled) isInside(addr uint32) bool {
	for _, p := range c.insideNets {
		if p.contains(addr) {
			return true
		}
	}
	return false
}

// outboundFor returns the outbound rule whose inside prefixes hold src.
func (c *compiled) outboundFor(src uint32) *outboundRule {
	for i := range c.outbound {
		for _, p := range c.outbound[i].inside {
			if p.contains(src) {
				return &c.outbound[i]
			}
		}
	}
	return nil
}
