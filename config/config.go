package config

import (
	"net/netip"
	"strings"
	"time"

	"github.com/fastnat/fastnat/portmap"
)

// Config is a validated configuration. Parse fills every default, so the
// zero values below never mean "unset". Treat it as read-only.
type Config struct {
	File         string // the name it was parsed from
	Dataplane    Dataplane
	Interfaces   []Interface
	Flows        Flows
	Timeouts     Timeouts
	NAT          NAT
	PortMappings []portmap.Mapping // in file order; PortMap's entry indexes point here
	// PortMappingLines[i] is the line of PortMappings[i] in File.
	PortMappingLines []int
	PortMap          *portmap.Table // compiled from PortMappings and the defaults
	ALG              ALG
	ICMP             ICMP
	TCP              TCP
	Metrics          Metrics
	Control          Control
	Logging          Logging
	Warnings         []Error // non-fatal findings, positioned, in document order
}

// Dataplane is the [dataplane] table: how packets are polled.
type Dataplane struct {
	Workers        int   // 0: one worker per queue of the first interface
	CPUs           []int // CPUs to pin workers to, in order; nil: no pinning
	Poll           PollMode
	Batch          int // frames per rx/tx burst, 1–512
	FramesPerQueue int // UMEM frames per queue, a power of two
	FrameSize      int // 2048 or 4096
	XDPMode        XDPMode
}

// PollMode is how a worker waits for packets.
type PollMode uint8

// Poll modes; the zero value is the default.
const (
	PollAdaptive  PollMode = iota // spin while busy, then sleep in poll(2)
	PollBusy                      // spin always (one core per worker at 100%)
	PollInterrupt                 // always sleep in poll(2) between bursts
)

var pollNames = []string{"adaptive", "busy", "interrupt"}

// String returns the mode's name in the configuration file.
func (m PollMode) String() string { return nameOf(pollNames, int(m)) }

// XDPMode is how the XDP program is attached.
type XDPMode uint8

// XDP attach modes; the zero value is the default.
const (
	XDPAuto    XDPMode = iota // native when the driver supports it, else generic
	XDPNative                 // driver mode only
	XDPGeneric                // skb mode
)

var xdpNames = []string{"auto", "native", "generic"}

// String returns the mode's name in the configuration file.
func (m XDPMode) String() string { return nameOf(xdpNames, int(m)) }

// Role says on which side of the NAT an interface is.
type Role uint8

// Interface roles. The zero value is not a role: every interface names one.
const (
	RoleInside  Role = iota + 1 // private side: nat outbound sources, nat server destinations
	RoleOutside                 // public side: pool and server public addresses
)

var roleNames = []string{"", "inside", "outside"}

// String returns the role's name in the configuration file.
func (r Role) String() string { return nameOf(roleNames, int(r)) }

// Interface is one [[interface]] table.
type Interface struct {
	Name    string
	Role    Role
	Queues  []int      // nil: every queue the NIC has
	Gateway netip.Addr // next hop for off-link destinations; zero: none
	Line    int        // of its table header
}

// Flows is the [flows] table.
type Flows struct {
	Max int // sessions in the flow table
}

// Timeouts is the [timeouts] table: idle timeouts by protocol and state.
type Timeouts struct {
	TCPSyn         time.Duration // until the handshake completes
	TCPEstablished time.Duration // RFC 5382 REQ-5: at least 2h4m
	TCPTransitory  time.Duration // after FIN; RFC 5382: at least 4m
	TCPClosed      time.Duration // after RST; conntrack's CLOSE (nf_conntrack_tcp_timeout_close): 10s
	UDP            time.Duration // RFC 4787 REQ-5: at least 2m
	ICMP           time.Duration // query sessions; RFC 5508 REQ-1: at least 60s
	Other          time.Duration // address-only sessions of protocols without ports (GRE, ESP, ...); conntrack's generic timeout
	Expectation    time.Duration // an ALG expectation not yet used
}

// NAT holds the translation rules.
type NAT struct {
	Outbound []Outbound // first matching inside prefix wins, in file order
	Server   []Server
}

// Outbound is one [[nat.outbound]] rule (Comware "nat outbound"): source
// NAT of Inside to the pool's addresses and ports.
type Outbound struct {
	Inside  []netip.Prefix
	Pool    []netip.Addr // every address, ranges and prefixes expanded
	Ports   PortRange
	Mapping MappingMode
	// PortsPerHost is the size of every inside address's port range with
	// Deterministic mapping (the default fills the pool evenly); 0
	// otherwise.
	PortsPerHost int
	// BlockSize, when not 0, turns on port block allocation: an inside
	// host gets ports in blocks of BlockSize on one pool address, at most
	// BlocksPerHost blocks at a time.
	BlockSize     int
	BlocksPerHost int
	Line          int
}

// PortRange is an inclusive range of ports, Lo <= Hi.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether p lies in the range.
func (r PortRange) Contains(p uint16) bool { return r.Lo <= p && p <= r.Hi }

// MappingMode is the RFC 4787 mapping behaviour of an outbound rule.
type MappingMode uint8

// Mapping behaviours; the zero value is the default.
const (
	EndpointIndependent     MappingMode = iota // one public endpoint per inside endpoint (REQ-1)
	AddressAndPortDependent                    // a new public port per destination
	// Deterministic maps every inside address to a public address and
	// port range computed from the configuration (RFC 7422), endpoint
	// independent within the range.
	Deterministic
)

var mappingNames = []string{"endpoint-independent", "address-and-port-dependent", "deterministic"}

// String returns the mode's name in the configuration file.
func (m MappingMode) String() string { return nameOf(mappingNames, int(m)) }

// Server is one [[nat.server]] rule (Comware "nat server"): static
// destination NAT of Public to Inside.
type Server struct {
	Proto  uint8 // portmap.ProtoTCP or portmap.ProtoUDP
	Public netip.AddrPort
	Inside netip.AddrPort
	Line   int
}

// ALG is the [alg] table.
type ALG struct {
	FTP FTPALG
}

// FTPALG is the [alg.ftp] table.
type FTPALG struct {
	Enabled bool
	// AllowThirdParty accepts PORT/EPRT/227 replies naming a host other
	// than the control connection's peer (FTP bounce); off by default.
	AllowThirdParty bool
	// MaxExpectations bounds the open data-connection expectations per
	// control session.
	MaxExpectations int
}

// ICMP is the [icmp] table: the rate of the ICMP errors fastnat sends
// itself (time exceeded, destination unreachable; fragmentation needed is
// never limited).
type ICMP struct {
	// RateLimit is the interval at which one destination earns an error
	// after a burst of Burst (Linux's net.ipv4.icmp_ratelimit); 0: no
	// limit.
	RateLimit time.Duration
	Burst     int
}

// TCP is the [tcp] table.
type TCP struct {
	// MSSClamp lowers the MSS option of SYNs and SYN-ACKs that pass: 0
	// off, MSSClampMTU to the interfaces' MTU less 40, else to that many
	// bytes.
	MSSClamp int
}

// MSSClampMTU is TCP.MSSClamp for tcp.mss_clamp = "mtu".
const MSSClampMTU = -1

// Metrics is the [metrics] table.
type Metrics struct {
	Listen string // host:port of the Prometheus endpoint; "": off
}

// Control is the [control] table.
type Control struct {
	Socket string // path of the control socket; "": off
	// Group is the operator group that may use the socket (mode 0660);
	// "": root only (mode 0600).
	Group string
}

func nameOf(names []string, i int) string {
	if i >= 0 && i < len(names) && names[i] != "" {
		return names[i]
	}
	return "invalid"
}

// Defaults, also the documented ones.
const (
	DefaultBatch           = 64
	DefaultFramesPerQueue  = 8192
	DefaultFrameSize       = 2048
	DefaultFlowsMax        = 1 << 20
	DefaultPortLo          = 1024
	DefaultPortHi          = 65535
	DefaultMaxExpectations = 8
	DefaultSocket          = "/run/fastnat.sock"
	DefaultICMPRateLimit   = time.Second // Linux's icmp_ratelimit
	DefaultICMPBurst       = 6           // Linux's burst (XRLIM_BURST_FACTOR)
)

// DefaultTimeouts are the timeouts of a file without [timeouts].
var DefaultTimeouts = Timeouts{
	TCPSyn:         30 * time.Second,
	TCPEstablished: 2*time.Hour + 4*time.Minute,
	TCPTransitory:  4 * time.Minute,
	TCPClosed:      10 * time.Second, // nf_conntrack_tcp_timeout_close
	UDP:            5 * time.Minute,
	ICMP:           60 * time.Second,
	Other:          10 * time.Minute, // nf_conntrack_generic_timeout
	Expectation:    5 * time.Minute,
}

// FormatDuration writes d as a configuration file does: without the zero
// units time.Duration.String keeps ("2h4m", not "2h4m0s"; "5m", "30s").
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
