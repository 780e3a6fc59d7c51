package portmap

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
)

// Mapping is one user port mapping: packets to Port (and Proto, unless it is
// ProtoAny) are App. Hosts, when not empty, limits the mapping to those
// destination prefixes; each prefix is a scope of its own. Only IPv4
// prefixes take part (fastnat is a NAT44); others are ignored.
type Mapping struct {
	App   App
	Port  uint16
	Proto uint8
	Hosts []netip.Prefix
}

// Entry is one line of the effective table, as Entries lists it.
type Entry struct {
	App     App
	Port    uint16
	Proto   uint8        // ProtoAny: every transport protocol
	Scope   netip.Prefix // zero (invalid) Prefix: every destination
	Mapping int          // index of the user mapping, -1 for a built-in default
}

// Default reports whether the entry is a built-in well-known port.
func (e Entry) Default() bool { return e.Mapping < 0 }

// Overwrite records that a later mapping replaced an earlier one with the
// same port, protocol and scope but another application.
type Overwrite struct {
	Old, New       int // indexes into the mappings given to Build
	OldApp, NewApp App
	Port           uint16
	Proto          uint8
	Scope          netip.Prefix // zero when unscoped
}

// String describes the overwrite in one line.
func (o Overwrite) String() string {
	return fmt.Sprintf("port %d/%s scope %s: %s (mapping %d) overwritten by %s (mapping %d)",
		o.Port, ProtoName(o.Proto), scopeName(o.Scope), o.OldApp, o.Old, o.NewApp, o.New)
}

func scopeName(p netip.Prefix) string {
	if !p.IsValid() {
		return "any"
	}
	return p.String()
}

// wellKnown are the built-in defaults: every application on its
// well-known port.
var wellKnown = []struct {
	app   App
	port  uint16
	proto uint8
}{
	{AppFTP, 21, ProtoTCP},
	{AppSSH, 22, ProtoTCP},
	{AppSMTP, 25, ProtoTCP},
	{AppDNS, 53, ProtoTCP},
	{AppDNS, 53, ProtoUDP},
	{AppTFTP, 69, ProtoUDP},
	{AppHTTP, 80, ProtoTCP},
	{AppHTTPS, 443, ProtoTCP},
	{AppRTSP, 554, ProtoTCP},
	{AppH323, 1720, ProtoTCP},
	{AppPPTP, 1723, ProtoTCP},
	{AppSIP, 5060, ProtoTCP},
	{AppSIP, 5060, ProtoUDP},
}

// Defaults returns the built-in entries, every application on its
// well-known port, in port order.
func Defaults() []Entry {
	es := make([]Entry, len(wellKnown))
	for i, d := range wellKnown {
		es[i] = Entry{App: d.app, Port: d.port, Proto: d.proto, Mapping: -1}
	}
	return es
}

// Scope ranks, highest first: a prefix of length n ranks rankPrefix+n, so a
// host (/32) beats a /24, which beats 0.0.0.0/0, which beats an unscoped
// mapping, which beats a built-in default.
const (
	rankDefault  = 0
	rankUnscoped = 1
	rankPrefix   = 2
)

// cell holds the results for one (port, scope) pair: one per protocol slot,
// slot 0 being the protocol-less mapping. has has bit i set when slot i is
// filled.
type cell struct {
	addr uint32
	port uint16
	rank uint8
	has  uint8
	app  [numSlots]App
	idx  [numSlots]int32
}

// level is one scope rank of one port. A level with a single prefix holds
// its cell (c.addr is the prefix) and is compared directly; the cells of a
// level with several prefixes live in the hash table, keyed by port, rank
// and the destination masked to the level's length.
type level struct {
	mask   uint32
	hashed bool
	c      cell
}

// Table is the compiled, read-only port-mapping table. It holds no
// pointers besides its own slices and never changes after Build, so it is
// safe for any number of concurrent readers.
type Table struct {
	// ports[p] packs the levels of port p: first level index << 6 | count.
	ports  [1 << 16]uint32
	levels []level
	// The hash table of the cells of hashed levels, open addressing:
	// hkeys[i] is hashKey's input for cells[i], 0 for an empty bucket (a
	// hashed level's rank is at least rankPrefix, so no key is 0). The keys
	// sit apart from the cells so that probing touches little memory.
	hkeys   []uint64
	hcells  []cell
	shift   uint8 // 64 - log2(len(hkeys))
	entries []Entry
}

type key struct {
	port  uint16
	rank  uint8
	addr  uint32
	proto uint8
}

type result struct {
	app App
	idx int32
}

func v4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func maskOf(rank uint8) uint32 {
	if rank < rankPrefix {
		return 0
	}
	bits := rank - rankPrefix
	if bits == 0 {
		return 0
	}
	return ^uint32(0) << (32 - bits)
}

// Build compiles the user mappings ms, in file order, together with the
// built-in defaults. Later mappings overwrite earlier ones with the same
// port, protocol and scope; every such replacement with a different
// application is returned as an Overwrite. Build panics if a mapping names a
// protocol other than ProtoAny, ProtoTCP, ProtoUDP, ProtoDCCP, ProtoSCTP or
// ProtoUDPLite (the config package refuses those before).
func Build(ms []Mapping) (*Table, []Overwrite) {
	eff := make(map[key]result)
	var ows []Overwrite
	put := func(k key, i int, m Mapping, scope netip.Prefix) {
		if old, ok := eff[k]; ok && int(old.idx) != i && old.app != m.App {
			ows = append(ows, Overwrite{
				Old: int(old.idx), New: i, OldApp: old.app, NewApp: m.App,
				Port: m.Port, Proto: m.Proto, Scope: scope,
			})
		}
		eff[k] = result{m.App, int32(i)}
	}
	for i, m := range ms {
		if m.Proto != ProtoAny && protoSlot[m.Proto] == 0 {
			panic(fmt.Sprintf("portmap: mapping %d names protocol %d, not a mappable one", i, m.Proto))
		}
		if len(m.Hosts) == 0 {
			put(key{m.Port, rankUnscoped, 0, m.Proto}, i, m, netip.Prefix{})
			continue
		}
		for _, h := range m.Hosts {
			if !h.IsValid() || !h.Addr().Is4() {
				continue
			}
			p := h.Masked()
			put(key{m.Port, uint8(rankPrefix + p.Bits()), v4(p.Addr()), m.Proto}, i, m, p)
		}
	}
	for _, d := range wellKnown {
		eff[key{d.port, rankDefault, 0, d.proto}] = result{d.app, -1}
	}

	keys := make([]key, 0, len(eff))
	for k := range eff {
		keys = append(keys, k)
	}
	// Port ascending, then precedence: rank descending, then the address,
	// then protocol-specific before protocol-less, then protocol number.
	slices.SortFunc(keys, func(a, b key) int {
		if c := cmp.Compare(a.port, b.port); c != 0 {
			return c
		}
		if c := cmp.Compare(b.rank, a.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.addr, b.addr); c != 0 {
			return c
		}
		if (a.proto == ProtoAny) != (b.proto == ProtoAny) {
			return cmp.Compare(b.proto, a.proto)
		}
		return cmp.Compare(a.proto, b.proto)
	})

	t := &Table{entries: make([]Entry, 0, len(keys))}
	var hashed, cells []cell
	for i := 0; i < len(keys); {
		port := keys[i].port
		first := len(t.levels)
		for i < len(keys) && keys[i].port == port {
			rank := keys[i].rank
			cells = cells[:0]
			for i < len(keys) && keys[i].port == port && keys[i].rank == rank {
				addr := keys[i].addr
				c := cell{addr: addr, port: port, rank: rank}
				for i < len(keys) && keys[i].port == port && keys[i].rank == rank && keys[i].addr == addr {
					k := keys[i]
					r := eff[k]
					s := protoSlot[k.proto]
					c.has |= 1 << s
					c.app[s] = r.app
					c.idx[s] = r.idx
					t.entries = append(t.entries, entryOf(k, r))
					i++
				}
				cells = append(cells, c)
			}
			lv := level{mask: maskOf(rank)}
			if len(cells) == 1 {
				lv.c = cells[0]
			} else {
				lv.hashed = true
				lv.c.rank = rank
				hashed = append(hashed, cells...)
			}
			t.levels = append(t.levels, lv)
		}
		n := len(t.levels) - first
		if n >= 1<<6 || first >= 1<<26 {
			panic("portmap: table index overflow")
		}
		t.ports[port] = uint32(first)<<6 | uint32(n)
	}
	t.fillHash(hashed)
	return t, ows
}

func entryOf(k key, r result) Entry {
	e := Entry{App: r.app, Port: k.port, Proto: k.proto, Mapping: int(r.idx)}
	if k.rank >= rankPrefix {
		var b [4]byte
		b[0], b[1], b[2], b[3] = byte(k.addr>>24), byte(k.addr>>16), byte(k.addr>>8), byte(k.addr)
		e.Scope = netip.PrefixFrom(netip.AddrFrom4(b), int(k.rank-rankPrefix))
	}
	return e
}

func keyOf(port uint16, rank uint8, addr uint32) uint64 {
	return uint64(port)<<40 | uint64(rank)<<32 | uint64(addr)
}

func (t *Table) bucket(k uint64) uint64 {
	return (k * 0x9E3779B97F4A7C15) >> t.shift
}

// fillHash builds the open-addressing table of the cells of hashed levels,
// at most half full so that probe sequences stay short.
func (t *Table) fillHash(cells []cell) {
	if len(cells) == 0 {
		return
	}
	size, bits := 1, 0
	for size < 2*len(cells) {
		size <<= 1
		bits++
	}
	t.hkeys = make([]uint64, size)
	t.hcells = make([]cell, size)
	t.shift = uint8(64 - bits)
	m := uint64(size - 1)
	for _, c := range cells {
		k := keyOf(c.port, c.rank, c.addr)
		h := t.bucket(k) & m
		for t.hkeys[h] != 0 {
			h = (h + 1) & m
		}
		t.hkeys[h] = k
		t.hcells[h] = c
	}
}

// Lookup classifies a packet by protocol, destination address (IPv4 in host
// byte order: binary.BigEndian.Uint32 of the wire bytes) and destination
// port. It returns the application and the index of the user mapping that
// matched, or -1 when a built-in default or nothing matched (then the
// application is AppOther). A nil Table classifies nothing.
func (t *Table) Lookup(proto uint8, dst uint32, port uint16) (App, int) {
	if t == nil {
		return AppOther, -1
	}
	packed := t.ports[port]
	if packed == 0 {
		return AppOther, -1
	}
	s := protoSlot[proto]
	first := packed >> 6
	end := first + packed&63
	for li := first; li < end; li++ {
		lv := &t.levels[li]
		a := dst & lv.mask
		c := &lv.c
		if lv.hashed {
			if c = t.find(keyOf(port, c.rank, a)); c == nil {
				continue
			}
		} else if a != c.addr {
			continue
		}
		if s != 0 && c.has&(1<<s) != 0 {
			return c.app[s], int(c.idx[s])
		}
		if c.has&1 != 0 {
			return c.app[0], int(c.idx[0])
		}
	}
	return AppOther, -1
}

// find returns the hashed cell of key k, or nil.
func (t *Table) find(k uint64) *cell {
	m := uint64(len(t.hkeys) - 1)
	for h := t.bucket(k) & m; ; h = (h + 1) & m {
		switch t.hkeys[h] {
		case k:
			return &t.hcells[h]
		case 0:
			return nil
		}
	}
}

// Classify applies CASE.md's rule for a new connection: the destination as
// it arrives (dst, port) first, and only when that maps to nothing (not
// even a default) the destination after translation (xdst, xport).
func (t *Table) Classify(proto uint8, dst uint32, port uint16, xdst uint32, xport uint16) (App, int) {
	app, i, _ := t.ClassifyTranslated(proto, dst, port, xdst, xport)
	return app, i
}

// ClassifyTranslated is Classify that also reports whether the match was
// on the destination after translation (for `fastnat explain`).
func (t *Table) ClassifyTranslated(proto uint8, dst uint32, port uint16, xdst uint32, xport uint16) (App, int, bool) {
	if app, i := t.Lookup(proto, dst, port); app != AppOther {
		return app, i, false
	}
	app, i := t.Lookup(proto, xdst, xport)
	return app, i, app != AppOther
}

// Entries returns the effective table, every user mapping left after
// overwrites and every default, ordered by port and then by precedence
// (the first entry of a port that matches a packet is the one that
// applies).
func (t *Table) Entries() []Entry {
	return slices.Clone(t.entries)
}
