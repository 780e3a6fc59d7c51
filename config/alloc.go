package config

import (
	"math/bits"
	"net/netip"
)

// Limits of port block allocation and deterministic mapping.
const (
	// MinBlockSize keeps the block bitmaps small (one bit per block and
	// pool address) and a block worth its log line.
	MinBlockSize          = 16
	MaxBlockSize          = 32768
	DefaultBlocksPerHost  = 4
	MaxBlocksPerHost      = 1024
	MaxDeterministicHosts = 1 << 24 // inside addresses of one deterministic rule
)

// allocation reads an outbound rule's port allocation keys (p is its path)
// after its inside prefixes, pool, ports and mapping: ports_per_host for
// deterministic mapping, block_size and blocks_per_host for port blocks.
func (c *converter) allocation(p string, r *rawOutbound, o *Outbound) {
	span := int(o.Ports.Hi) - int(o.Ports.Lo) + 1
	det := o.Mapping == Deterministic
	if r.PortsPerHost != nil && !det {
		c.errorf(p+".ports_per_host", `applies to mapping = "deterministic" only; this rule's mapping is %q`, o.Mapping)
	}
	if r.BlocksPerHost != nil && r.BlockSize == nil {
		c.errorf(p+".blocks_per_host", "needs block_size: port block allocation is off without it")
	}
	if r.BlockSize != nil {
		if det {
			c.errorf(p+".block_size", `a deterministic rule gives every inside host one fixed range; port blocks apply to "endpoint-independent" and "address-and-port-dependent" mapping`)
			return
		}
		c.blocks(p, r, o, span)
		return
	}
	if det {
		c.deterministic(p, r, o, span)
	}
}

func (c *converter) blocks(p string, r *rawOutbound, o *Outbound, span int) {
	n, ok := c.integer(p+".block_size", r.BlockSize, MinBlockSize, MaxBlockSize)
	if !ok {
		return
	}
	if int(n) > span {
		c.errorf(p+".block_size", "%d ports do not fit the port range %d-%d (%d ports); allowed: at most %d", n, o.Ports.Lo, o.Ports.Hi, span, span)
		return
	}
	o.BlockSize = int(n)
	perAddr := span / o.BlockSize
	if rest := span % o.BlockSize; rest != 0 {
		c.warnf(p+".block_size", "ports %d-%d are never used: the port range %d-%d holds %d whole blocks of %d",
			int(o.Ports.Hi)-rest+1, o.Ports.Hi, o.Ports.Lo, o.Ports.Hi, perAddr, o.BlockSize)
	}
	o.BlocksPerHost = min(DefaultBlocksPerHost, perAddr)
	if r.BlocksPerHost != nil {
		if k, ok := c.integer(p+".blocks_per_host", r.BlocksPerHost, 1, MaxBlocksPerHost); ok {
			o.BlocksPerHost = int(k)
			if int(k) > perAddr {
				c.warnf(p+".blocks_per_host", "a host's blocks are all on one pool address, which has %d blocks of %d ports; no host gets more than %d",
					perAddr, o.BlockSize, perAddr)
			}
		}
	}
}

// DeterministicHosts returns the number of inside addresses a
// deterministic rule maps: every address of its prefixes.
func DeterministicHosts(o *Outbound) int {
	n := 0
	for _, q := range o.Inside {
		n += 1 << (32 - q.Bits())
	}
	return n
}

func (c *converter) deterministic(p string, r *rawOutbound, o *Outbound, span int) {
	if len(o.Inside) == 0 || len(o.Pool) == 0 {
		return // reported already
	}
	// Every inside address maps to one range, so prefixes may not overlap.
	for i, a := range o.Inside {
		for j, b := range o.Inside[:i] {
			if a.Overlaps(b) {
				c.errorf(element(p+".inside", i), "%s overlaps %s (%s); a deterministic rule maps each inside address once", a, b, element(p+".inside", j))
				return
			}
		}
		if a.Bits() < 32-bits.Len(MaxDeterministicHosts)+1 {
			c.errorf(element(p+".inside", i), "%s has more than %d addresses, the most a deterministic rule maps", a, MaxDeterministicHosts)
			return
		}
	}
	hosts, addrs := DeterministicHosts(o), len(o.Pool)
	if hosts > MaxDeterministicHosts {
		c.errorf(p+".inside", "%d inside addresses; a deterministic rule maps at most %d", hosts, MaxDeterministicHosts)
		return
	}
	where := p + ".mapping"
	if r.PortsPerHost != nil {
		where = p + ".ports_per_host"
		n, ok := c.integer(where, r.PortsPerHost, 1, int64(span))
		if !ok {
			return
		}
		o.PortsPerHost = int(n)
	} else {
		// Fill the pool evenly: ceil(hosts/addrs) hosts share an address.
		o.PortsPerHost = span / ((hosts + addrs - 1) / addrs)
		if o.PortsPerHost == 0 {
			c.errorf(where, "%d inside addresses on %d pool addresses of %d ports (%d-%d) leave less than one port each; add pool addresses",
				hosts, addrs, span, o.Ports.Lo, o.Ports.Hi)
			return
		}
	}
	perAddr := span / o.PortsPerHost
	if perAddr*addrs < hosts {
		need := (hosts + perAddr - 1) / perAddr
		most := span / ((hosts + addrs - 1) / addrs)
		c.errorf(where, "%d inside addresses need %d port ranges of %d ports, and %d pool addresses hold %d of them (%d each in %d-%d); need %d pool addresses, or ports_per_host of at most %d",
			hosts, hosts, o.PortsPerHost, addrs, perAddr*addrs, perAddr, o.Ports.Lo, o.Ports.Hi, need, most)
		o.PortsPerHost = 0
		return
	}
	if used := (hosts + perAddr - 1) / perAddr; used < addrs {
		c.warnf(where, "the %d inside addresses use only the first %d of the pool's %d addresses (%d ranges of %d ports each)",
			hosts, used, addrs, perAddr, o.PortsPerHost)
	}
}

// exclusivePools reports a pool address that a deterministic or port-block
// rule shares with another rule: such a rule hands out every port of its
// addresses itself, so no other rule may claim ports on them.
func (c *converter) exclusivePools(out []Outbound) {
	owner := map[netip.Addr]int{}
	for i, o := range out {
		for _, a := range o.Pool {
			j, seen := owner[a]
			if !seen {
				owner[a] = i
				continue
			}
			if prev := out[j]; exclusive(&o) || exclusive(&prev) {
				which := element("nat.outbound", i)
				if !exclusive(&o) {
					which = element("nat.outbound", j)
				}
				c.errorf(element("nat.outbound", i)+".pool", "%s is also in the pool of %s (line %d); %s allocates every port of its pool addresses itself, so they may not be shared",
					a, element("nat.outbound", j), prev.Line, which)
				return
			}
		}
	}
}

func exclusive(o *Outbound) bool { return o.Mapping == Deterministic || o.BlockSize > 0 }
