package pipeline

import (
	"sync/atomic"
	"time"
)

// RouterConfig is how workers behave as IPv4 routers beyond translation:
// the rate of the ICMP errors they originate and TCP MSS clamping.
type RouterConfig struct {
	// ICMPRateLimit is the interval at which one destination earns an
	// ICMP error, after a burst of ICMPBurst (Linux's
	// net.ipv4.icmp_ratelimit, 1 s, with its burst of 6); 0 turns rate
	// limiting off. Fragmentation needed is never limited (path MTU
	// discovery depends on it; Linux's icmp_ratemask leaves it out too).
	// Besides, each worker sends at most ICMPWorkerRate errors a second
	// after a burst of ICMPWorkerBurst (Linux's icmp_msgs_per_sec and
	// icmp_msgs_burst).
	ICMPRateLimit time.Duration
	ICMPBurst     int
	// MSSClamp lowers the MSS option of TCP SYNs and SYN-ACKs that pass:
	// 0 off, MSSClampMTU to the smaller of the two interfaces' MTUs less
	// 40 (IPv4 and TCP headers without options), or a number of bytes.
	MSSClamp int
}

// MSSClampMTU is RouterConfig.MSSClamp's value for clamping to the MTUs of
// the interfaces a SYN crosses, as Linux's TCPMSS --clamp-mss-to-pmtu does
// (the smaller of the path towards the destination and back).
const MSSClampMTU = -1

// Linux's ICMP rate-limit defaults, and the per-worker limit.
const (
	DefaultICMPRateLimit = time.Second
	DefaultICMPBurst     = 6
	ICMPWorkerRate       = 1000 // errors per second per worker
	ICMPWorkerBurst      = 50
)

// DefaultRouterConfig is the behaviour of a worker without a Policy.
var DefaultRouterConfig = RouterConfig{ICMPRateLimit: DefaultICMPRateLimit, ICMPBurst: DefaultICMPBurst}

// Policy is the RouterConfig every worker of a dataplane reads, once per
// poll; Set publishes a new one (a reload) without stopping them.
type Policy struct{ v atomic.Pointer[RouterConfig] }

// NewPolicy returns a Policy holding c.
func NewPolicy(c RouterConfig) *Policy {
	p := &Policy{}
	p.Set(c)
	return p
}

// Set publishes c to the workers.
func (p *Policy) Set(c RouterConfig) { p.v.Store(&c) }

// Get returns the current configuration.
func (p *Policy) Get() *RouterConfig { return p.v.Load() }

// icmpLimiter is a worker's ICMP error rate limit, Linux's two token
// buckets: one per destination (inet_peer_xrlim_allow: tokens are
// nanoseconds earned with time, an error costs one interval, at most
// burst intervals saved) in a small direct-mapped table where a
// destination that takes another's slot starts with a full burst, and one
// for the worker as a whole. Owned by the worker; no locking.
type icmpLimiter struct {
	dests       [limiterSlots]limiterSlot
	total, last int64 // worker bucket, in nanoseconds
	started     bool
}

const limiterSlots = 256

type limiterSlot struct {
	dst          uint32
	used         bool
	tokens, last int64
}

// allow reports whether an error to dst may be sent at time now (in
// nanoseconds of a monotonic clock) and takes its tokens if so.
func (l *icmpLimiter) allow(dst uint32, now int64, c *RouterConfig) bool {
	interval := int64(c.ICMPRateLimit)
	if interval <= 0 {
		return true
	}
	const cost = int64(time.Second) / ICMPWorkerRate
	if !l.started {
		l.started, l.total = true, ICMPWorkerBurst*cost
	} else {
		l.total = min(l.total+now-l.last, ICMPWorkerBurst*cost)
	}
	l.last = now
	if l.total < cost {
		return false
	}
	burst := int64(max(c.ICMPBurst, 1)) * interval
	s := &l.dests[(dst*0x9e3779b1)>>24]
	if s.dst != dst || !s.used {
		*s = limiterSlot{dst: dst, used: true, tokens: burst}
	} else {
		s.tokens = min(s.tokens+now-s.last, burst)
	}
	s.last = now
	if s.tokens < interval {
		return false
	}
	s.tokens -= interval
	l.total -= cost
	return true
}
