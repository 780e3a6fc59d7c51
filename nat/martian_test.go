package nat

import (
	"net/netip"
	"testing"

	"github.com/fastnat/fastnat/internal/testutil"
)

// TestMartiansMakeNoSession: a new flow from or to an address no host has
// (0/8, 127/8, multicast, the limited broadcast), or arriving from outside
// with one of the NAT's own public addresses as its source, is dropped and
// counted as martian, as the kernel's routing drops it, and leaves nothing
// behind: inside hosts' mDNS, SSDP and broadcasts are not translated out,
// and a spoofed source cannot make a published server talk to the NAT
// itself or to loopback.
func TestMartiansMakeNoSession(t *testing.T) {
	g := newRig(t, testRules(t))
	for _, src := range []string{"0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.255.255.250", "255.255.255.255", pubEIM, pubAPDM} {
		for _, f := range [][]byte{
			udp(t, src+":5353", pubEIM+":5353"),
			syn(t, src+":40000", pubEIM+":9091"),
		} {
			if r := g.process(Outside, f); r.Verdict != DropMartian {
				t.Errorf("from outside, source %s: %v, want %v", src, r.Verdict, DropMartian)
			}
		}
	}
	for _, dst := range []string{"0.0.0.0", "127.0.0.1", "224.0.0.251", "239.255.255.250", "255.255.255.255"} {
		for _, f := range [][]byte{
			udp(t, hostA+":5353", dst+":5353"),
			syn(t, hostA+":40000", dst+":80"),
			echo(t, hostA, dst, 7, false),
			testutil.IPProto(t, hostA, dst, 2 /* IGMP */, make([]byte, 8)),
		} {
			if r := g.process(Inside, f); r.Verdict != DropMartian {
				t.Errorf("from inside to %s: %v, want %v", dst, r.Verdict, DropMartian)
			}
		}
	}
	for id := 0; id < g.table.Capacity(); id++ {
		if g.table.Live(uint32(id)) {
			t.Fatalf("session %d made by a martian", id)
		}
	}
	// Reserved 240/4 is not martian as a destination (the kernel routes it),
	// and ordinary flows pass as before.
	for _, f := range [][]byte{udp(t, hostA+":4000", "240.0.0.1:53"), udp(t, hostA+":4000", remote+":53")} {
		if r := g.process(Inside, f); r.Verdict != Forward {
			t.Errorf("%v, want forward", r.Verdict)
		}
	}
	if r := g.process(Outside, udp(t, remote+":4000", pubEIM+":5353")); r.Verdict != Forward {
		t.Errorf("to the server from %s: %v, want forward", remote, r.Verdict)
	}
}

// TestSynFinMakesNoSession: a SYN with FIN (a scan's probe, invalid by
// conntrack's tcp_valid_flags) starts no flow from either side; a SYN with
// PSH does, as through the kernel.
func TestSynFinMakesNoSession(t *testing.T) {
	g := newRig(t, testRules(t))
	for _, fl := range []int{testutil.SYN | testutil.FIN, testutil.SYN | testutil.FIN | testutil.PSH} {
		if r := g.process(Outside, testutil.TCP(t, remote+":40000", pubEIM+":9091", fl, 1000, 0, nil)); r.Verdict != DropTCPNoSYN {
			t.Errorf("flags %#x to the server: %v, want %v", fl, r.Verdict, DropTCPNoSYN)
		}
		if r := g.process(Inside, testutil.TCP(t, hostA+":40000", remote+":80", fl, 1000, 0, nil)); r.Verdict != DropTCPNoSYN {
			t.Errorf("flags %#x from inside: %v, want %v", fl, r.Verdict, DropTCPNoSYN)
		}
	}
	for id := 0; id < g.table.Capacity(); id++ {
		if g.table.Live(uint32(id)) {
			t.Fatalf("session %d made by a SYN with FIN", id)
		}
	}
	if r := g.process(Inside, testutil.TCP(t, hostA+":40000", remote+":80", testutil.SYN|testutil.PSH, 1000, 0, nil)); r.Verdict != Forward {
		t.Errorf("SYN with PSH: %v, want forward", r.Verdict)
	}
}

// TestOwnAddressesAndDirectedBroadcasts: with the router's interface
// addresses known (Rules.Local), a new flow whose source is one of them —
// or a public address, from either side — is a martian, as the kernel's
// ip_route_input finds a local source; one to the broadcast address of an
// interface's prefix (a directed broadcast) is refused as
// directed_broadcast, as the kernel does not forward it (bc_forwarding
// 0). Neither makes a session. A /31's addresses both stay hosts (RFC
// 3021), and ordinary flows pass.
func TestOwnAddressesAndDirectedBroadcasts(t *testing.T) {
	r := testRules(t)
	for _, p := range []string{"10.77.0.1/24", "198.18.0.254/24", pubEIM + "/32", pubAPDM + "/32", "127.0.0.1/8", "192.0.2.1/31"} {
		r.Local = append(r.Local, netip.MustParsePrefix(p))
	}
	g := newRig(t, r)
	flows := func(src, dst string) [][]byte {
		return [][]byte{
			udp(t, src+":5353", dst+":5353"),
			syn(t, src+":40000", dst+":80"),
			echo(t, src, dst, 7, false),
			testutil.IPProto(t, src, dst, 47 /* GRE */, make([]byte, 8)),
		}
	}
	for _, src := range []string{"10.77.0.1", "198.18.0.254", "192.0.2.1", pubEIM, pubAPDM} {
		for _, f := range flows(src, remote) {
			if r := g.process(Inside, f); r.Verdict != DropMartian {
				t.Errorf("from inside, source %s: %v, want %v", src, r.Verdict, DropMartian)
			}
		}
		if r := g.process(Outside, udp(t, src+":5353", pubEIM+":5353")); r.Verdict != DropMartian {
			t.Errorf("from outside to the server, source %s: %v, want %v", src, r.Verdict, DropMartian)
		}
	}
	for _, dst := range []string{"198.18.0.255", "10.77.0.255"} {
		for _, f := range flows(hostA, dst) {
			if r := g.process(Inside, f); r.Verdict != DropBroadcast {
				t.Errorf("from inside to %s: %v, want %v", dst, r.Verdict, DropBroadcast)
			}
		}
	}
	for id := 0; id < g.table.Capacity(); id++ {
		if g.table.Live(uint32(id)) {
			t.Fatalf("session %d made by a martian or a directed broadcast", id)
		}
	}
	for _, dst := range []string{remote, "192.0.2.0", "198.18.1.255", "10.77.0.254"} {
		if r := g.process(Inside, udp(t, hostA+":4000", dst+":53")); r.Verdict != Forward {
			t.Errorf("to %s: %v, want forward", dst, r.Verdict)
		}
	}
	if DropBroadcast.String() != "directed_broadcast" {
		t.Errorf("name %q", DropBroadcast.String())
	}
}
