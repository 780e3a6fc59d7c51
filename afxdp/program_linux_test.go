package afxdp

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frames for the filter tests, built by gopacket.

var (
	macA = net.HardwareAddr{2, 0, 0, 0, 0, 0xa}
	macB = net.HardwareAddr{2, 0, 0, 0, 0, 0xb}
)

func serialize(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipv4Frame is an Ethernet frame with an IPv4 packet of protocol proto
// (UDP or TCP), tagged with the given VLAN ether types (outermost first).
func ipv4Frame(tb testing.TB, src, dst string, proto layers.IPProtocol, tags ...layers.EthernetType) []byte {
	tb.Helper()
	ls := []gopacket.SerializableLayer{}
	et := layers.EthernetTypeIPv4
	if len(tags) > 0 {
		et = tags[0]
	}
	ls = append(ls, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: et})
	for i := range tags {
		next := layers.EthernetTypeIPv4
		if i+1 < len(tags) {
			next = tags[i+1]
		}
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: uint16(10 + i), Type: next})
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: proto,
		SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	ls = append(ls, ip)
	switch proto {
	case layers.IPProtocolTCP:
		tcp := &layers.TCP{SrcPort: 40000, DstPort: 9091, SYN: true, Window: 1000}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, tcp)
	default:
		udp := &layers.UDP{SrcPort: 40000, DstPort: 9000}
		udp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, udp)
	}
	return serialize(tb, append(ls, gopacket.Payload("fastnat"))...)
}

// withDstMAC returns frame with its destination MAC set to mac.
func withDstMAC(frame []byte, mac net.HardwareAddr) []byte {
	copy(frame, mac)
	return frame
}

func arpFrame(tb testing.TB, sender, target string) []byte {
	tb.Helper()
	return serialize(tb,
		&layers.Ethernet{SrcMAC: macA, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6,
			ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: macA,
			SourceProtAddress: net.ParseIP(sender).To4(), DstHwAddress: make([]byte, 6),
			DstProtAddress: net.ParseIP(target).To4()})
}

func ipv6Frame(tb testing.TB) []byte {
	tb.Helper()
	ip := &layers.IPv6{Version: 6, NextHeader: layers.IPProtocolUDP, HopLimit: 64,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
	udp := &layers.UDP{SrcPort: 1, DstPort: 2}
	udp.SetNetworkLayerForChecksum(ip)
	return serialize(tb, &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: layers.EthernetTypeIPv6},
		ip, udp, gopacket.Payload("x"))
}

// oracleVerdict is the filter written plainly, to check the program by.
func oracleVerdict(frame []byte, role Role, f Filter) uint32 {
	if len(frame) < ethLen+ipv4MinLen || frame[0]&1 != 0 {
		return xdpPass
	}
	et, off := binary.BigEndian.Uint16(frame[12:]), 0
	if et == 0x8100 || et == 0x88a8 {
		if len(frame) < ethLen+vlanLen+ipv4MinLen {
			return xdpPass
		}
		et, off = binary.BigEndian.Uint16(frame[16:]), vlanLen
	}
	if et != 0x0800 || frame[ethLen+off]>>4 != 4 {
		return xdpPass
	}
	src := netip.AddrFrom4([4]byte(frame[ipv4SrcOff+off:]))
	dst := netip.AddrFrom4([4]byte(frame[ipv4DstOff+off:]))
	in := func(a netip.Addr, set []netip.Addr) bool {
		for _, s := range set {
			if s == a {
				return true
			}
		}
		return false
	}
	switch role {
	case Outside:
		if in(dst, f.Public) {
			return xdpRedirect
		}
	case Inside:
		fromInside := false
		for _, p := range f.Inside {
			fromInside = fromInside || p.Contains(src)
		}
		if fromInside && (!in(dst, f.Local) || in(dst, f.Public)) {
			return xdpRedirect
		}
	}
	return xdpPass
}

var testFilter = Filter{
	Public: []netip.Addr{netip.MustParseAddr("198.18.0.204"), netip.MustParseAddr("198.18.0.205")},
	Inside: []netip.Prefix{netip.MustParsePrefix("10.77.0.0/24"), netip.MustParsePrefix("10.88.0.5/32")},
	Local: []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("198.18.0.254"),
		netip.MustParseAddr("198.18.0.204")},
}

// filterRig loads both programs on the loopback device of a fresh
// namespace, with one bound socket in both socket maps so that a redirect
// shows as XDP_REDIRECT (without one, the program falls back to XDP_PASS).
// Nothing is attached: the programs run through BPF_PROG_TEST_RUN.
type filterRig struct {
	outside, inside *Interface
	worker          *Worker
}

func newFilterRig(t testing.TB) *filterRig {
	t.Helper()
	requireXDP(t)
	ns := newNetNS(t)
	r := &filterRig{}
	ns.do(t, func() error {
		var err error
		if r.outside, err = Load(IfaceSpec{Name: "lo", Role: Outside, Mode: ModeGeneric}); err != nil {
			return err
		}
		if r.inside, err = Load(IfaceSpec{Name: "lo", Role: Inside, Mode: ModeGeneric}); err != nil {
			return err
		}
		if r.worker, err = Open([]*Interface{r.outside}, 0, Options{FramesPerQueue: 64, RingSize: 64}); err != nil {
			return err
		}
		return r.inside.register(0, r.worker.ports[0].xsk.fd)
	})
	t.Cleanup(func() {
		r.worker.Close()
		r.outside.Close()
		r.inside.Close()
	})
	for _, i := range []*Interface{r.outside, r.inside} {
		if err := i.SetFilter(testFilter); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *filterRig) verdict(t testing.TB, role Role, frame []byte) uint32 {
	t.Helper()
	i := r.outside
	if role == Inside {
		i = r.inside
	}
	// The kernel wants at least an Ethernet header.
	if len(frame) < ethLen {
		frame = append(frame, make([]byte, ethLen-len(frame))...)
	}
	ret, _, err := i.prog.Test(frame)
	if err != nil {
		t.Fatalf("run program: %v", err)
	}
	return ret
}

func TestProgramFilter(t *testing.T) {
	r := newFilterRig(t)
	udp, tcp := layers.IPProtocolUDP, layers.IPProtocolTCP
	q, ad := layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ
	short := ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp)[:ethLen+ipv4MinLen-1]
	v6ver := ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp)
	v6ver[ethLen] = 0x65
	tests := []struct {
		name  string
		role  Role
		frame []byte
		want  uint32
	}{
		{"outside: udp to public", Outside, ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp), xdpRedirect},
		{"outside: tcp to second public", Outside, ipv4Frame(t, "203.0.113.1", "198.18.0.205", tcp), xdpRedirect},
		{"outside: to the host's own address", Outside, ipv4Frame(t, "203.0.113.1", "198.18.0.254", udp), xdpPass},
		{"outside: from public", Outside, ipv4Frame(t, "198.18.0.204", "203.0.113.1", udp), xdpPass},
		{"outside: arp for public", Outside, arpFrame(t, "203.0.113.1", "198.18.0.204"), xdpPass},
		{"outside: ipv6", Outside, ipv6Frame(t), xdpPass},
		{"outside: 802.1Q to public", Outside, ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp, q), xdpRedirect},
		{"outside: 802.1ad to public", Outside, ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp, ad), xdpRedirect},
		{"outside: two tags (not parsed)", Outside, ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp, ad, q), xdpPass},
		{"outside: truncated ipv4 header", Outside, short, xdpPass},
		{"outside: ipv4 ether type, version 6", Outside, v6ver, xdpPass},
		{"outside: runt", Outside, make([]byte, ethLen), xdpPass},
		{"inside: from inside prefix to internet", Inside, ipv4Frame(t, "10.77.0.9", "203.0.113.1", tcp), xdpRedirect},
		{"inside: from nat server host", Inside, ipv4Frame(t, "10.88.0.5", "203.0.113.1", udp), xdpRedirect},
		{"inside: from a neighbour of the server", Inside, ipv4Frame(t, "10.88.0.6", "203.0.113.1", udp), xdpPass},
		{"inside: to the router's inside address", Inside, ipv4Frame(t, "10.77.0.9", "10.77.0.1", udp), xdpPass},
		{"inside: to the router's outside address", Inside, ipv4Frame(t, "10.77.0.9", "198.18.0.254", udp), xdpPass},
		{"inside: hairpin to a public address", Inside, ipv4Frame(t, "10.77.0.9", "198.18.0.204", tcp), xdpRedirect},
		{"inside: 802.1Q from inside", Inside, ipv4Frame(t, "10.77.0.9", "203.0.113.1", udp, q), xdpRedirect},
		{"inside: arp", Inside, arpFrame(t, "10.77.0.9", "10.77.0.1"), xdpPass},
		{"inside: ipv6", Inside, ipv6Frame(t), xdpPass},
		// Link-layer broadcasts and multicasts stay with the kernel, which
		// never forwards them: a NetBIOS broadcast to the inside prefix's
		// broadcast address, mDNS, 255.255.255.255.
		{"inside: broadcast to the prefix's broadcast address", Inside, withDstMAC(ipv4Frame(t, "10.77.0.9", "10.77.0.255", udp), layers.EthernetBroadcast), xdpPass},
		{"inside: broadcast to 255.255.255.255", Inside, withDstMAC(ipv4Frame(t, "10.77.0.9", "255.255.255.255", udp), layers.EthernetBroadcast), xdpPass},
		{"inside: mdns multicast", Inside, withDstMAC(ipv4Frame(t, "10.77.0.9", "224.0.0.251", udp), net.HardwareAddr{1, 0, 0x5e, 0, 0, 0xfb}), xdpPass},
		{"outside: broadcast to public", Outside, withDstMAC(ipv4Frame(t, "203.0.113.1", "198.18.0.204", udp), layers.EthernetBroadcast), xdpPass},
		{"inside: 802.1Q broadcast", Inside, withDstMAC(ipv4Frame(t, "10.77.0.9", "203.0.113.1", udp, q), layers.EthernetBroadcast), xdpPass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if o := oracleVerdict(tt.frame, tt.role, testFilter); o != tt.want {
				t.Fatalf("oracle says %d, table says %d", o, tt.want)
			}
			if got := r.verdict(t, tt.role, tt.frame); got != tt.want {
				t.Fatalf("program returned %d, want %d", got, tt.want)
			}
		})
	}
}

// TestProgramRandom compares the program with oracleVerdict on mutated
// frames.
func TestProgramRandom(t *testing.T) {
	r := newFilterRig(t)
	rng := rand.New(rand.NewPCG(5, 6))
	addrs := []string{"198.18.0.204", "198.18.0.205", "198.18.0.254", "10.77.0.1", "10.77.0.200",
		"10.88.0.5", "10.88.0.6", "203.0.113.1"}
	pick := func() string { return addrs[rng.IntN(len(addrs))] }
	redirected := 0
	for i := range 2000 {
		var f []byte
		switch rng.IntN(6) {
		case 0:
			f = arpFrame(t, pick(), pick())
		case 1:
			f = ipv6Frame(t)
		case 2:
			f = ipv4Frame(t, pick(), pick(), layers.IPProtocolUDP, layers.EthernetTypeDot1Q)
		default:
			f = ipv4Frame(t, pick(), pick(), layers.IPProtocolTCP)
		}
		for range rng.IntN(3) {
			f[rng.IntN(ethLen+vlanLen+ipv4MinLen)] = byte(rng.Uint32())
		}
		f = f[:ethLen+rng.IntN(len(f)-ethLen+1)]
		role := Role(1 + i%2)
		want := oracleVerdict(f, role, testFilter)
		if got := r.verdict(t, role, f); got != want {
			t.Fatalf("%v frame %x: program %d, oracle %d", role, f, got, want)
		}
		if want == xdpRedirect {
			redirected++
		}
	}
	if redirected < 100 {
		t.Fatalf("only %d of 2000 frames redirected: the test is not exercising the filter", redirected)
	}
}

// TestSetFilterUpdates checks that a reload replaces the sets.
func TestSetFilterUpdates(t *testing.T) {
	r := newFilterRig(t)
	toOld := ipv4Frame(t, "203.0.113.1", "198.18.0.204", layers.IPProtocolUDP)
	toNew := ipv4Frame(t, "203.0.113.1", "198.18.0.99", layers.IPProtocolUDP)
	if err := r.outside.SetFilter(Filter{Public: []netip.Addr{netip.MustParseAddr("198.18.0.99")}}); err != nil {
		t.Fatal(err)
	}
	if got := r.verdict(t, Outside, toOld); got != xdpPass {
		t.Fatalf("removed public address still redirected (%d)", got)
	}
	if got := r.verdict(t, Outside, toNew); got != xdpRedirect {
		t.Fatalf("added public address not redirected (%d)", got)
	}
	fromOld := ipv4Frame(t, "10.77.0.9", "203.0.113.1", layers.IPProtocolUDP)
	if err := r.inside.SetFilter(Filter{Inside: []netip.Prefix{netip.MustParsePrefix("10.99.0.0/16")}}); err != nil {
		t.Fatal(err)
	}
	if got := r.verdict(t, Inside, fromOld); got != xdpPass {
		t.Fatalf("removed inside prefix still redirected (%d)", got)
	}
	if err := r.inside.SetFilter(Filter{Inside: []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}}); err != nil {
		t.Fatal(err)
	}
	if got := r.verdict(t, Inside, fromOld); got != xdpRedirect {
		t.Fatalf("4in6 prefix 10.0.0.0/8 not applied (%d)", got)
	}
	if err := r.outside.SetFilter(Filter{Public: []netip.Addr{netip.MustParseAddr("2001:db8::1")}}); err == nil {
		t.Fatal("IPv6 public address accepted")
	}
	// More public addresses than the map holds: CheckFilter refuses the
	// filter as SetFilter does, and neither changes the running one.
	var many []netip.Addr
	for a, n := netip.MustParseAddr("198.19.0.1"), 0; n <= maxPublic; a, n = a.Next(), n+1 {
		many = append(many, a)
	}
	if err := r.outside.CheckFilter(Filter{Public: many}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("CheckFilter of %d public addresses: %v", len(many), err)
	}
	if err := r.outside.SetFilter(Filter{Public: many}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("SetFilter of %d public addresses: %v", len(many), err)
	}
	if err := r.outside.CheckFilter(Filter{Public: many[:maxPublic]}); err != nil {
		t.Fatalf("CheckFilter of %d public addresses: %v", maxPublic, err)
	}
	if got := r.verdict(t, Outside, toNew); got != xdpRedirect {
		t.Fatalf("a refused filter changed the running one (%d)", got)
	}
}
