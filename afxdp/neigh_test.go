package afxdp

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/fastnat/fastnat/pipeline"
)

func ip(s string) uint32 { return addr4(netip.MustParseAddr(s)) }

func testTable(gateway string, macs map[string][6]byte, onLink ...string) *neighTable {
	t := newNeighTable()
	s := &neighSnapshot{macs: map[uint32][6]byte{}}
	for _, p := range onLink {
		s.onLink = append(s.onLink, newPrefix4(netip.MustParsePrefix(p)))
	}
	if gateway != "" {
		s.gateway = ip(gateway)
	}
	for a, m := range macs {
		s.macs[ip(a)] = m
	}
	t.snap.Store(s)
	return t
}

func pending(t *neighTable) []uint32 {
	var got []uint32
	t.takeRequests(func(a uint32) { got = append(got, a) })
	return got
}

func TestNextHop(t *testing.T) {
	host := [6]byte{2, 0, 0, 0, 0, 1}
	gw := [6]byte{2, 0, 0, 0, 0, 0xfe}
	macs := map[string][6]byte{"10.77.0.5": host, "198.18.0.254": gw}
	tests := []struct {
		name      string
		gateway   string
		addr      string
		wantMAC   [6]byte
		wantOK    bool
		wantAsked string // address handed to the resolver, "" for none
	}{
		{"on-link, resolved", "198.18.0.254", "10.77.0.5", host, true, ""},
		{"on-link, unresolved", "198.18.0.254", "10.77.0.9", [6]byte{}, false, "10.77.0.9"},
		{"off-link via resolved gateway", "198.18.0.254", "203.0.113.7", gw, true, ""},
		{"off-link via unresolved gateway", "198.18.0.253", "203.0.113.7", [6]byte{}, false, "198.18.0.253"},
		{"off-link without gateway", "", "203.0.113.7", [6]byte{}, false, ""},
		{"second prefix", "", "198.18.0.254", gw, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := testTable(tt.gateway, macs, "10.77.0.0/24", "198.18.0.0/24")
			mac, ok := resolved(tab.nextHop(ip(tt.addr)))
			if mac != tt.wantMAC || ok != tt.wantOK {
				t.Fatalf("nextHop(%s) = %v, %v; want %v, %v", tt.addr, mac, ok, tt.wantMAC, tt.wantOK)
			}
			got := pending(tab)
			switch {
			case tt.wantAsked == "" && len(got) != 0:
				t.Fatalf("resolver asked for %v, want nothing", got)
			case tt.wantAsked != "" && (len(got) != 1 || got[0] != ip(tt.wantAsked)):
				t.Fatalf("resolver asked for %v, want %s", got, tt.wantAsked)
			}
		})
	}
}

func TestNeighRequests(t *testing.T) {
	tab := testTable("", nil, "10.0.0.0/8")
	for range 3 {
		tab.nextHop(ip("10.0.0.1"))
	}
	for i := range 10 {
		tab.nextHop(ip("10.0.1.0") + uint32(i))
	}
	got := pending(tab)
	seen := map[uint32]bool{}
	for _, a := range got {
		if seen[a] {
			t.Fatalf("address %v requested twice", netipAddr(a))
		}
		seen[a] = true
	}
	// Slots may collide, so some requests can be replaced, but the last
	// one always survives and nothing stays pending after a sweep.
	if !seen[ip("10.0.1.9")] {
		t.Fatalf("last request lost: %v", got)
	}
	if again := pending(tab); len(again) != 0 {
		t.Fatalf("requests left after sweep: %v", again)
	}
}

func TestPrefix4(t *testing.T) {
	tests := []struct {
		prefix, addr string
		want         bool
	}{
		{"10.77.0.0/24", "10.77.0.255", true},
		{"10.77.0.0/24", "10.77.1.0", false},
		{"10.77.0.9/24", "10.77.0.1", true}, // host bits are masked
		{"0.0.0.0/0", "203.0.113.1", true},
		{"198.18.0.204/32", "198.18.0.204", true},
		{"198.18.0.204/32", "198.18.0.205", false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix+" "+tt.addr, func(t *testing.T) {
			if got := newPrefix4(netip.MustParsePrefix(tt.prefix)).contains(ip(tt.addr)); got != tt.want {
				t.Fatalf("contains = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNextHopAllocs(t *testing.T) {
	tab := testTable("198.18.0.254", map[string][6]byte{"198.18.0.254": {1}}, "198.18.0.0/24")
	hit, miss := ip("203.0.113.1"), ip("198.18.0.7")
	if n := testing.AllocsPerRun(1000, func() { tab.nextHop(hit) }); n != 0 {
		t.Fatalf("hit allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() { tab.nextHop(miss) }); n != 0 {
		t.Fatalf("miss allocates %v times", n)
	}
}

// TestNextHopConcurrent swaps snapshots while workers look up; run with
// -race.
func TestNextHopConcurrent(t *testing.T) {
	tab := testTable("", nil, "10.0.0.0/8")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint32(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if mac, ok := resolved(tab.nextHop(ip("10.0.0.0") + i%16)); ok && mac[5] != byte(i%16) {
					t.Errorf("wrong MAC %v for host %d", mac, i%16)
					return
				}
			}
		}()
	}
	for i := range 2000 {
		s := &neighSnapshot{onLink: []prefix4{newPrefix4(netip.MustParsePrefix("10.0.0.0/8"))}, macs: map[uint32][6]byte{}}
		for h := range i % 16 {
			s.macs[ip("10.0.0.0")+uint32(h)] = [6]byte{5: byte(h)}
		}
		tab.snap.Store(s)
		pending(tab)
	}
	close(stop)
	wg.Wait()
}

// resolved unpacks a next hop the way the tests check it.
func resolved(h pipeline.Hop) ([6]byte, bool) { return h.MAC, h.State == pipeline.HopResolved }

// TestBroadcast: the directed broadcast address of each connected prefix,
// and nothing else — not the prefix's hosts, not a /31's or /32's
// addresses (RFC 3021), not the broadcast of a prefix not connected.
func TestBroadcast(t *testing.T) {
	tb := testTable("", nil, "10.77.0.1/24", "198.18.0.254/15", "192.0.2.0/31", "192.0.2.9/32")
	for a, want := range map[string]bool{
		"10.77.0.255": true, "198.19.255.255": true,
		"10.77.0.254": false, "10.77.0.0": false, "198.18.255.255": false, "10.77.1.255": false,
		"192.0.2.1": false, "192.0.2.9": false, "255.255.255.255": false,
	} {
		if got := tb.broadcast(ip(a)); got != want {
			t.Errorf("broadcast(%s) = %v, want %v", a, got, want)
		}
	}
}
