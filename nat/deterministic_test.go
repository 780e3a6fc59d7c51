package nat

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ipa(s string) netip.Addr   { return netip.MustParseAddr(s) }

// detConfig is one randomly drawn deterministic rule.
type detConfig struct {
	inside []netip.Prefix
	pool   []netip.Addr
	lo, hi uint16
	per    int
}

// randomDet draws small rules (so that every address and port can be
// checked): up to three non-overlapping prefixes of 1 to 64 addresses,
// a pool of 1 to 4 addresses, a port range of up to 3000 ports, and the
// largest or a random fitting number of ports per host.
func randomDet(rng *rand.Rand) detConfig {
	var c detConfig
	base := uint32(10)<<24 | rng.Uint32N(1<<16)<<8
	for range 1 + rng.IntN(3) {
		bits := 26 + rng.IntN(7) // /26 to /32
		size := uint32(1) << (32 - bits)
		base = (base + size - 1) &^ (size - 1) // align
		c.inside = append(c.inside, netip.PrefixFrom(Addr(base), bits))
		base += size * uint32(1+rng.IntN(3)) // a gap now and then
	}
	if rng.IntN(2) == 0 { // out of address order: numbering follows the list
		c.inside[0], c.inside[len(c.inside)-1] = c.inside[len(c.inside)-1], c.inside[0]
	}
	hosts := 0
	for _, p := range c.inside {
		hosts += 1 << (32 - p.Bits())
	}
	npool := 1 + rng.IntN(4)
	for i := range npool {
		c.pool = append(c.pool, Addr(198<<24|18<<16|uint32(i)*7+1))
	}
	c.lo = uint16(1024 + rng.IntN(30000))
	span := max(hosts/npool+1, rng.IntN(3000)+1)
	c.hi = c.lo + uint16(span-1)
	most := span / ((hosts + npool - 1) / npool)
	c.per = most
	if most > 1 && rng.IntN(2) == 0 {
		c.per = 1 + rng.IntN(most)
	}
	return c
}

// oracleDet is the slow reference: walk the inside addresses in order and
// hand out ranges address by address, as the documentation says.
func oracleDet(c detConfig) map[uint32][3]uint32 {
	out := map[uint32][3]uint32{}
	n := (int(c.hi) - int(c.lo) + 1) / c.per
	k := 0
	for _, p := range c.inside {
		for a := p.Masked().Addr(); p.Contains(a); a = a.Next() {
			first := int(c.lo) + (k%n)*c.per
			out[addr4(a)] = [3]uint32{addr4(c.pool[k/n]), uint32(first), uint32(first + c.per - 1)}
			k++
			if !a.Next().IsValid() {
				break
			}
		}
	}
	return out
}

// TestDeterministicIsABijection checks, over many random rules and every
// inside address and every pool port: Forward agrees with the oracle; the
// ranges are inside the rule's port range, of the right size, and never
// overlap on one public address (no two inside hosts share a public
// address and port); Reverse returns exactly the host whose range holds
// the port, and nobody for ports no range holds.
func TestDeterministicIsABijection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		c := randomDet(rng)
		d, err := NewDeterministic(c.inside, c.pool, c.lo, c.hi, c.per)
		if err != nil {
			t.Fatalf("round %d: %+v: %v", round, c, err)
		}
		want := oracleDet(c)
		if d.Hosts() != len(want) {
			t.Fatalf("round %d: %d hosts, oracle %d", round, d.Hosts(), len(want))
		}
		owner := map[[2]uint32]uint32{} // (pub, port) → host
		for host, w := range want {
			pub, first, last, ok := d.Forward(host)
			if !ok || [3]uint32{pub, uint32(first), uint32(last)} != w {
				t.Fatalf("round %d: Forward(%v) = %v %d-%d %v, oracle %v %d-%d", round, Addr(host), Addr(pub), first, last, ok, Addr(w[0]), w[1], w[2])
			}
			if first < c.lo || last > c.hi || int(last-first)+1 != c.per {
				t.Fatalf("round %d: %v gets %d-%d outside %d-%d or not %d ports", round, Addr(host), first, last, c.lo, c.hi, c.per)
			}
			for p := uint32(first); p <= uint32(last); p++ {
				k := [2]uint32{pub, p}
				if other, dup := owner[k]; dup {
					t.Fatalf("round %d: %v:%d belongs to %v and %v", round, Addr(pub), p, Addr(other), Addr(host))
				}
				owner[k] = host
			}
		}
		for _, pa := range c.pool {
			pub := addr4(pa)
			for p := uint32(c.lo) - 1; p <= uint32(c.hi)+1 && p <= 65535; p++ {
				host, ok := d.Reverse(pub, uint16(p))
				wantHost, owned := owner[[2]uint32{pub, p}]
				if ok != owned || ok && host != wantHost {
					t.Fatalf("round %d: Reverse(%v:%d) = %v %v, want %v %v", round, pa, p, Addr(host), ok, Addr(wantHost), owned)
				}
			}
		}
		if _, ok := d.Reverse(addr4(ipa("203.0.113.1")), c.lo); ok {
			t.Fatalf("round %d: Reverse of an address outside the pool", round)
		}
		if _, _, _, ok := d.Forward(addr4(ipa("192.168.77.1"))); ok {
			t.Fatalf("round %d: Forward of an address outside the rule", round)
		}
	}
}

func TestDeterministicExample(t *testing.T) {
	// The README's example: 10.77.0.0/24 on two addresses, 504 ports each.
	d, err := NewDeterministic([]netip.Prefix{pfx("10.77.0.0/24")}, []netip.Addr{ipa("198.18.0.204"), ipa("198.18.0.205")}, 1024, 65535, 504)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		inside      string
		pub         string
		first, last uint16
	}{
		{"10.77.0.0", "198.18.0.204", 1024, 1527},
		{"10.77.0.5", "198.18.0.204", 3544, 4047},
		{"10.77.0.127", "198.18.0.204", 65032, 65535},
		{"10.77.0.128", "198.18.0.205", 1024, 1527},
		{"10.77.0.255", "198.18.0.205", 65032, 65535},
	} {
		pub, first, last, ok := d.Forward(addr4(ipa(tc.inside)))
		if !ok || Addr(pub) != ipa(tc.pub) || first != tc.first || last != tc.last {
			t.Errorf("%s -> %v %d-%d, want %s %d-%d", tc.inside, Addr(pub), first, last, tc.pub, tc.first, tc.last)
		}
	}
}

func TestNewDeterministicRefuses(t *testing.T) {
	pool := []netip.Addr{ipa("198.18.0.1")}
	for _, tc := range []struct {
		name   string
		inside []netip.Prefix
		pool   []netip.Addr
		lo, hi uint16
		per    int
	}{
		{"pool too small", []netip.Prefix{pfx("10.0.0.0/24")}, pool, 1024, 2047, 5},
		{"overlap", []netip.Prefix{pfx("10.0.0.0/24"), pfx("10.0.0.128/25")}, pool, 1024, 65535, 100},
		{"no ports", []netip.Prefix{pfx("10.0.0.0/30")}, pool, 1024, 65535, 0},
		{"range larger than ports", []netip.Prefix{pfx("10.0.0.0/30")}, pool, 1024, 1100, 100},
		{"pool address twice", []netip.Prefix{pfx("10.0.0.0/30")}, []netip.Addr{ipa("198.18.0.1"), ipa("198.18.0.1")}, 1024, 65535, 100},
	} {
		if _, err := NewDeterministic(tc.inside, tc.pool, tc.lo, tc.hi, tc.per); !errors.Is(err, ErrRules) {
			t.Errorf("%s: %v, want ErrRules", tc.name, err)
		}
	}
}

func TestLookup(t *testing.T) {
	l, err := NewLookup([]Outbound{
		{Inside: []netip.Prefix{pfx("10.77.0.0/24")}, Pool: []netip.Addr{ipa("198.18.0.204"), ipa("198.18.0.205")},
			PortLo: 1024, PortHi: 65535, Deterministic: true, PortsPerHost: 504},
		{Inside: []netip.Prefix{pfx("10.0.0.0/8")}, Pool: []netip.Addr{ipa("198.18.0.1")}, PortLo: 1024, PortHi: 65535, EndpointIndependent: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := l.ByPublic(netip.MustParseAddrPort("198.18.0.204:4000"))
	if err != nil || a.Rule != 0 || a.Inside != ipa("10.77.0.5") || a.First != 3544 || a.Last != 4047 {
		t.Errorf("ByPublic(198.18.0.204:4000) = %+v, %v", a, err)
	}
	a, err = l.ByInside(ipa("10.77.0.5"))
	if err != nil || a.Public != ipa("198.18.0.204") || a.First != 3544 || a.Last != 4047 {
		t.Errorf("ByInside(10.77.0.5) = %+v, %v", a, err)
	}
	// 10.77.0.0/24 is in the first rule's prefixes, before 10.0.0.0/8's.
	if a, err = l.ByInside(ipa("10.1.2.3")); !errors.Is(err, ErrDynamic) || a.Rule != 1 {
		t.Errorf("ByInside of a dynamic rule's host = %+v, %v", a, err)
	}
	if a, err = l.ByPublic(netip.MustParseAddrPort("198.18.0.1:5000")); !errors.Is(err, ErrDynamic) || a.Rule != 1 {
		t.Errorf("ByPublic of a dynamic pool = %+v, %v", a, err)
	}
	if _, err = l.ByPublic(netip.MustParseAddrPort("198.18.0.204:1000")); !errors.Is(err, ErrUnassigned) {
		t.Errorf("ByPublic below the range: %v", err)
	}
	if _, err = l.ByPublic(netip.MustParseAddrPort("203.0.113.9:5000")); !errors.Is(err, ErrNoRule) {
		t.Errorf("ByPublic of a foreign address: %v", err)
	}
	if _, err = l.ByInside(ipa("192.168.0.1")); !errors.Is(err, ErrNoRule) {
		t.Errorf("ByInside of a foreign address: %v", err)
	}
}

// BenchmarkDeterministic is the cost of the mapping both ways: what
// session creation pays for a deterministic host's range, and what a
// lookup pays.
func BenchmarkDeterministic(b *testing.B) {
	d, err := NewDeterministic([]netip.Prefix{pfx("100.64.0.0/16"), pfx("100.65.0.0/16")},
		[]netip.Addr{ipa("203.0.113.1"), ipa("203.0.113.2"), ipa("203.0.113.3"), ipa("203.0.113.4")}, 1024, 65535, 1)
	if err != nil {
		b.Fatal(err)
	}
	host := addr4(ipa("100.65.12.34"))
	b.Run("forward", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.Forward(host)
		}
	})
	pub, first, _, _ := d.Forward(host)
	b.Run("reverse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d.Reverse(pub, first)
		}
	})
	if n := testing.AllocsPerRun(100, func() { d.Forward(host); d.Reverse(pub, first) }); n != 0 {
		b.Fatalf("%v allocations", n)
	}
}
