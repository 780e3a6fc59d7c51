package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/alg"
	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// Tests of the worker as a router: the ICMP errors it originates, MTU,
// fragmentation, MSS clamping, neighbour queues, early fragments, bad
// checksums. gopacket decodes and checks everything the worker writes.

// setIP returns a copy of frame with the IPv4 header changed by fn and its
// checksum fixed.
func setIP(frame []byte, fn func(h []byte)) []byte {
	f := append([]byte(nil), frame...)
	h := f[14 : 14+int(f[14]&0xf)*4]
	fn(h)
	h[10], h[11] = 0, 0
	c := ipSum(h)
	h[10], h[11] = byte(c>>8), byte(c)
	return f
}

func withTTL(frame []byte, ttl uint8) []byte {
	return setIP(frame, func(h []byte) { h[8] = ttl })
}

func withoutDF(frame []byte) []byte {
	return setIP(frame, func(h []byte) { h[6] &^= 0x40 })
}

// icmpErr decodes an ICMP error the worker sent and checks what every
// error must be: from the port's own address to the sender, out of the
// port the packet came in on, back to the MAC it came from, quoting the
// packet exactly as the sender wrote it (its first bytes, up to 576 in
// all), with correct checksums (Decode verifies them).
func icmpErr(t *testing.T, got []byte, from string, sent []byte, typ, code uint8) *Decoded {
	t.Helper()
	d := Decode(t, got)
	if d.ICMP == nil {
		t.Fatalf("not ICMP: %v", d.IP.Protocol)
	}
	if d.ICMP.TypeCode.Type() != typ || d.ICMP.TypeCode.Code() != code {
		t.Fatalf("ICMP %v, want type %d code %d", d.ICMP.TypeCode, typ, code)
	}
	orig := sent[14 : 14+int(binary.BigEndian.Uint16(sent[16:]))] // without Ethernet padding
	if d.Src() != from || d.Dst() != netip.AddrFrom4([4]byte(orig[12:16])).String() {
		t.Fatalf("error %s -> %s, want %s -> the sender %v", d.Src(), d.Dst(), from, netip.AddrFrom4([4]byte(orig[12:16])))
	}
	if d.Eth.DstMAC.String() != MACA.String() {
		t.Errorf("error to MAC %v, want the one the packet came from (%v)", d.Eth.DstMAC, MACA)
	}
	if int(d.IP.Length) > packet.ICMPErrorMaxLen || d.IP.TTL != 64 || d.IP.Flags&layers.IPv4DontFragment != 0 {
		t.Errorf("error header: length %d TTL %d flags %v", d.IP.Length, d.IP.TTL, d.IP.Flags)
	}
	quote := d.ICMP.Payload
	want := min(len(orig), packet.ICMPErrorMaxLen-28)
	if len(quote) != want || !bytes.Equal(quote, orig[:want]) {
		t.Fatalf("quote of %d bytes is not the first %d bytes of the packet as sent", len(quote), want)
	}
	return d
}

// suppressed sends a frame that must be dropped without an ICMP error
// about it, counted as icmp_suppressed.
func (r *rig) suppressed(t *testing.T, from *MemPort, frame []byte) {
	t.Helper()
	before := r.w.Counters().Event[EventICMPSuppressed].Load()
	r.none(from, frame)
	if r.w.Counters().Event[EventICMPSuppressed].Load() != before+1 {
		t.Fatalf("not counted as suppressed; %s", r.drops())
	}
}

func routerRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	if o.rules.Outbound == nil {
		o.rules = caseRules(t, true, 1024, 65535)
	}
	o.addrs = true
	return newRig(t, o)
}

func TestTimeExceeded(t *testing.T) {
	r := routerRig(t, rigOpts{})
	cases := []struct {
		name  string
		port  *MemPort
		frame []byte
		from  string
	}{
		{"udp from inside", r.in, withTTL(UDP(t, inClient+":5000", remote1+":7777", []byte("probe")), 1), routerIn},
		{"tcp syn from inside", r.in, withTTL(TCP(t, inClient+":40000", remote1+":80", SYN, 1, 0, nil), 1), routerIn},
		{"echo from inside", r.in, withTTL(ICMPEcho(t, inClient, remote1, 99, 1, false), 1), routerIn},
		{"ttl 0", r.in, withTTL(UDP(t, inClient+":5001", remote1+":7777", nil), 0), routerIn},
		{"to a nat server", r.out, withTTL(UDP(t, remote1+":999", public+":5353", []byte("q")), 1), routerOut},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			toIn, toOut := r.send(c.port, c.frame)
			got := append(toIn, toOut...)
			if len(got) != 1 || (c.port == r.in) != (len(toIn) == 1) {
				t.Fatalf("%d frames in, %d out, want one error back out of the port it came in on; %s", len(toIn), len(toOut), r.drops())
			}
			icmpErr(t, got[0], c.from, c.frame, packet.ICMPTimeExceeded, 0)
		})
	}
	if n := r.table.Stats().Sessions; n != 0 {
		t.Errorf("%d sessions created for packets whose TTL ran out", n)
	}
	if n := r.w.Counters().Event[EventICMPTimeExceeded].Load(); n != uint64(len(cases)) {
		t.Errorf("icmp_time_exceeded = %d, want %d", n, len(cases))
	}
	// A packet to the NAT's own address is not forwarded, so its TTL
	// does not run out: UDP to a closed port there is answered port
	// unreachable, as the kernel's NAT answers from its own stack.
	closed := withTTL(UDP(t, remote1+":999", public+":4444", nil), 1)
	if _, toOut := r.send(r.out, closed); len(toOut) != 1 {
		t.Fatalf("%d frames for UDP to a closed public port, want port unreachable; %s", len(toOut), r.drops())
	} else {
		icmpErr(t, toOut[0], public, closed, packet.ICMPDestUnreachable, packet.ICMPCodePortUnreachable)
	}
	// From inside as well: the public address is the NAT's own.
	closed = withTTL(UDP(t, inClient+":999", public+":4444", nil), 1)
	if toIn, _ := r.send(r.in, closed); len(toIn) != 1 {
		t.Fatalf("%d frames for UDP from inside to a closed public port, want port unreachable; %s", len(toIn), r.drops())
	} else {
		icmpErr(t, toIn[0], public, closed, packet.ICMPDestUnreachable, packet.ICMPCodePortUnreachable)
	}
	// On an established session the TTL is checked before translating.
	r.one(r.in, r.out, UDP(t, inClient+":6000", remote1+":7777", nil))
	f := withTTL(UDP(t, inClient+":6000", remote1+":7777", []byte("late")), 1)
	toIn, _ := r.send(r.in, f)
	if len(toIn) != 1 {
		t.Fatalf("no time exceeded on an established session; %s", r.drops())
	}
	icmpErr(t, toIn[0], routerIn, f, packet.ICMPTimeExceeded, 0)
}

func TestICMPNeverAnswers(t *testing.T) {
	r := routerRig(t, rigOpts{})
	udp := UDP(t, inClient+":5000", remote1+":7777", []byte("x"))
	out := r.one(r.in, r.out, udp)
	bcastMAC := append([]byte(nil), udp...)
	copy(bcastMAC[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	frags := Fragment(t, withoutDF(UDP(t, inClient+":5002", remote1+":7777", make([]byte, 1200))), 512)
	cases := []struct {
		name  string
		port  *MemPort
		frame []byte
	}{
		{"an icmp error", r.out, withTTL(ICMPError(t, router, public, 3, 3, out.Raw, 8), 1)},
		{"a non-first fragment", r.in, withTTL(frags[1], 1)}, // its first has passed (below)
		{"a link-layer broadcast", r.in, withTTL(bcastMAC, 1)},
	}
	// Martians are dropped before their TTL is looked at, as the kernel's
	// routing drops them before forwarding: no error either.
	martians := []struct {
		name  string
		frame []byte
	}{
		{"a multicast source", withTTL(UDP(t, "224.0.0.5:5000", remote1+":7777", nil), 1)},
		{"a loopback source", withTTL(UDP(t, "127.0.0.1:5000", remote1+":7777", nil), 1)},
		{"a broadcast destination", withTTL(UDP(t, inClient+":5003", "255.255.255.255:7777", nil), 1)},
		{"a multicast destination", withTTL(UDP(t, inClient+":5004", "239.1.1.1:7777", nil), 1)},
	}
	r.one(r.in, r.out, frags[0])
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { r.suppressed(t, c.port, c.frame) })
	}
	for _, c := range martians {
		t.Run(c.name, func(t *testing.T) {
			before := r.verdicts(nat.DropMartian)
			r.none(r.in, c.frame)
			if r.verdicts(nat.DropMartian) != before+1 {
				t.Fatalf("not dropped as martian; %s", r.drops())
			}
		})
	}
	// A port without an address sends nothing either.
	r.in.SetAddr(0)
	r.none(r.in, withTTL(udp, 1))
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
}

// TestICMPNeverAboutDirectedBroadcasts: RFC 1812 §4.3.2.7 — no error
// about a packet whose source is the directed broadcast address of a
// connected prefix of any port (it names no one host), nor about one sent
// to such an address; a /31 has no broadcast address (RFC 3021), so there
// the same packets are answered.
func TestICMPNeverAboutDirectedBroadcasts(t *testing.T) {
	r := routerRig(t, rigOpts{})
	r.in.SetPrefix(Addr(t, routerIn), 24)
	r.out.SetPrefix(Addr(t, routerOut), 24)
	r.out.SetMTU(1000)
	r.out.SetNeighbor(Addr(t, "198.18.0.255"), [6]byte{2, 0, 0, 0, 9, 9})
	cases := []struct {
		name  string
		port  *MemPort
		frame []byte
	}{
		{"from the inside prefix's broadcast", r.in, withTTL(UDP(t, "10.77.0.255:5000", remote1+":7777", nil), 1)},
		{"from the outside prefix's broadcast", r.in, withTTL(UDP(t, "198.18.0.255:5000", remote1+":7777", nil), 1)},
		{"to the outside prefix's broadcast, ttl", r.in, withTTL(UDP(t, inClient+":5001", "198.18.0.255:7777", nil), 1)},
		{"to the outside prefix's broadcast, too big", r.in, UDP(t, inClient+":5002", "198.18.0.255:7777", make([]byte, 1200))},
		{"to a nat server from a broadcast", r.out, withTTL(UDP(t, "198.18.0.255:999", public+":5353", nil), 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { r.suppressed(t, c.port, c.frame) })
	}
	// The prefixes' other addresses are hosts: answered.
	f := withTTL(UDP(t, "10.77.0.254:5000", remote1+":7777", nil), 1)
	r.in.SetNeighbor(Addr(t, "10.77.0.254"), [6]byte{2, 0, 0, 0, 9, 9})
	if toIn, _ := r.send(r.in, f); len(toIn) != 1 {
		t.Fatalf("no error for a host of the prefix; %s", r.drops())
	}
	// On /31 links there is no broadcast address.
	r.in.SetPrefix(Addr(t, routerIn), 31)
	r.out.SetPrefix(Addr(t, routerOut), 31)
	for _, c := range cases[:4] {
		if toIn, _ := r.send(c.port, c.frame); len(toIn) != 1 {
			t.Fatalf("%s on a /31: no error; %s", c.name, r.drops())
		}
	}
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
}

func TestICMPRateLimit(t *testing.T) {
	r := routerRig(t, rigOpts{})
	now := int64(time.Hour)
	r.w.nanos = func() int64 { return now }
	probe := func(src string, n int) int {
		t.Helper()
		var fs [][]byte
		for i := range n {
			fs = append(fs, withTTL(UDP(t, fmt.Sprintf("%s:%d", src, 1000+i), remote1+":7777", nil), 1))
		}
		toIn, _ := r.send(r.in, fs...)
		return len(toIn)
	}
	// One destination: a burst of 6, then one a second.
	if got := probe(inClient, 10); got != DefaultICMPBurst {
		t.Fatalf("%d errors of 10, want the burst of %d", got, DefaultICMPBurst)
	}
	now += int64(time.Second)
	if got := probe(inClient, 5); got != 1 {
		t.Fatalf("%d errors a second later, want 1", got)
	}
	// Another destination has its own burst.
	if got := probe("10.77.0.6", 10); got != DefaultICMPBurst {
		t.Fatalf("another host got %d errors, want %d", got, DefaultICMPBurst)
	}
	if n := r.w.Counters().Event[EventICMPRateLimited].Load(); n != 4+4+4 {
		t.Errorf("icmp_rate_limited = %d, want 12", n)
	}
	// The worker as a whole: at most its burst of 50 at once, over many
	// destinations.
	now += int64(time.Hour)
	sent := 0
	for h := 10; h < 70; h++ {
		sent += probe(fmt.Sprintf("10.77.0.%d", h), 1)
	}
	if sent != ICMPWorkerBurst {
		t.Fatalf("%d errors to 60 hosts at once, want the worker's burst of %d", sent, ICMPWorkerBurst)
	}
	// Fragmentation needed is never limited.
	now += int64(time.Hour)
	r.out.SetMTU(1000)
	n := 0
	for i := range 20 {
		toIn, _ := r.send(r.in, UDP(t, fmt.Sprintf("%s:%d", inClient, 2000+i), remote1+":7777", make([]byte, 1200)))
		n += len(toIn)
	}
	if n != 20 {
		t.Fatalf("%d of 20 fragmentation-needed errors sent", n)
	}
	// Rate limiting off.
	r.w.cfg.Router = NewPolicy(RouterConfig{})
	now += int64(time.Hour)
	if got := probe("10.77.0.7", 30); got != 30 {
		t.Fatalf("without a rate limit %d of 30 errors", got)
	}
}

func TestFragmentationNeeded(t *testing.T) {
	r := routerRig(t, rigOpts{})
	r.out.SetMTU(1400)
	// Outbound: the sender gets its own packet back, untranslated.
	big := UDP(t, inClient+":5000", remote1+":7777", make([]byte, 1472))
	toIn, toOut := r.send(r.in, big)
	if len(toIn) != 1 || len(toOut) != 0 {
		t.Fatalf("%d in, %d out; %s", len(toIn), len(toOut), r.drops())
	}
	d := icmpErr(t, toIn[0], routerIn, big, packet.ICMPDestUnreachable, packet.ICMPCodeFragNeeded)
	if mtu := binary.BigEndian.Uint16(d.ICMP.Contents[6:]); mtu != 1400 {
		t.Errorf("next-hop MTU %d, want 1400", mtu)
	}
	if q := DecodeQuoted(t, d.ICMP.Payload); q.Src != inClient+":5000" || !q.HeaderChecksumOK {
		t.Errorf("quoted %+v", q)
	}
	// A packet that fits passes, translated.
	r.one(r.in, r.out, UDP(t, inClient+":5000", remote1+":7777", make([]byte, 1372)))
	// Inbound through a nat server: the client gets the packet it sent
	// to the public address, not the translated one.
	r.in.SetMTU(1280)
	in := TCP(t, remote1+":36755", public+":9091", SYN, 1, 0, nil)
	r.one(r.out, r.in, in)
	r.one(r.in, r.out, TCP(t, inServer+":2021", remote1+":36755", SYN|ACK, 100, 2, nil))
	data := TCP(t, remote1+":36755", public+":9091", ACK|PSH, 2, 101, make([]byte, 1300))
	_, toOut = r.send(r.out, data)
	if len(toOut) != 1 {
		t.Fatalf("no error for the inbound packet; %s", r.drops())
	}
	d = icmpErr(t, toOut[0], routerOut, data, packet.ICMPDestUnreachable, packet.ICMPCodeFragNeeded)
	if mtu := binary.BigEndian.Uint16(d.ICMP.Contents[6:]); mtu != 1280 {
		t.Errorf("next-hop MTU %d, want 1280", mtu)
	}
	if n := r.w.Counters().Drop[DropMTUExceeded].Load(); n != 2 {
		t.Errorf("mtu_exceeded = %d, want 2", n)
	}
}

func TestFragmentsToFitTheMTU(t *testing.T) {
	r := routerRig(t, rigOpts{})
	r.out.SetMTU(576)
	frame := withoutDF(UDP(t, inClient+":5000", remote1+":7777", bytes.Repeat([]byte("fastnat!"), 300)))
	_, out := r.send(r.in, frame)
	if len(out) != 5 {
		t.Fatalf("%d fragments, want 5; %s", len(out), r.drops())
	}
	checkFragmentsOut(t, out, 576, public)
	CheckReassembled(t, out)
	// A fragment that does not fit is fragmented further; its pieces
	// keep their place in the datagram.
	orig := Fragment(t, withoutDF(UDP(t, inClient+":5001", remote1+":7777", bytes.Repeat([]byte("0123456789abcdef"), 150))), 1200)
	var all [][]byte
	for _, f := range orig {
		_, out := r.send(r.in, f)
		all = append(all, out...)
	}
	if len(all) != 7 { // 1200 bytes of data at 552 a fragment: 3; the 8-byte tail fits
		t.Fatalf("%d fragments from 3, want 7; %s", len(all), r.drops())
	}
	checkFragmentsOut(t, all, 576, public)
	CheckReassembled(t, all)
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
	ev := &r.w.Counters().Event
	if ev[EventFragmented].Load() != 3 || ev[EventFragmentsSent].Load() != 11 {
		t.Errorf("frag_out_packets %d, frag_out_fragments %d; want 3, 11", ev[EventFragmented].Load(), ev[EventFragmentsSent].Load())
	}
	// No free frame to fragment into: dropped and counted.
	var taken []Frame
	r.in.Inject(frame)
	for {
		f, ok := r.pool.get()
		if !ok {
			break
		}
		taken = append(taken, f)
	}
	r.w.Poll()
	if n := r.w.Counters().Drop[DropFragNoFrame].Load(); n != 1 {
		t.Fatalf("frag_no_frame = %d, want 1", n)
	}
	r.in.Release(taken)
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
}

// TestMTUFollowed: a port's MTU is read again at every poll, so a change
// between polls (ip link set IF mtu N, which the afxdp resolver picks up)
// applies to the next packet of a flow that already passed: a DF packet
// that fit before gets fragmentation needed carrying the new MTU, one
// without DF is split to it, and when the MTU grows again both pass whole.
func TestMTUFollowed(t *testing.T) {
	r := routerRig(t, rigOpts{})
	df := UDP(t, inClient+":5000", remote1+":7777", bytes.Repeat([]byte("mtu!"), 350)) // 1428 bytes of IP
	if d := r.one(r.in, r.out, df); d.IP.Length != 1428 {
		t.Fatalf("at MTU 1500 the packet left as %d bytes", d.IP.Length)
	}
	for _, mtu := range []int{1400, 1280, 576} {
		r.out.SetMTU(mtu)
		toIn, toOut := r.send(r.in, df)
		if len(toIn) != 1 || len(toOut) != 0 {
			t.Fatalf("MTU %d: %d in, %d out; %s", mtu, len(toIn), len(toOut), r.drops())
		}
		d := icmpErr(t, toIn[0], routerIn, df, packet.ICMPDestUnreachable, packet.ICMPCodeFragNeeded)
		if got := binary.BigEndian.Uint16(d.ICMP.Contents[6:]); int(got) != mtu {
			t.Errorf("next-hop MTU %d, want the new %d", got, mtu)
		}
		_, out := r.send(r.in, withoutDF(df))
		per := (mtu - 20) &^ 7 // data bytes a fragment carries (RFC 791: multiples of 8)
		if want := (1428 - 20 + per - 1) / per; len(out) != want {
			t.Fatalf("MTU %d: %d fragments, want %d; %s", mtu, len(out), want, r.drops())
		}
		checkFragmentsOut(t, out, mtu, public)
		CheckReassembled(t, out)
	}
	r.out.SetMTU(1500)
	r.one(r.in, r.out, df)
	if n := r.w.Counters().Drop[DropMTUExceeded].Load(); n != 3 {
		t.Errorf("mtu_exceeded = %d, want 3", n)
	}
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
}

// checkFragmentsOut decodes the fragments a worker sent and checks that
// each fits mtu, comes from src, and that their offsets follow each other.
func checkFragmentsOut(t *testing.T, frags [][]byte, mtu int, src string) {
	t.Helper()
	next := -1
	for i, f := range frags {
		d := Decode(t, f)
		if int(d.IP.Length) > mtu || len(f) > mtu+14 {
			t.Fatalf("fragment %d: %d bytes, MTU %d", i, d.IP.Length, mtu)
		}
		if netip.AddrFrom4([4]byte(d.IP.SrcIP.To4())).String() != src {
			t.Fatalf("fragment %d from %v", i, d.IP.SrcIP)
		}
		if d.Eth.DstMAC.String() != "02:00:00:00:09:09" {
			t.Fatalf("fragment %d to MAC %v", i, d.Eth.DstMAC)
		}
		off := int(d.IP.FragOffset) * 8
		if next >= 0 && off != next && off != 0 {
			t.Fatalf("fragment %d at %d, want %d", i, off, next)
		}
		next = off + int(d.IP.Length) - int(d.IP.IHL)*4
		if d.IP.Flags&layers.IPv4MoreFragments != 0 && (next-off)%8 != 0 {
			t.Fatalf("fragment %d carries %d bytes", i, next-off)
		}
	}
}

func TestMSSClamp(t *testing.T) {
	mssOf := func(t *testing.T, d *Decoded) uint16 {
		t.Helper()
		for _, o := range d.TCP.Options {
			if o.OptionType == layers.TCPOptionKindMSS {
				return binary.BigEndian.Uint16(o.OptionData)
			}
		}
		t.Fatal("no MSS option")
		return 0
	}
	mss := func(v uint16) layers.TCPOption {
		return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: binary.BigEndian.AppendUint16(nil, v)}
	}
	for _, c := range []struct {
		name         string
		clamp        int
		wantSYN      uint16
		wantSYNACK   uint16
		wantClamped  uint64
		offered, ack uint16
	}{
		{"off", 0, 1460, 1460, 0, 1460, 1460},
		{"to the mtu", MSSClampMTU, 1452, 1452, 2, 1460, 1460},
		{"fixed", 1300, 1300, 1200, 1, 1460, 1200},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := routerRig(t, rigOpts{router: NewPolicy(RouterConfig{MSSClamp: c.clamp})})
			r.out.SetMTU(1492)
			d := r.one(r.in, r.out, TCP(t, inClient+":40000", remote1+":80", SYN, 1, 0, nil, mss(c.offered)))
			if got := mssOf(t, d); got != c.wantSYN {
				t.Errorf("SYN MSS %d, want %d", got, c.wantSYN)
			}
			d = r.one(r.out, r.in, TCP(t, remote1+":80", public+":40000", SYN|ACK, 9, 2, nil, mss(c.ack)))
			if got := mssOf(t, d); got != c.wantSYNACK {
				t.Errorf("SYN-ACK MSS %d, want %d", got, c.wantSYNACK)
			}
			// Only SYNs are touched.
			r.one(r.in, r.out, TCP(t, inClient+":40000", remote1+":80", ACK, 2, 10, nil, mss(1460)))
			if n := r.w.Counters().Event[EventMSSClamped].Load(); n != c.wantClamped {
				t.Errorf("mss_clamped = %d, want %d", n, c.wantClamped)
			}
		})
	}
}

func TestNetUnreachable(t *testing.T) {
	r := routerRig(t, rigOpts{})
	r.out.SetNoRoute(Addr(t, "198.19.0.1"))
	f := UDP(t, inClient+":5000", "198.19.0.1:53", []byte("query"))
	toIn, toOut := r.send(r.in, f)
	if len(toIn) != 1 || len(toOut) != 0 {
		t.Fatalf("%d in, %d out; %s", len(toIn), len(toOut), r.drops())
	}
	icmpErr(t, toIn[0], routerIn, f, packet.ICMPDestUnreachable, packet.ICMPCodeNetUnreachable)
	if n := r.w.Counters().Drop[DropNetUnreachable].Load(); n != 1 {
		t.Errorf("net_unreachable = %d", n)
	}
}

func TestHostUnreachable(t *testing.T) {
	r := routerRig(t, rigOpts{})
	var sent [][]byte
	for i := range 3 {
		sent = append(sent, UDP(t, fmt.Sprintf("%s:%d", inClient, 5000+i), "198.18.0.77:7777", []byte("anyone?")))
	}
	toIn, toOut := r.send(r.in, sent...)
	if len(toIn)+len(toOut) != 0 {
		t.Fatalf("%d frames out before resolution", len(toIn)+len(toOut))
	}
	r.now += neighWaitSeconds - 1
	r.w.Poll()
	if got := r.in.Sent(); len(got) != 0 {
		t.Fatalf("%d errors before the wait is over", len(got))
	}
	r.now++
	r.w.Poll()
	got := r.in.Sent()
	if len(got) != 3 {
		t.Fatalf("%d host unreachable errors, want 3; %s", len(got), r.drops())
	}
	for i := range got {
		icmpErr(t, got[i], routerIn, sent[i], packet.ICMPDestUnreachable, packet.ICMPCodeHostUnreachable)
	}
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
}

func TestNeighbourQueue(t *testing.T) {
	r := routerRig(t, rigOpts{frames: 8192})
	dst := "198.18.0.50"
	// 200 back-to-back small datagrams to a host not resolved yet all
	// wait, and leave in order once it resolves.
	for i := range 200 {
		r.in.Inject(UDP(t, inClient+":5000", dst+":7777", []byte(fmt.Sprintf("datagram %03d", i))))
		if i%32 == 31 {
			r.w.Poll()
		}
	}
	r.w.Poll()
	if n := len(r.out.Sent()); n != 0 {
		t.Fatalf("%d sent before resolution", n)
	}
	r.out.SetNeighbor(Addr(t, dst), macHost)
	r.w.Poll()
	out := r.out.Sent()
	if len(out) != 200 {
		t.Fatalf("%d of 200 arrived; %s", len(out), r.drops())
	}
	for i, f := range out {
		if d := Decode(t, f); string(d.UDP.Payload) != fmt.Sprintf("datagram %03d", i) {
			t.Fatalf("datagram %d is %q: out of order", i, d.UDP.Payload)
		}
	}
	// The per-neighbour bound: large frames beyond 212,992 bytes push
	// the oldest out.
	dst2 := "198.18.0.51"
	const n = 300
	for i := range n {
		r.in.Inject(UDP(t, inClient+":5001", dst2+":7777", append([]byte(fmt.Sprintf("%03d", i)), make([]byte, 1400)...)))
		if i%32 == 31 {
			r.w.Poll()
		}
	}
	r.w.Poll()
	cost := 14 + 20 + 8 + 1403 + neighFrameCost
	keep := neighQueueBytes / cost
	if got := r.w.Counters().Drop[DropNeighQueueFull].Load(); got != uint64(n-keep) {
		t.Fatalf("neigh_queue_full = %d, want %d", got, n-keep)
	}
	r.out.SetNeighbor(Addr(t, dst2), macHost)
	r.w.Poll()
	out = r.out.Sent()
	if len(out) != keep {
		t.Fatalf("%d sent, want the newest %d", len(out), keep)
	}
	if d := Decode(t, out[0]); string(d.UDP.Payload[:3]) != fmt.Sprintf("%03d", n-keep) {
		t.Fatalf("first sent is %q, want the oldest kept", d.UDP.Payload[:3])
	}
	// The worker's own bound: an eighth of its frames wait, whatever the
	// neighbours.
	max := r.w.waitMax
	for i := range max + 10 {
		r.in.Inject(UDP(t, inClient+":5002", fmt.Sprintf("198.18.0.%d:7777", 100+i%20), nil))
		if i%32 == 31 {
			r.w.Poll()
		}
	}
	r.w.Poll()
	if got := r.w.Counters().Drop[DropWaitFull].Load(); got != 10 {
		t.Fatalf("wait_full = %d, want 10 (%d may wait)", got, max)
	}
	r.now += neighWaitSeconds
	r.w.Poll()
	if free := r.pool.Free(); free != 8192 {
		t.Errorf("%d of 8192 frames free", free)
	}
}

func TestEarlyFragmentsBounded(t *testing.T) {
	r := routerRig(t, rigOpts{})
	holdMax := len(r.w.held.slots)
	// More early fragments than the worker holds: the oldest go.
	var lasts [][]byte
	for i := range holdMax + 5 {
		fr := Fragment(t, WithIPID(t, withoutDF(UDP(t, inClient+":5000", remote1+":7777", make([]byte, 1000))), uint16(i)), 512)
		lasts = append(lasts, fr[0])
		r.none(r.in, fr[1])
	}
	if n := r.w.Counters().Drop[DropFragHeldEvicted].Load(); n != 5 {
		t.Fatalf("frag_held_evicted = %d, want 5", n)
	}
	// A first fragment releases its own datagram's held fragment only.
	_, out := r.send(r.in, lasts[holdMax+4])
	if len(out) != 2 {
		t.Fatalf("%d frames out for the released datagram, want 2; %s", len(out), r.drops())
	}
	if r.w.held.live != holdMax-1 {
		t.Fatalf("%d held, want %d", r.w.held.live, holdMax-1)
	}
	// The rest wait for the fragment timeout, then go.
	r.now += nat.FragTimeout + 1
	r.w.Poll()
	if n := r.w.Counters().Drop[DropFragHeldExpired].Load(); n != uint64(holdMax-1) {
		t.Fatalf("frag_held_expired = %d, want %d", n, holdMax-1)
	}
	if free := r.pool.Free(); free != 512 {
		t.Errorf("%d of 512 frames free", free)
	}
}

func TestBadChecksumRefusedOnce(t *testing.T) {
	var told []string
	r := routerRig(t, rigOpts{onBadChecksum: func(p Port) { told = append(told, p.Name()) }})
	bad := func(f []byte) []byte {
		f = append([]byte(nil), f...)
		f[14+20+6] ^= 0x55 // UDP checksum
		return f
	}
	r.none(r.in, bad(UDP(t, inClient+":5000", remote1+":7777", []byte("partial"))))
	r.none(r.in, bad(UDP(t, inClient+":5001", remote1+":7777", []byte("partial"))))
	r.none(r.out, bad(UDP(t, remote1+":999", public+":5353", []byte("partial"))))
	if n := r.verdicts(nat.DropBadL4Checksum); n != 3 {
		t.Fatalf("bad_l4_checksum = %d, want 3", n)
	}
	if fmt.Sprint(told) != "[in out]" {
		t.Fatalf("OnBadChecksum told %v, want each port once", told)
	}
	if n := r.table.Stats().Sessions; n != 0 {
		t.Fatalf("%d sessions created", n)
	}
	r.one(r.in, r.out, UDP(t, inClient+":5000", remote1+":7777", []byte("whole")))
}

func TestRouterPathsAllocateNothing(t *testing.T) {
	r := routerRig(t, rigOpts{router: NewPolicy(RouterConfig{MSSClamp: MSSClampMTU})})
	r.out.SetMTU(576)
	ttl := withTTL(UDP(t, inClient+":5000", remote1+":7777", nil), 1)
	big := withoutDF(UDP(t, inClient+":5001", remote1+":7777", make([]byte, 1400)))
	df := UDP(t, inClient+":5002", remote1+":7777", make([]byte, 1400))
	syn := TCP(t, inClient+":40000", remote1+":80", SYN, 1, 0, nil, layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionData: []byte{5, 0xb4}})
	frags := Fragment(t, withoutDF(UDP(t, inClient+":5003", remote1+":7777", make([]byte, 1000))), 512)
	closedUDP := UDP(t, remote1+":999", public+":4444", nil)
	closedTCP := TCP(t, remote1+":999", public+":4444", SYN, 1, 0, nil)
	rr := withRecordRoute(t, UDP(t, inClient+":5004", remote1+":7777", nil))
	ts := WithIPOptions(t, UDP(t, inClient+":5005", remote1+":7777", nil), []byte{packet.OptTimestamp, 12, 5, packet.TSAndAddr})
	badOpts := WithIPOptions(t, UDP(t, inClient+":5006", remote1+":7777", nil), []byte{packet.OptTimestamp, 8, 4, 0})
	for _, f := range [][]byte{big, df, syn} {
		r.send(r.in, f)
	}
	r.in.SetSink(func([]Frame) {})
	r.out.SetSink(func([]Frame) {})
	now := int64(time.Hour)
	r.w.nanos = func() int64 { now += int64(time.Second); return now }
	id := uint16(0)
	allocs := testing.AllocsPerRun(100, func() {
		id++
		r.in.Inject(ttl)
		r.in.Inject(big)
		r.in.Inject(df)
		r.in.Inject(syn)
		r.in.Inject(WithIPIDFast(frags[1], id))
		r.in.Inject(WithIPIDFast(frags[0], id))
		r.out.Inject(closedUDP)
		r.out.Inject(closedTCP)
		r.in.Inject(rr)
		r.in.Inject(ts)
		r.in.Inject(badOpts)
		r.w.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per round, want 0", allocs)
	}
	ev := &r.w.Counters().Event
	if ev[EventICMPTimeExceeded].Load() < 100 || ev[EventICMPFragNeeded].Load() < 100 || ev[EventFragmented].Load() < 100 ||
		ev[EventICMPPortUnreachable].Load() < 100 || ev[EventTCPReset].Load() < 100 || ev[EventICMPParamProblem].Load() == 0 {
		t.Fatalf("the paths did not run: %s", r.drops())
	}
}

// WithIPIDFast sets the identification of an IPv4 frame in place and
// fixes its header checksum incrementally, without allocating.
func WithIPIDFast(frame []byte, id uint16) []byte {
	old := binary.BigEndian.Uint16(frame[18:])
	binary.BigEndian.PutUint16(frame[18:], id)
	binary.BigEndian.PutUint16(frame[24:], packet.UpdateChecksum16(binary.BigEndian.Uint16(frame[24:]), old, id))
	return frame
}

// TestALGItemsCarryTheEgressMTU: frames diverted to the ALG tell it the
// MTU of the port they leave by, and what it returns above that MTU is
// fragmented (or dropped with Don't Fragment) before it leaves.
func TestALGItemsCarryTheEgressMTU(t *testing.T) {
	link, err := NewALGLink(64)
	if err != nil {
		t.Fatal(err)
	}
	r := routerRig(t, rigOpts{alg: link})
	r.in.SetMTU(1400)
	r.out.SetMTU(1280)
	r.send(r.out, TCP(t, remote1+":36755", public+":9091", SYN, 1, 0, nil))
	items := make([]ALGItem, 4)
	if n := link.To.Pop(items); n != 1 || items[0].MTU != 1400 {
		t.Fatalf("%d items, MTU %d; want one for the inside port's 1400", n, items[0].MTU)
	}
	// The "ALG" returns the SYN grown past the inside MTU, without DF:
	// it leaves in fragments that fit.
	grown := withoutDF(TCP(t, remote1+":36755", inServer+":2021", SYN, 1, 0, make([]byte, 1500)))
	it := items[0]
	it.Buf = append(it.Buf[:14], grown[14:]...) // the frame's own Ethernet header stays
	it.Verdict = alg.Forward
	link.inFlight.Add(1)
	link.From.Push([]ALGItem{it})
	r.w.Poll()
	got := r.in.Sent()
	if len(got) != 2 {
		t.Fatalf("%d frames from the ALG's oversized segment, want 2 fragments; %s", len(got), r.drops())
	}
	checkFragmentsOut(t, got, 1400, remote1)
	CheckReassembled(t, got)
}

// withRecordRoute returns frame (an Ethernet frame with an IPv4 header
// without options) with a NOP and an empty 9-slot Record Route option
// inserted into its header, as ping -R sends it; lengths and the header
// checksum fixed.
func withRecordRoute(t *testing.T, frame []byte) []byte {
	t.Helper()
	opt := make([]byte, 40)
	opt[0], opt[1], opt[2], opt[3] = packet.OptNOP, packet.OptRecordRoute, 39, 4
	out := append(append(append([]byte(nil), frame[:34]...), opt...), frame[34:]...)
	ip := packet.IPv4(out[14:])
	out[14] = 0x45 + 10
	binary.BigEndian.PutUint16(out[16:], binary.BigEndian.Uint16(out[16:])+40)
	ip.SetChecksum(ip.CalculateChecksum())
	return out
}

// TestRecordRouteForwarded: a packet with a Record Route option leaves
// with the address of the interface it left by recorded, both ways
// through the NAT, with its header checksum right (gopacket).
func TestRecordRouteForwarded(t *testing.T) {
	r := routerRig(t, rigOpts{})
	recorded := func(d *Decoded) []string {
		var got []string
		for _, o := range d.IP.Options {
			if o.OptionType == packet.OptRecordRoute {
				for i := 1; i+4 <= int(o.OptionData[0])-3; i += 4 {
					got = append(got, netip.AddrFrom4([4]byte(o.OptionData[i:i+4])).String())
				}
			}
		}
		return got
	}
	d := r.one(r.in, r.out, withRecordRoute(t, UDP(t, inClient+":5000", remote1+":7777", []byte("out"))))
	if got := recorded(d); len(got) != 1 || got[0] != routerOut {
		t.Fatalf("recorded %v on the way out, want [%s]", got, routerOut)
	}
	d = r.one(r.out, r.in, withRecordRoute(t, UDP(t, remote1+":7777", d.Src(), []byte("back"))))
	if got := recorded(d); len(got) != 1 || got[0] != routerIn {
		t.Fatalf("recorded %v on the way in, want [%s]", got, routerIn)
	}
}

// TestIPOptions: a forwarded packet's Timestamp option gets the time and
// the address of the interface it arrived by, its Record Route option the
// one it leaves by, both ways through the NAT, the header checksum right
// (gopacket); a packet whose options are malformed is dropped before the
// NAT sees it (no session), counted bad_ip_options, and answered with a
// parameter problem from the arrival interface pointing at the faulty
// byte, quoting the packet as sent.
func TestIPOptions(t *testing.T) {
	r := routerRig(t, rigOpts{})
	opts := []byte{packet.OptRecordRoute, 7, 4, 0, 0, 0, 0, packet.OptTimestamp, 12, 5, packet.TSAndAddr, 0, 0, 0, 0, 0, 0, 0, 0}
	options := func(d *Decoded) (rr, tsAddr string, tsPtr uint8, stamp uint32) {
		o := d.IP.Contents[20:]
		return netip.AddrFrom4([4]byte(o[3:7])).String(), netip.AddrFrom4([4]byte(o[11:15])).String(), o[9], binary.BigEndian.Uint32(o[15:])
	}
	now := packet.Timestamp(time.Now())
	for _, c := range []struct {
		name           string
		from, to       *MemPort
		frame          []byte
		rr, ts         string
		wantSrc, wantD string
	}{
		{"outbound", r.in, r.out, WithIPOptions(t, UDP(t, inClient+":5000", remote1+":7777", []byte("x")), opts), routerOut, routerIn, public + ":5000", remote1 + ":7777"},
		{"the reply", r.out, r.in, WithIPOptions(t, UDP(t, remote1+":7777", public+":5000", []byte("y")), opts), routerIn, routerOut, remote1 + ":7777", inClient + ":5000"},
	} {
		d := r.one(c.from, c.to, c.frame)
		rr, ts, ptr, stamp := options(d)
		if d.Src() != c.wantSrc || d.Dst() != c.wantD || rr != c.rr || ts != c.ts || ptr != 13 {
			t.Errorf("%s: %s -> %s, recorded %s, stamped by %s (pointer %d); want %s -> %s, %s, %s (13)", c.name, d.Src(), d.Dst(), rr, ts, ptr, c.wantSrc, c.wantD, c.rr, c.ts)
		}
		if delta := int64(stamp) - int64(now); delta < 0 || delta > 5000 {
			t.Errorf("%s: timestamp %d, the time is %d", c.name, stamp, now)
		}
	}
	// An echo request to the public address: the reply's options are
	// filled in as the kernel's stack fills them in, twice by the public
	// address and not again as the reply leaves; the NOP is not echoed.
	ping := WithIPOptions(t, ICMPEcho(t, remote1, public, 7, 1, false),
		[]byte{packet.OptNOP, packet.OptRecordRoute, 15, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	d := r.one(r.out, r.out, ping)
	o := d.IP.Contents[20:]
	if d.ICMP == nil || d.ICMP.TypeCode.Type() != packet.ICMPEchoReply || o[0] != packet.OptRecordRoute || o[2] != 12 ||
		netip.AddrFrom4([4]byte(o[3:7])).String() != public || netip.AddrFrom4([4]byte(o[7:11])).String() != public || o[15] != packet.OptEnd {
		t.Errorf("echo reply %v with options % x, want Record Route with the public address twice", d.ICMP.TypeCode, o)
	}
	sessions := r.table.Stats().Sessions
	bad := WithIPOptions(t, UDP(t, inClient+":5001", remote1+":7777", nil), []byte{packet.OptNOP, packet.OptTimestamp, 7, 4, 0, 0, 0, packet.OptEnd})
	toIn, toOut := r.send(r.in, bad)
	if len(toIn) != 1 || len(toOut) != 0 {
		t.Fatalf("bad options: %d in, %d out; want a parameter problem back; %s", len(toIn), len(toOut), r.drops())
	}
	d = icmpErr(t, toIn[0], routerIn, bad, packet.ICMPParamProblem, 0)
	if p := d.ICMP.Contents[4]; p != 23 {
		t.Errorf("parameter problem points at %d, want 23 (the pointer)", p)
	}
	if n := r.w.Counters().Drop[DropBadIPOptions].Load(); n != 1 || r.table.Stats().Sessions != sessions {
		t.Errorf("bad_ip_options %d, sessions %d -> %d; want 1, none made", n, sessions, r.table.Stats().Sessions)
	}
	// To the public address (here a published server's port), the
	// problem is answered from that address, as the kernel answers it.
	bad = WithIPOptions(t, UDP(t, remote1+":999", public+":5353", nil), []byte{packet.OptNOP, packet.OptTimestamp, 7, 4, 0, 0, 0, packet.OptEnd})
	if _, toOut := r.send(r.out, bad); len(toOut) != 1 {
		t.Fatalf("bad options to the public address: %d out; %s", len(toOut), r.drops())
	} else {
		icmpErr(t, toOut[0], public, bad, packet.ICMPParamProblem, 0)
	}
	// A source route: dropped silently, as without accept_source_route.
	r.none(r.in, WithIPOptions(t, UDP(t, inClient+":5002", remote1+":7777", nil), []byte{packet.OptLSRR, 7, 4, 198, 18, 0, 2, packet.OptEnd}))
	if n := r.w.Counters().Drop[DropSourceRouted].Load(); n != 1 || r.table.Stats().Sessions != sessions || r.w.Counters().Drop[DropBadIPOptions].Load() != 2 {
		t.Errorf("source_routed %d, sessions %d -> %d; want 1, none made", n, sessions, r.table.Stats().Sessions)
	}
}
