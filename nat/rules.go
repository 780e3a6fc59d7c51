package nat

import (
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/fastnat/fastnat/natlog"
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
	TCPTransitory  time.Duration // after a FIN each way, or a single FIN
	TCPClosed      time.Duration // after a RST (conntrack's CLOSE); 0 means DefaultTimeouts'
	UDP            time.Duration
	ICMP           time.Duration
	Other          time.Duration // address-only sessions (createAddrOnly)
	Expectation    time.Duration
}

// DefaultTimeouts are RFC 5382/4787 compliant defaults (the config's defaults).
var DefaultTimeouts = Timeouts{
	TCPSyn:         30 * time.Second,
	TCPEstablished: 2*time.Hour + 4*time.Minute,
	TCPTransitory:  4 * time.Minute,
	TCPClosed:      10 * time.Second,
	UDP:            5 * time.Minute,
	ICMP:           60 * time.Second,
	Other:          10 * time.Minute,
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
	// Local are the router's own interface addresses with their
	// prefixes (the dataplane reads them from the host; the public
	// addresses fastnat adds are among them). As the kernel's routing
	// has it, a packet with one of them as its source is a martian — a
	// router forwards nothing spoofing its own addresses — and one to the
	// broadcast address of one of their prefixes (a directed broadcast,
	// 198.18.0.255 of 198.18.0.254/24) is not forwarded (Linux's
	// bc_forwarding 0; RFC 2644).
	Local    []netip.Prefix
	PortMap  *portmap.Table // nil: classify nothing
	Timeouts Timeouts
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
	// spaces[i] is pool[i]'s port spaces once a session has claimed
	// there (pools.of, looked up once instead of in the pools' map at
	// every creation).
	spaces []atomic.Pointer[[numClasses]portSpace]
	lo, hi uint16
	eim    bool
	index  uint16 // in Rules.Outbound
	id     uint16 // its identity's id (label.go)
	// det is the rule's deterministic mapping, blocks its port block
	// pool with limit blocks per host; nil for a dynamic rule.
	det    *Deterministic
	blocks *blockPool
	limit  int
}

type serverKey struct {
	addr  uint32
	port  uint16
	proto uint8
}

type serverDest struct {
	addr uint32
	port uint16
	rule int    // index in Rules.Servers (Explain and the events name it)
	id   uint16 // its identity's id (label.go)
}

// compiled is an immutable, validated form of Rules. Workers read the
// current one through an atomic pointer; a reload publishes a new one.
type compiled struct {
	outbound   []outboundRule
	servers    map[serverKey]serverDest
	public     map[uint32]bool // every address the NAT answers for
	publicSet  []uint32        // public's addresses, for isPublic
	localSet   []uint32        // Rules.Local's addresses, for isOwn
	bcastSet   []uint32        // Rules.Local's prefixes' broadcast addresses, for isDirectedBroadcast
	own        []uint32        // the public and Rules.Local addresses, each once (OwnAddrs)
	insideNets []prefix4
	portmap    *portmap.Table
	timeouts   [numTimeouts]uint32 // seconds
	expectTTL  uint32
	ftpALG     bool
	// owner maps the pool addresses of deterministic and port-block rules
	// to their rule: such a rule hands out every port of its addresses.
	owner map[uint32]*outboundRule
	// index maps a rule id to the rule's index, per kind (kindSlot).
	index [2]map[uint16]uint16
}

const (
	toTCPSyn = iota
	toTCPEstablished
	toTCPTransitory
	toTCPClosed
	toUDP
	toICMP
	toOther
	numTimeouts
)

func seconds(d time.Duration) uint32 {
	s := d / time.Second
	if s < 1 {
		s = 1
	}
	return uint32(s)
}

// registry is what compiled rules share across reloads: the ids of rule
// identities and the port block pools.
type registry struct {
	ids    ruleIDs
	blocks blockPools
	pools  *pools
}

// compile validates r and compiles it alone (no NAT's ids and block
// pools): for checks and explanations of a configuration.
func compile(r Rules) (*compiled, error) { return compileIn(r, &registry{pools: &pools{}}) }

// compileIn compiles r with the ids and block pools of reg, giving new
// rule identities ids and new port-block layouts pools there (a
// configuration compiled but never installed leaves them unused).
func compileIn(r Rules, reg *registry) (*compiled, error) {
	c := &compiled{
		servers: make(map[serverKey]serverDest),
		public:  make(map[uint32]bool),
		portmap: r.PortMap,
		ftpALG:  r.FTPALG,
		owner:   make(map[uint32]*outboundRule),
		index:   [2]map[uint16]uint16{{}, {}},
	}
	t := r.Timeouts
	if t == (Timeouts{}) {
		t = DefaultTimeouts
	}
	if t.TCPClosed == 0 {
		t.TCPClosed = DefaultTimeouts.TCPClosed
	}
	c.timeouts = [numTimeouts]uint32{seconds(t.TCPSyn), seconds(t.TCPEstablished), seconds(t.TCPTransitory), seconds(t.TCPClosed), seconds(t.UDP), seconds(t.ICMP), seconds(t.Other)}
	c.expectTTL = seconds(t.Expectation)
	for i, o := range r.Outbound {
		if len(o.Pool) == 0 {
			return nil, fmt.Errorf("outbound rule %d: empty pool", i)
		}
		if o.PortLo == 0 || o.PortLo > o.PortHi {
			return nil, fmt.Errorf("outbound rule %d: bad port range %d-%d", i, o.PortLo, o.PortHi)
		}
		if o.Deterministic && o.BlockSize > 0 {
			return nil, fmt.Errorf("outbound rule %d: deterministic mapping has no port blocks: %w", i, ErrRules)
		}
		or := outboundRule{lo: o.PortLo, hi: o.PortHi, eim: o.EndpointIndependent || o.Deterministic,
			index: uint16(i), id: reg.ids.id(natlog.RuleOutbound, outboundIdentity(&o))}
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
		or.spaces = make([]atomic.Pointer[[numClasses]portSpace], len(or.pool))
		switch {
		case o.Deterministic:
			d, err := NewDeterministic(o.Inside, o.Pool, o.PortLo, o.PortHi, o.PortsPerHost)
			if err != nil {
				return nil, fmt.Errorf("outbound rule %d: %w", i, err)
			}
			or.det = d
		case o.BlockSize > 0:
			b, err := reg.blocks.pool(or.pool, o.PortLo, o.PortHi, o.BlockSize, reg.pools)
			if err != nil {
				return nil, fmt.Errorf("outbound rule %d: %w", i, err)
			}
			or.blocks, or.limit = b, max(o.BlocksPerHost, 1)
		}
		c.outbound = append(c.outbound, or)
	}
	for i := range c.outbound {
		or := &c.outbound[i]
		c.index[kindSlot(natlog.RuleOutbound)][or.id] = or.index
		if or.det == nil && or.blocks == nil {
			continue
		}
		for _, a := range or.pool {
			if prev, dup := c.owner[a]; dup {
				return nil, fmt.Errorf("outbound rules %d and %d both have pool address %v; a deterministic or port-block rule's addresses are its own: %w",
					prev.index, i, Addr(a), ErrRules)
			}
			c.owner[a] = or
		}
	}
	for i := range c.outbound {
		for _, a := range c.outbound[i].pool {
			if or, ok := c.owner[a]; ok && or != &c.outbound[i] {
				return nil, fmt.Errorf("outbound rules %d and %d both have pool address %v; a deterministic or port-block rule's addresses are its own: %w",
					or.index, i, Addr(a), ErrRules)
			}
		}
	}
	for i, s := range r.Servers {
		if !s.Public.Addr().Is4() || !s.Inside.Addr().Is4() {
			return nil, fmt.Errorf("server rule %d: addresses must be IPv4", i)
		}
		k := serverKey{addr: addr4(s.Public.Addr()), port: s.Public.Port(), proto: s.Proto}
		if _, dup := c.servers[k]; dup {
			return nil, fmt.Errorf("server rule %d: %v/%d defined twice", i, s.Public, s.Proto)
		}
		id := reg.ids.id(natlog.RuleServer, serverIdentity(&s))
		c.servers[k] = serverDest{addr: addr4(s.Inside.Addr()), port: s.Inside.Port(), rule: i, id: id}
		c.index[kindSlot(natlog.RuleServer)][id] = uint16(i)
		c.public[k.addr] = true
		c.insideNets = append(c.insideNets, prefix4{addr: addr4(s.Inside.Addr()), mask: ^uint32(0)})
	}
	for _, p := range r.InsideNets {
		if p.Addr().Is4() {
			c.insideNets = append(c.insideNets, toPrefix4(p))
		}
	}
	c.publicSet = addrSet(c.public)
	local, bcast := map[uint32]bool{}, map[uint32]bool{}
	for _, p := range r.Local {
		if !p.Addr().Is4() {
			continue
		}
		local[addr4(p.Addr())] = true
		if p.Bits() < 31 { // a /31 or /32 has no broadcast address (RFC 3021)
			bcast[toPrefix4(p).addr|^toPrefix4(p).mask] = true
		}
	}
	c.localSet, c.bcastSet = addrSet(local), addrSet(bcast)
	for a := range c.public {
		local[a] = true
	}
	for a := range local {
		c.own = append(c.own, a)
	}
	return c, nil
}

// addrSet lays the addresses of m out for isPublic: open addressing in a
// power-of-two array at most half full, linear probing from mix32's low
// bits, 0 marking an empty slot (0.0.0.0 is never an address of the NAT's
// own; config refuses it).
func addrSet(m map[uint32]bool) []uint32 {
	n := 4
	for n < 2*len(m) {
		n *= 2
	}
	set := make([]uint32, n)
	for a := range m {
		if a == 0 {
			continue
		}
		i := mix32(a) & uint32(n-1)
		for set[i] != 0 {
			i = (i + 1) & uint32(n-1)
		}
		set[i] = a
	}
	return set
}

// isPublic reports whether addr is an address the NAT answers for (the
// first question of every creation: a Go map lookup cost five times as
// many instructions).
func (c *compiled) isPublic(addr uint32) bool { return inSet(c.publicSet, addr) }

// isOwn reports whether addr is one of the router's own: a public
// address or an interface's (Rules.Local).
func (c *compiled) isOwn(addr uint32) bool {
	return inSet(c.publicSet, addr) || inSet(c.localSet, addr)
}

// isDirectedBroadcast reports whether addr is the broadcast address of
// the prefix of one of the router's interface addresses.
func (c *compiled) isDirectedBroadcast(addr uint32) bool { return inSet(c.bcastSet, addr) }

// OwnAddrs returns the router's own addresses under the running rules:
// the public ones and the host's (Rules.Local), in no order. The slice is
// the rules' own: not to be changed. Slow path: a Timestamp option's
// prespecified addresses are looked up in it.
func (e *Engine) OwnAddrs() []uint32 { return e.n.rules.Load().own }

// inSet reports whether addr is in set, an addrSet.
func inSet(set []uint32, addr uint32) bool {
	if len(set) == 0 {
		return false
	}
	mask := uint32(len(set) - 1)
	for i := mix32(addr) & mask; ; i = (i + 1) & mask {
		switch set[i] {
		case addr:
			return addr != 0
		case 0:
			return false
		}
	}
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
