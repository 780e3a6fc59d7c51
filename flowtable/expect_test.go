package flowtable

import (
	"math/rand/v2"
	"testing"

	"github.com/fastnat/fastnat/packet"
)

const (
	client = 0xc6120064 // 198.18.0.100
	other  = 0xc6120065 // 198.18.0.101
	server = 0x0a4d00e2 // 10.77.0.226
)

// dataConn is the first packet of a data connection from src:sport.
func dataConn(src uint32, sport uint16, dport uint16) packet.Tuple {
	return packet.Tuple{SrcAddr: src, DstAddr: server, SrcPort: sport, DstPort: dport, Proto: packet.ProtoTCP}
}

func expectation(src uint32, dport uint16, parent uint32, expires Time) Expectation {
	return Expectation{Proto: packet.ProtoTCP, SrcAddr: src, DstAddr: server, DstPort: dport,
		Xlate: packet.Tuple{SrcAddr: server, DstAddr: 0xc61200cc, DstPort: dport, Proto: packet.ProtoTCP}, Parent: parent, ParentGen: 1, App: 2, Expires: expires}
}

func TestMatchExpectation(t *testing.T) {
	cases := []struct {
		name     string
		exps     []Expectation
		conn     packet.Tuple
		now      Time
		want     bool
		wantPar  uint32 // Parent of the expectation that must match
		leftOver int    // expectations left afterwards
	}{
		{name: "exact source", exps: []Expectation{expectation(client, 5000, 1, 100)},
			conn: dataConn(client, 40000, 5000), want: true, wantPar: 1},
		{name: "wildcard source", exps: []Expectation{expectation(0, 5000, 1, 100)},
			conn: dataConn(other, 1234, 5000), want: true, wantPar: 1},
		{name: "exact wins over wildcard", exps: []Expectation{expectation(0, 5000, 1, 100), expectation(client, 5000, 2, 100)},
			conn: dataConn(client, 1, 5000), want: true, wantPar: 2, leftOver: 1},
		{name: "wildcard when exact is another host", exps: []Expectation{expectation(0, 5000, 1, 100), expectation(client, 5000, 2, 100)},
			conn: dataConn(other, 1, 5000), want: true, wantPar: 1, leftOver: 1},
		{name: "other source", exps: []Expectation{expectation(client, 5000, 1, 100)},
			conn: dataConn(other, 1, 5000), leftOver: 1},
		{name: "other port", exps: []Expectation{expectation(0, 5000, 1, 100)},
			conn: dataConn(client, 1, 5001), leftOver: 1},
		{name: "other protocol", exps: []Expectation{expectation(0, 5000, 1, 100)},
			conn: packet.Tuple{SrcAddr: client, DstAddr: server, SrcPort: 1, DstPort: 5000, Proto: packet.ProtoUDP}, leftOver: 1},
		{name: "expired", exps: []Expectation{expectation(client, 5000, 1, 100)},
			conn: dataConn(client, 1, 5000), now: 100},
		{name: "expired exact falls back to wildcard", exps: []Expectation{expectation(client, 5000, 1, 50), expectation(0, 5000, 2, 100)},
			conn: dataConn(client, 1, 5000), now: 60, want: true, wantPar: 2},
		{name: "replaced", exps: []Expectation{expectation(client, 5000, 1, 100), expectation(client, 5000, 3, 100)},
			conn: dataConn(client, 1, 5000), want: true, wantPar: 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := mustNew(t, Config{MaxSessions: 16})
			for _, e := range c.exps {
				if r := tb.Expect(e); r != Inserted {
					t.Fatalf("Expect: %v", r)
				}
			}
			e, ok := tb.MatchExpectation(c.conn, c.now)
			if ok != c.want || ok && e.Parent != c.wantPar {
				t.Fatalf("MatchExpectation = %+v %v, want parent %d %v", e, ok, c.wantPar, c.want)
			}
			if ok && (e.Xlate.DstPort != c.conn.DstPort || e.App != 2) {
				t.Fatalf("matched expectation lost its payload: %+v", e)
			}
			if n := tb.Stats().Expectations; n != c.leftOver {
				t.Fatalf("%d expectations left, want %d", n, c.leftOver)
			}
			if _, again := tb.MatchExpectation(c.conn, c.now); again && c.leftOver == 0 {
				t.Fatal("expectation matched twice")
			}
		})
	}
}

func TestExpectationParents(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 16, MaxExpectations: 8})
	for i, p := range []uint32{1, 2, 1, 3, 1, 2} {
		if r := tb.Expect(expectation(client, uint16(6000+i), p, 100)); r != Inserted {
			t.Fatal(r)
		}
	}
	for p, want := range map[uint32]int{1: 3, 2: 2, 3: 1, 4: 0} {
		if got := tb.ExpectationCount(p, 1); got != want {
			t.Errorf("ExpectationCount(%d) = %d, want %d", p, got, want)
		}
	}
	// The parent's slot reused by another session (generation 3) has none
	// of them, and removing its expectations leaves the old parent's.
	if tb.ExpectationCount(1, 3) != 0 || tb.RemoveExpectations(1, 3) != 0 || tb.ExpectationCount(1, 1) != 3 {
		t.Fatal("expectations of parent 1 seen through another generation")
	}
	if n := tb.RemoveExpectations(1, 1); n != 3 {
		t.Fatalf("RemoveExpectations(1) = %d", n)
	}
	if tb.ExpectationCount(1, 1) != 0 || tb.ExpectationCount(2, 1) != 2 {
		t.Fatal("RemoveExpectations removed the wrong ones")
	}
	var ports []uint16
	tb.RangeExpectations(func(e Expectation) bool { ports = append(ports, e.DstPort); return true })
	if len(ports) != 3 {
		t.Fatalf("RangeExpectations saw %v", ports)
	}
	for _, p := range []uint16{6000, 6002, 6004} {
		if _, ok := tb.MatchExpectation(dataConn(client, 1, p), 0); ok {
			t.Fatalf("removed expectation for port %d matched", p)
		}
	}
}

func TestExpectFullAndSweep(t *testing.T) {
	tb := mustNew(t, Config{MaxSessions: 16, MaxExpectations: 3})
	for i := range 3 {
		if r := tb.Expect(expectation(client, uint16(7000+i), 1, Time(10*(i+1)))); r != Inserted {
			t.Fatal(r)
		}
	}
	if r := tb.Expect(expectation(client, 7100, 1, 100)); r != ErrNoExpectSpace {
		t.Fatalf("Expect into a full store = %v", r)
	}
	// Replacing an existing one needs no space.
	if r := tb.Expect(expectation(client, 7000, 2, 10)); r != Inserted {
		t.Fatalf("replace in a full store = %v", r)
	}
	// Expire (worker 0) drops expired expectations, budget at a time.
	tb.Expire(20, 1, 2, 8, nil)
	if n := tb.Stats().Expectations; n != 3 {
		t.Fatalf("worker 1 swept expectations: %d left", n)
	}
	tb.Expire(20, 0, 2, 1, nil)
	tb.Expire(20, 0, 2, 1, nil)
	tb.Expire(20, 0, 2, 1, nil)
	st := tb.Stats()
	if st.Expectations != 1 || st.ExpectExpired != 2 || st.ExpectFull != 1 || st.ExpectInserts != 4 {
		t.Fatalf("stats %+v", st)
	}
	if r := tb.Expect(expectation(client, 7100, 1, 100)); r != Inserted {
		t.Fatalf("Expect after sweep = %v", r)
	}
}

// TestExpectDifferential checks the expectation store against a map under
// random operations, in a store small enough that its open-addressing
// indexes collide and shift constantly.
func TestExpectDifferential(t *testing.T) {
	type key struct {
		src  uint32
		port uint16
	}
	tb := mustNew(t, Config{MaxSessions: 16, MaxExpectations: 24})
	o := map[key]Expectation{}
	rng := rand.New(rand.NewPCG(1, 2))
	srcs := []uint32{0, client, other}
	now := Time(0)
	for i := range 50000 {
		k := key{srcs[rng.IntN(3)], uint16(5000 + rng.IntN(20))}
		switch op := rng.IntN(10); {
		case op < 4:
			e := expectation(k.src, k.port, uint32(rng.IntN(6)), now+Time(rng.IntN(20)))
			e.ParentGen = uint32(1 + 2*rng.IntN(2))
			_, replace := o[k]
			want := Inserted
			if !replace && len(o) == 24 {
				want = ErrNoExpectSpace
			}
			if r := tb.Expect(e); r != want {
				t.Fatalf("op %d: Expect = %v, want %v", i, r, want)
			}
			if want == Inserted {
				o[k] = e
			}
		case op < 7:
			src := srcs[1+rng.IntN(2)]
			conn := dataConn(src, 1, k.port)
			var want Expectation
			found := false
			for _, s := range []uint32{src, 0} {
				e, ok := o[key{s, k.port}]
				if !ok {
					continue
				}
				delete(o, key{s, k.port})
				if !expiredAt(e.Expires, now) {
					want, found = e, true
					break
				}
			}
			got, ok := tb.MatchExpectation(conn, now)
			if ok != found || got != want {
				t.Fatalf("op %d: MatchExpectation = %+v %v, want %+v %v", i, got, ok, want, found)
			}
		case op < 8:
			p, g := uint32(rng.IntN(6)), uint32(1+2*rng.IntN(2))
			want := 0
			for k, e := range o {
				if e.Parent == p && e.ParentGen == g {
					delete(o, k)
					want++
				}
			}
			if got := tb.RemoveExpectations(p, g); got != want {
				t.Fatalf("op %d: RemoveExpectations(%d) = %d, want %d", i, p, got, want)
			}
		case op < 9:
			p, g := uint32(rng.IntN(6)), uint32(1+2*rng.IntN(2))
			want := 0
			for _, e := range o {
				if e.Parent == p && e.ParentGen == g {
					want++
				}
			}
			if got := tb.ExpectationCount(p, g); got != want {
				t.Fatalf("op %d: ExpectationCount(%d) = %d, want %d", i, p, got, want)
			}
		default:
			now++
		}
		if n := tb.Stats().Expectations; n != len(o) {
			t.Fatalf("op %d: %d expectations, oracle %d", i, n, len(o))
		}
	}
}
