package e2e

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// IP options on forwarded packets, through fastnat and the kernel's NAT
// side by side: the inside host sends datagrams to the outside peer with
// a Timestamp option — timestamps only, with addresses, prespecified —
// and with malformed options. The router fills in a Timestamp option
// with room as the kernel does (the time in milliseconds since midnight
// UT, after the address of the interface the packet leaves by when asked
// for it; a prespecified entry only when it names the router) and counts
// itself in a full one's overflow; it drops a packet whose options are
// malformed and answers it with a parameter problem pointing at the
// faulty byte, from its inside address. ping -T shows the same.

func TestFastnatIPOptions(t *testing.T) {
	requireFastnat(t)
	requireRouterTools(t)
	topo := ipOptions(t, fastnatRouter)
	drops, events := fastnatStats(t, fastnatSocket(t, topo))
	if want := uint64(len(badOptions) + 2); drops["bad_ip_options"] != want || events["icmp_param_problem"] != want {
		t.Errorf("bad_ip_options %d, icmp_param_problem %d; want %d each", drops["bad_ip_options"], events["icmp_param_problem"], want)
	}
	if drops["source_routed"] != 1 {
		t.Errorf("source_routed %d, want 1", drops["source_routed"])
	}
}

// TestKernelIPOptions is the proof that ipOptions expects what a Linux
// router does.
func TestKernelIPOptions(t *testing.T) {
	requireHarness(t)
	requireRouterTools(t)
	ipOptions(t, kernelRouter)
}

// A goodOption is a well-formed option the router fills in: want is the
// option as the peer must receive it, with every timestamp the router
// writes as zero (checked apart: it must be the time).
type goodOption struct {
	name      string
	opt, want []byte
	stamped   []int // offsets in the option of the timestamps the router writes
}

var (
	routerOut4 = testnet.RouterOutsideAddr.As4()
	routerIn4  = testnet.RouterInsideAddr.As4()
	client4    = testnet.ClientAddr.As4()
)

var goodOptions = []goodOption{
	{"timestamps only", []byte{packet.OptTimestamp, 12, 5, packet.TSOnly, 0, 0, 0, 0, 0, 0, 0, 0},
		[]byte{packet.OptTimestamp, 12, 9, packet.TSOnly, 0, 0, 0, 0, 0, 0, 0, 0}, []int{4}},
	{"timestamps and addresses", []byte{packet.OptTimestamp, 20, 5, packet.TSAndAddr, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		append(append([]byte{packet.OptTimestamp, 20, 13, packet.TSAndAddr}, routerIn4[:]...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), []int{8}},
	{"prespecified, the router first", append(append(append([]byte{packet.OptTimestamp, 20, 5, packet.TSPrespec}, routerOut4[:]...), 0, 0, 0, 0), append(client4[:], 0, 0, 0, 0)...),
		append(append(append([]byte{packet.OptTimestamp, 20, 13, packet.TSPrespec}, routerOut4[:]...), 0, 0, 0, 0), append(client4[:], 0, 0, 0, 0)...), []int{8}},
	{"prespecified, the peer first", append(append(append([]byte{packet.OptTimestamp, 20, 5, packet.TSPrespec}, client4[:]...), 0, 0, 0, 0), append(routerOut4[:], 0, 0, 0, 0)...),
		append(append(append([]byte{packet.OptTimestamp, 20, 5, packet.TSPrespec}, client4[:]...), 0, 0, 0, 0), append(routerOut4[:], 0, 0, 0, 0)...), nil},
	{"full: overflow counted", []byte{packet.OptTimestamp, 8, 9, 0x20 | packet.TSOnly, 1, 2, 3, 4},
		[]byte{packet.OptTimestamp, 8, 9, 0x30 | packet.TSOnly, 1, 2, 3, 4}, nil},
	{"an undefined flag: untouched", []byte{packet.OptTimestamp, 8, 5, 2, 0, 0, 0, 0},
		[]byte{packet.OptTimestamp, 8, 5, 2, 0, 0, 0, 0}, nil},
}

// A badOption is a malformed option list, and the offset from the start
// of the IP header of the byte the parameter problem points to.
type badOption struct {
	name    string
	opt     []byte
	pointer uint8
}

var badOptions = []badOption{
	{"timestamp pointer under 5", []byte{packet.OptTimestamp, 8, 4, 0, 0, 0, 0, 0}, 22},
	{"timestamp shorter than 4", []byte{packet.OptTimestamp, 3, 5, packet.OptEnd}, 21},
	{"timestamp entry past the end", []byte{packet.OptTimestamp, 10, 5, packet.TSAndAddr, 0, 0, 0, 0, 0, 0, packet.OptEnd, packet.OptEnd}, 22},
	{"full with overflow 15", []byte{packet.OptTimestamp, 8, 9, 0xf0, 0, 0, 0, 0}, 23},
	{"two timestamps", []byte{packet.OptTimestamp, 8, 5, 0, 0, 0, 0, 0, packet.OptTimestamp, 8, 5, 0, 0, 0, 0, 0}, 28},
	{"length past the options", []byte{packet.OptNOP, packet.OptTimestamp, 12, 5, 0, 0, 0, 0}, 21},
	{"record route pointer 3", []byte{packet.OptRecordRoute, 7, 3, 0, 0, 0, 0, packet.OptEnd}, 22},
	{"length 1", []byte{packet.OptNOP, 0x44, 1, packet.OptEnd}, 21},
}

// sourceRoute is a well-formed loose source route through the peer,
// which the router drops silently (accept_source_route is off).
var sourceRoute = []byte{packet.OptLSRR, 7, 4, 198, 18, 0, 2, packet.OptEnd}

func ipOptions(t *testing.T, r router) *testnet.Topology {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	r.setup(t, topo, false, nil)
	// ping -T tsandaddr: the host stamps its packet, the router (as its
	// inside address: timestamps record the interface a packet arrives
	// by), the peer on receipt and on sending its reply; the option is
	// then full, and the router and the host count themselves in its
	// overflow on the way back.
	out := run(t, ctx, false, topo.Host, "ping", "-n", "-c", "1", "-W", "2", "-T", "tsandaddr", testnet.ClientAddr.String())
	stamps, want := recorded(out), []string{"10.77.0.5", "10.77.0.1", "198.18.0.1", "198.18.0.1"}
	if strings.Join(stamps, " ") != strings.Join(want, " ") || !strings.Contains(out, "Unrecorded hops: 2") {
		t.Errorf("%s: ping -T tsandaddr stamped by %v, want %v and 2 unrecorded hops:\n%s", r.name, stamps, want, out)
	}
	// ping -R and -T to the public address, from either side: the
	// answering address records itself twice, on receipt and on
	// answering, and the reply carries no NOP.
	for _, from := range []struct {
		ns, src string
	}{{topo.Client, testnet.ClientAddr.String()}, {topo.Host, testnet.HostAddr.String()}} {
		public := testnet.PublicAddr.String()
		want := []string{from.src, public, public, from.src}
		for _, opt := range []string{"-R", "-Ttsandaddr"} {
			out := run(t, ctx, false, from.ns, "ping", "-n", "-c", "1", "-W", "2", opt, public)
			if got := recorded(out); strings.Join(got, " ") != strings.Join(want, " ") || strings.Contains(out, "NOP") {
				t.Errorf("%s: ping %s %s from %s recorded %v, want %v, no NOP:\n%s", r.name, opt, public, from.src, got, want, out)
			}
		}
	}
	routerIn, hostMAC := insideMACs(t, topo)
	caps := startCaptures(t, topo.Client, topo.Host)
	var frames [][]byte
	for i, g := range goodOptions {
		frames = append(frames, testutil.WithIPOptions(t, forgedUDP(t, routerIn, hostMAC, testnet.HostAddr.String(), uint16(6000+i), testnet.ClientAddr.String(), 7000), g.opt))
	}
	frames = append(frames, testutil.WithIPOptions(t, forgedUDP(t, routerIn, hostMAC, testnet.HostAddr.String(), 6200, testnet.ClientAddr.String(), 7000), sourceRoute))
	for i, b := range badOptions {
		// Each from an address of its own: the routers' ICMP rate limits
		// are per destination (a burst of 6).
		src := netip.AddrFrom4([4]byte{10, 77, 0, byte(50 + i)})
		testnet.MustRun(t, topo.Host, "ip", "addr", "add", netip.PrefixFrom(src, 24).String(), "dev", testnet.NodeLink)
		frames = append(frames, testutil.WithIPOptions(t, forgedUDP(t, routerIn, hostMAC, src.String(), uint16(6100+i), testnet.ClientAddr.String(), 7000), b.opt))
	}
	if n, err := testnet.SendFrames(topo.Host, testnet.NodeLink, frames); err != nil || n != len(frames) {
		t.Fatalf("sent %d of %d frames: %v", n, len(frames), err)
	}
	// From the peer, to the public address: a closed UDP port and the
	// published server's TCP port (as UDP, so that no handshake is
	// needed: the kernel answers both from the public address).
	routerOut, err := testnet.LinkMAC(topo.Router, testnet.RouterOutsideLink)
	if err != nil {
		t.Fatal(err)
	}
	clientMAC, err := testnet.LinkMAC(topo.Client, testnet.NodeLink)
	if err != nil {
		t.Fatal(err)
	}
	toPublic := [][]byte{
		testutil.WithIPOptions(t, forgedUDP(t, routerOut, clientMAC, testnet.ClientAddr.String(), 6300, testnet.PublicAddr.String(), 4444), badOptions[0].opt),
		testutil.WithIPOptions(t, forgedUDP(t, routerOut, clientMAC, testnet.ClientAddr.String(), 6301, testnet.PublicAddr.String(), testnet.FTPPublicPort), badOptions[0].opt),
	}
	if n, err := testnet.SendFrames(topo.Client, testnet.NodeLink, toPublic); err != nil || n != len(toPublic) {
		t.Fatalf("sent %d of %d frames: %v", n, len(toPublic), err)
	}
	time.Sleep(500 * time.Millisecond)
	now := msSinceMidnight(time.Now())
	got := map[uint16][]byte{}        // by the sender's source port: the options the peer received
	problems := map[uint16]uint8{}    // by the quoted source port: the pointer of the parameter problem the host received
	problemSrc := map[uint16]string{} // by the quoted source port: the problem's source
	for i, c := range caps {
		_ = c.Close()
		for _, f := range c.Frames() {
			if f.Outgoing {
				continue
			}
			pk := gopacket.NewPacket(f.Data, layers.LayerTypeEthernet, gopacket.Default)
			ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
			if ip == nil {
				continue
			}
			switch {
			case ip.Protocol == layers.IPProtocolICMPv4:
				ic, _ := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if ic == nil || ic.TypeCode.Type() != layers.ICMPv4TypeParameterProblem {
					continue
				}
				q := ic.Payload // the quoted header, then (at least) 8 bytes of UDP
				if ihl := int(q[0]&0xf) * 4; len(q) >= ihl+2 {
					sport := binary.BigEndian.Uint16(q[ihl:])
					problems[sport] = byte(binary.BigEndian.Uint32(ic.Contents[4:]) >> 24)
					problemSrc[sport] = ip.SrcIP.String()
				}
			case i == 0 && bytes.Contains(f.Data, martianMark):
				udp, _ := pk.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if udp == nil {
					continue
				}
				got[uint16(udp.SrcPort)] = ip.Contents[20:]
			}
		}
	}
	for i, g := range goodOptions {
		o, ok := got[uint16(6000+i)]
		if !ok {
			t.Errorf("%s: %s: the datagram did not reach the peer", r.name, g.name)
			continue
		}
		o = append([]byte(nil), o[:min(len(o), len(g.want))]...)
		for _, at := range g.stamped {
			ts := binary.BigEndian.Uint32(o[at:])
			if d := int64(now) - int64(ts); d < 0 || d > 10000 {
				t.Errorf("%s: %s: timestamp %d, the time is %d", r.name, g.name, ts, now)
			}
			copy(o[at:], []byte{0, 0, 0, 0})
		}
		if !bytes.Equal(o, g.want) {
			t.Errorf("%s: %s: the peer received the option % x, want % x", r.name, g.name, o, g.want)
		}
	}
	if _, ok := got[6200]; ok {
		t.Errorf("%s: a source-routed datagram was forwarded", r.name)
	}
	if _, ok := problems[6200]; ok {
		t.Errorf("%s: a source-routed datagram was answered", r.name)
	}
	for i, b := range badOptions {
		if _, ok := got[uint16(6100+i)]; ok {
			t.Errorf("%s: %s: forwarded", r.name, b.name)
		}
		if p, ok := problems[uint16(6100+i)]; !ok || p != b.pointer || problemSrc[uint16(6100+i)] != testnet.RouterInsideAddr.String() {
			t.Errorf("%s: %s: parameter problem %v pointing at %d from %s, want %d from the inside address", r.name, b.name, ok, p, problemSrc[uint16(6100+i)], b.pointer)
		}
	}
	for _, sport := range []uint16{6300, 6301} {
		if p, ok := problems[sport]; !ok || p != badOptions[0].pointer || problemSrc[sport] != testnet.PublicAddr.String() {
			t.Errorf("%s: to the public address from port %d: parameter problem %v pointing at %d from %s, want %d from the public address",
				r.name, sport, ok, p, problemSrc[sport], badOptions[0].pointer)
		}
	}
	return topo
}

// recorded is the addresses ping -R or -T tsandaddr printed, in order.
func recorded(out string) []string {
	var a []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimPrefix(strings.TrimPrefix(l, "TS:"), "RR:")
		if f := strings.Fields(l); len(f) >= 1 && strings.Count(f[0], ".") == 3 {
			a = append(a, f[0])
		}
	}
	return a
}

// msSinceMidnight is t as an RFC 791 timestamp.
func msSinceMidnight(t time.Time) uint32 {
	return uint32(t.Unix()%86400)*1000 + uint32(t.Nanosecond()/1e6)
}
