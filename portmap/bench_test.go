package portmap

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

type query struct {
	proto uint8
	dst   uint32
	port  uint16
}

// benchTables are realistic tables: none (defaults only), the case's one
// mapping, a thousand host-scoped FTP servers on one port, and a thousand
// host-scoped mappings spread over a hundred ports.
func benchTables() []struct {
	name string
	ms   []Mapping
	qs   []query
} {
	r := rand.New(rand.NewPCG(7, 7))
	host := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}) }
	onePort := make([]Mapping, 1000)
	spread := make([]Mapping, 1000)
	for i := range onePort {
		onePort[i] = Mapping{App: AppFTP, Port: 9091, Proto: ProtoTCP, Hosts: []netip.Prefix{netip.PrefixFrom(host(i), 32)}}
		spread[i] = Mapping{App: App(1 + i%11), Port: uint16(8000 + i%100), Proto: ProtoTCP, Hosts: []netip.Prefix{netip.PrefixFrom(host(i), 32)}}
	}
	spread = append(spread, Mapping{App: AppHTTP, Port: 8000}) // an unscoped fallback as well
	mixed := func(ports []uint16, hosts int) []query {
		qs := make([]query, 1024)
		for i := range qs {
			qs[i] = query{ProtoTCP, v4(host(r.IntN(hosts))), ports[r.IntN(len(ports))]}
		}
		return qs
	}
	spreadPorts := make([]uint16, 100)
	for i := range spreadPorts {
		spreadPorts[i] = uint16(8000 + i)
	}
	return []struct {
		name string
		ms   []Mapping
		qs   []query
	}{
		{"none/miss", nil, mixed([]uint16{9091, 40000, 51234}, 1000)},
		{"none/default", nil, mixed([]uint16{21, 80, 443}, 1000)},
		{"case/hit", []Mapping{{App: AppFTP, Port: 9091, Proto: ProtoTCP, Hosts: []netip.Prefix{netip.MustParsePrefix("198.18.0.204/32")}}},
			[]query{{ProtoTCP, v4(netip.MustParseAddr("198.18.0.204")), 9091}}},
		{"1000hosts-one-port/hit", onePort, mixed([]uint16{9091}, 1000)},
		{"1000hosts-one-port/miss", onePort, mixed([]uint16{9091}, 4000)},
		{"1000hosts-100-ports/mixed", spread, mixed(spreadPorts, 1200)},
	}
}

func BenchmarkLookup(b *testing.B) {
	for _, bt := range benchTables() {
		tab, _ := Build(bt.ms)
		b.Run(bt.name, func(b *testing.B) {
			qs := bt.qs
			mask := len(qs) - 1
			if len(qs)&mask != 0 {
				b.Fatal("queries must be a power of two")
			}
			var sink App
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				q := &qs[i&mask]
				a, _ := tab.Lookup(q.proto, q.dst, q.port)
				sink ^= a
			}
			_ = sink
		})
	}
}

// BenchmarkLookupOracle is the baseline: the plain scan of every mapping
// that the differential test checks Lookup against.
func BenchmarkLookupOracle(b *testing.B) {
	for _, bt := range benchTables() {
		b.Run(bt.name, func(b *testing.B) {
			qs := bt.qs
			mask := len(qs) - 1
			var sink App
			for i := 0; b.Loop(); i++ {
				q := &qs[i&mask]
				a, _ := slowLookup(bt.ms, q.proto, q.dst, q.port)
				sink ^= a
			}
			_ = sink
		})
	}
}

func BenchmarkBuild(b *testing.B) {
	ms := benchTables()[5].ms
	b.ReportAllocs()
	for b.Loop() {
		Build(ms)
	}
}
