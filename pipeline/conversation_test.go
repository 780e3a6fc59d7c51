package pipeline

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/flowtable"
	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

func TestTCPOutboundConversation(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	cl := inClient + ":40000"
	// SYN from inside: source becomes the public address, port preserved.
	d := r.one(r.in, r.out, TCP(t, cl, remote1+":80", SYN, 1000, 0, nil))
	if d.Src() != public+":40000" || d.Dst() != remote1+":80" {
		t.Fatalf("SYN out: %s -> %s", d.Src(), d.Dst())
	}
	if d.IP.TTL != 63 {
		t.Errorf("TTL %d, want 63", d.IP.TTL)
	}
	// SYN/ACK from outside to the public endpoint reaches the client.
	d = r.one(r.out, r.in, TCP(t, remote1+":80", public+":40000", SYN|ACK, 5000, 1001, nil))
	if d.Src() != remote1+":80" || d.Dst() != cl || d.TCP.Seq != 5000 || d.TCP.Ack != 1001 {
		t.Fatalf("SYN/ACK in: %s -> %s seq %d ack %d", d.Src(), d.Dst(), d.TCP.Seq, d.TCP.Ack)
	}
	r.one(r.in, r.out, TCP(t, cl, remote1+":80", ACK, 1001, 5001, nil))
	id, _, ok := r.table.Lookup(packetTuple(t, layers.IPProtocolTCP, cl, remote1+":80"))
	if !ok {
		t.Fatal("session not found")
	}
	if st, _ := r.table.State(id); nat.TCPStateName(st) != "ESTABLISHED" {
		t.Fatalf("state %s, want ESTABLISHED", nat.TCPStateName(st))
	}
	// Data both ways, payload untouched.
	d = r.one(r.in, r.out, TCP(t, cl, remote1+":80", ACK|PSH, 1001, 5001, []byte("GET / HTTP/1.0\r\n\r\n")))
	if !bytes.Equal(d.TCP.Payload, []byte("GET / HTTP/1.0\r\n\r\n")) {
		t.Fatalf("payload changed: %q", d.TCP.Payload)
	}
	r.one(r.out, r.in, TCP(t, remote1+":80", public+":40000", ACK|PSH, 5001, 1019, []byte("HTTP/1.0 200 OK\r\n")))
	// Teardown: FINs move the session to the transitory timeout.
	r.one(r.in, r.out, TCP(t, cl, remote1+":80", FIN|ACK, 1019, 5018, nil))
	r.one(r.out, r.in, TCP(t, remote1+":80", public+":40000", FIN|ACK, 5018, 1020, nil))
	st, timeout := r.table.State(id)
	if nat.TCPStateName(st) != "FIN_WAIT" || timeout != 240 {
		t.Fatalf("after FINs: state %s timeout %d, want FIN_WAIT 240", nat.TCPStateName(st), timeout)
	}
}

func TestTCPServerConversation(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	c := remote1 + ":36755"
	d := r.one(r.out, r.in, TCP(t, c, public+":9091", SYN, 7, 0, nil))
	if d.Src() != c || d.Dst() != inServer+":2021" {
		t.Fatalf("SYN in: %s -> %s", d.Src(), d.Dst())
	}
	d = r.one(r.in, r.out, TCP(t, inServer+":2021", c, SYN|ACK, 100, 8, nil))
	if d.Src() != public+":9091" || d.Dst() != c {
		t.Fatalf("SYN/ACK out: %s -> %s", d.Src(), d.Dst())
	}
	// The session is labelled ftp by the 9091 port mapping.
	id, _, gen, _ := r.table.LookupGen(packetTuple(t, layers.IPProtocolTCP, c, public+":9091"))
	var s flowtable.Session
	if !r.table.Read(id, gen, &s) || s.App != 1 /* portmap.AppFTP */ && s.MapEntry != 0 {
		t.Errorf("session app %d entry %d, want ftp via mapping 0", s.App, s.MapEntry)
	}
}

func TestUnsolicitedDropped(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	// A SYN to a port of the public address nothing holds is answered
	// with a reset from that port, as a host answers (RFC 793): sequence
	// 0, acknowledging the SYN, no window, every checksum right.
	toIn, toOut := r.send(r.out, TCP(t, remote1+":1234", public+":22", SYN, 1000, 0, []byte("data")))
	if len(toIn) != 0 || len(toOut) != 1 {
		t.Fatalf("%d in, %d out, want one reset back; %s", len(toIn), len(toOut), r.drops())
	}
	rst := Decode(t, toOut[0])
	if rst.TCP == nil || !rst.TCP.RST || !rst.TCP.ACK || rst.TCP.SYN || rst.TCP.Seq != 0 || rst.TCP.Ack != 1005 ||
		rst.TCP.Window != 0 || len(rst.TCP.Payload) != 0 || rst.Src() != public+":22" || rst.Dst() != remote1+":1234" ||
		rst.IP.TTL != 64 || rst.Eth.DstMAC.String() != MACA.String() {
		t.Fatalf("reset %s -> %s: %+v", rst.Src(), rst.Dst(), rst.TCP)
	}
	if n := r.w.Counters().Event[EventTCPReset].Load(); n != 1 {
		t.Fatalf("tcp_reset = %d, want 1", n)
	}
	// UDP to a port of the public address nothing holds is answered
	// port unreachable, from that address, as a host answers.
	f := UDP(t, remote1+":1234", public+":40000", []byte("x"))
	toIn, toOut = r.send(r.out, f)
	if len(toIn) != 0 || len(toOut) != 1 {
		t.Fatalf("%d in, %d out, want one port unreachable back; %s", len(toIn), len(toOut), r.drops())
	}
	icmpErr(t, toOut[0], public, f, packet.ICMPDestUnreachable, packet.ICMPCodePortUnreachable)
	if got := r.verdicts(nat.DropUnsolicited); got != 2 {
		t.Fatalf("unsolicited drops %d, want 2", got)
	}
	if n := r.w.Counters().Event[EventICMPPortUnreachable].Load(); n != 1 {
		t.Fatalf("icmp_port_unreachable = %d, want 1", n)
	}
	// A mapped port that filters the sender stays silent: a peer punching
	// a hole before the mapping's owner sent to it is not told to stop.
	d := r.one(r.in, r.out, UDP(t, inClient+":5000", remote1+":7777", []byte("out")))
	r.none(r.out, UDP(t, remote2+":7777", d.Src(), []byte("early")))
	if got := r.verdicts(nat.DropUnsolicited); got != 3 {
		t.Fatalf("unsolicited drops %d, want 3", got)
	}
	// A TCP flow must start with a SYN.
	r.none(r.in, TCP(t, inClient+":40001", remote1+":80", ACK, 1, 1, nil))
	if got := r.verdicts(nat.DropTCPNoSYN); got != 1 {
		t.Fatalf("tcp_no_syn drops %d, want 1", got)
	}
	// Traffic from an inside address no rule covers.
	r.none(r.in, UDP(t, "10.99.0.1:1000", remote1+":7777", []byte("x")))
	if got := r.verdicts(nat.DropNoRule); got != 1 {
		t.Fatalf("no_rule drops %d, want 1", got)
	}
}

func TestUDPEndpointIndependentMapping(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	a := r.one(r.in, r.out, UDP(t, inClient+":5000", remote1+":7777", []byte("q1")))
	b := r.one(r.in, r.out, UDP(t, inClient+":5000", remote2+":7777", []byte("q2")))
	if a.Src() != b.Src() {
		t.Fatalf("EIM: two destinations got %s and %s", a.Src(), b.Src())
	}
	// Both destinations answer to the shared mapping.
	r.one(r.out, r.in, UDP(t, remote1+":7777", a.Src(), []byte("a1")))
	d := r.one(r.out, r.in, UDP(t, remote2+":7777", b.Src(), []byte("a2")))
	if d.Dst() != inClient+":5000" {
		t.Fatalf("reply to %s", d.Dst())
	}
	// Filtering stays address-and-port dependent: a third host is refused.
	r.none(r.out, UDP(t, router+":7777", a.Src(), []byte("x")))
}

func TestUDPAddressAndPortDependentMapping(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, false, 1024, 65535)})
	a := r.one(r.in, r.out, UDP(t, inClient+":5000", remote1+":7777", nil))
	b := r.one(r.in, r.out, UDP(t, inClient+":5000", remote2+":7777", nil))
	if a.Src() == b.Src() {
		t.Fatalf("APDM: both destinations share %s", a.Src())
	}
}

func TestUDPZeroChecksumStaysZero(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	f := UDP(t, inClient+":5000", remote1+":7777", []byte("no checksum"))
	f[14+20+6], f[14+20+7] = 0, 0
	d := r.one(r.in, r.out, f)
	if d.UDP.Checksum != 0 {
		t.Fatalf("checksum %#x, want 0 (none)", d.UDP.Checksum)
	}
}

func TestHairpin(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	d := r.one(r.in, r.in, TCP(t, inClient+":40000", public+":9091", SYN, 1, 0, nil))
	if d.Dst() != inServer+":2021" || netip.MustParseAddrPort(d.Src()).Addr().String() != public {
		t.Fatalf("hairpin SYN: %s -> %s", d.Src(), d.Dst())
	}
	back := r.one(r.in, r.in, TCP(t, inServer+":2021", d.Src(), SYN|ACK, 9, 2, nil))
	if back.Src() != public+":9091" || back.Dst() != inClient+":40000" {
		t.Fatalf("hairpin SYN/ACK: %s -> %s", back.Src(), back.Dst())
	}
}

func TestICMPEcho(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	d := r.one(r.in, r.out, ICMPEcho(t, inClient, remote1, 777, 1, false))
	if d.Src() != public || d.ICMP.Id == 0 {
		t.Fatalf("echo out from %s id %d", d.Src(), d.ICMP.Id)
	}
	rep := r.one(r.out, r.in, ICMPEcho(t, remote1, public, d.ICMP.Id, 1, true))
	if rep.Dst() != inClient || rep.ICMP.Id != 777 {
		t.Fatalf("echo reply to %s id %d, want %s id 777", rep.Dst(), rep.ICMP.Id, inClient)
	}
	// The public address itself answers ping.
	pong := r.one(r.out, r.out, ICMPEcho(t, remote1, public, 5, 9, false))
	if pong.Src() != public || pong.Dst() != remote1 || pong.ICMP.TypeCode.Type() != 0 || pong.ICMP.Id != 5 || pong.ICMP.Seq != 9 {
		t.Fatalf("ping of the public address answered %s -> %s type %d id %d seq %d", pong.Src(), pong.Dst(), pong.ICMP.TypeCode.Type(), pong.ICMP.Id, pong.ICMP.Seq)
	}
}

func TestICMPErrorEmbeddingTCP(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	out := r.one(r.in, r.out, TCP(t, inClient+":40000", remote1+":80", SYN, 1000, 0, nil))
	// A router on the path reports time exceeded, quoting the translated
	// SYN as it saw it (28 bytes after the IP header: ports, seq, ack...).
	icmpErr := ICMPError(t, router, public, 11, 0, out.Raw, 20)
	d := r.one(r.out, r.in, icmpErr)
	if d.Dst() != inClient || d.Src() != router {
		t.Fatalf("error %s -> %s, want %s -> %s", d.Src(), d.Dst(), router, inClient)
	}
	// The quoted packet is restored to what the client sent.
	inner := d.ICMP.Payload
	q := DecodeQuoted(t, inner)
	if q.Src != inClient+":40000" || q.Dst != remote1+":80" {
		t.Fatalf("quoted %s -> %s, want %s:40000 -> %s:80", q.Src, q.Dst, inClient, remote1)
	}
	if !q.HeaderChecksumOK {
		t.Error("quoted IPv4 header checksum is wrong")
	}
	// An error quoting a flow nobody has is dropped.
	bogus := ICMPError(t, router, public, 3, 3, UDP(t, public+":1", remote1+":2", nil), 8)
	r.none(r.out, bogus)
	if r.verdicts(nat.DropICMPNoSession) != 1 {
		t.Fatal("want one icmp_no_session drop")
	}
}

func TestICMPErrorFromInsideServer(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	in := r.one(r.out, r.in, UDP(t, remote1+":999", public+":5353", []byte("q")))
	// The server has no listener: port unreachable quoting what it received.
	d := r.one(r.in, r.out, ICMPError(t, inServer, remote1, 3, 3, in.Raw, -1))
	if d.Src() != public || d.Dst() != remote1 {
		t.Fatalf("error %s -> %s, want %s -> %s", d.Src(), d.Dst(), public, remote1)
	}
	q := DecodeQuoted(t, d.ICMP.Payload)
	if q.Src != remote1+":999" || q.Dst != public+":5353" || !q.HeaderChecksumOK || !q.UDPChecksumOK {
		t.Fatalf("quoted %+v", q)
	}
}

func TestTTLExpiry(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	f := UDP(t, inClient+":5000", remote1+":7777", nil)
	f[14+8] = 1
	// Fix the header checksum for the changed TTL so only TTL matters.
	f[14+10], f[14+11] = 0, 0
	c := ipSum(f[14:34])
	f[14+10], f[14+11] = byte(c>>8), byte(c)
	r.none(r.in, f)
	if r.verdicts(nat.DropTTLExpired) != 1 {
		t.Fatalf("want one ttl_expired drop; %s", r.drops())
	}
}

func TestPortExhaustion(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, false, 2000, 2003)})
	var first *Decoded
	for i := 0; i < 4; i++ {
		d := r.one(r.in, r.out, UDP(t, fmt.Sprintf("%s:%d", inClient, 6000+i), remote1+":7777", nil))
		if i == 0 {
			first = d
		}
	}
	r.none(r.in, UDP(t, inClient+":6004", remote1+":7777", nil))
	if r.verdicts(nat.DropPortsExhausted) != 1 {
		t.Fatalf("want one ports_exhausted drop; %s", r.drops())
	}
	// Existing flows keep flowing.
	r.one(r.in, r.out, UDP(t, inClient+":6000", remote1+":7777", nil))
	r.one(r.out, r.in, UDP(t, remote1+":7777", first.Src(), nil))
	// When sessions expire their ports return to the pool.
	r.now += 301
	for i := 0; i < 64; i++ {
		r.w.Poll()
	}
	r.one(r.in, r.out, UDP(t, inClient+":6004", remote1+":7777", nil))
}

func TestTableFull(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535), maxFlows: 4})
	for i := 0; i < 4; i++ {
		r.one(r.in, r.out, UDP(t, fmt.Sprintf("%s:%d", inClient, 7000+i), remote1+":7777", nil))
	}
	r.none(r.in, UDP(t, inClient+":7004", remote1+":7777", nil))
	if r.verdicts(nat.DropTableFull) != 1 {
		t.Fatalf("want one table_full drop; %s", r.drops())
	}
	r.one(r.in, r.out, UDP(t, inClient+":7000", remote1+":7777", nil))
}

func TestFragmentsInAndOutOfOrder(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	payload := bytes.Repeat([]byte("0123456789abcdef"), 100) // 1600 bytes
	frags := Fragment(t, UDP(t, inClient+":5000", remote1+":7777", payload), 512)
	if len(frags) != 4 {
		t.Fatalf("%d fragments", len(frags))
	}
	check := func(got [][]byte) {
		t.Helper()
		if len(got) != len(frags) {
			t.Fatalf("%d fragments out, want %d; %s", len(got), len(frags), r.drops())
		}
		for _, f := range got {
			d := Decode(t, f)
			if netip.AddrFrom4([4]byte(d.IP.SrcIP.To4())).String() != public {
				t.Fatalf("fragment from %v", d.IP.SrcIP)
			}
		}
		// Reassembled, the datagram's UDP checksum must hold.
		CheckReassembled(t, got)
	}
	_, out := r.send(r.in, frags...)
	check(out)
	// Out of order: the last fragments arrive first and are held.
	frags = Fragment(t, WithIPID(t, UDP(t, inClient+":5001", remote1+":7777", payload), 0x4321), 512)
	_, out = r.send(r.in, frags[3], frags[2])
	if len(out) != 0 {
		t.Fatalf("early fragments forwarded before their first: %d", len(out))
	}
	_, out2 := r.send(r.in, frags[0], frags[1])
	check(append(out, out2...))
}

func TestEstablishedForwardingAllocatesNothing(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	syn := TCP(t, inClient+":40000", remote1+":80", SYN, 1, 0, nil)
	r.one(r.in, r.out, syn)
	data := UDP(t, inClient+":5000", remote1+":7777", []byte("x"))
	r.one(r.in, r.out, data)
	r.in.SetSink(func([]Frame) {})
	r.out.SetSink(func([]Frame) {})
	allocs := testing.AllocsPerRun(200, func() {
		r.in.Inject(data)
		r.w.Poll()
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet, want 0", allocs)
	}
}

func packetTuple(tb testing.TB, proto layers.IPProtocol, src, dst string) (t packet.Tuple) {
	tb.Helper()
	s, d := AddrPort(tb, src), AddrPort(tb, dst)
	t.SrcAddr, t.DstAddr = Addr(tb, s.Addr().String()), Addr(tb, d.Addr().String())
	t.SrcPort, t.DstPort, t.Proto = s.Port(), d.Port(), uint8(proto)
	return t
}

func ipSum(h []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(h); i += 2 {
		s += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// TestClosedPortResetsEverySegment: a closed port of the public address
// answers every TCP segment but a RST as a host does (RFC 9293
// §3.10.7.1, Linux's tcp_v4_send_reset), not only a SYN: a segment with
// ACK (nmap -sA) gets a bare RST whose sequence number is the ACK it
// carried; one without (a FIN, NULL or XMAS scan's, a SYN with FIN) a
// RST|ACK with sequence 0 acknowledging its data, SYN and FIN. From the
// port it was sent to, TTL 64, window 0, no options, every checksum
// right (gopacket). A RST is never answered, nor is a segment to a
// mapped port (it filters the sender) or a server's; the same from
// inside (a hairpin to nothing) is answered too.
func TestClosedPortResetsEverySegment(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	const seq, ack = 7000, 123456
	data := []byte("abc")
	for _, c := range []struct {
		name      string
		flags     int
		payload   []byte
		rstSeq    uint32
		rstAck    uint32
		rstHasACK bool
	}{
		{"ACK", ACK, nil, ack, 0, false},
		{"ACK with data", ACK | PSH, data, ack, 0, false},
		{"FIN|ACK", FIN | ACK, nil, ack, 0, false},
		{"FIN", FIN, nil, 0, seq + 1, true},
		{"NULL", 0, nil, 0, seq, true},
		{"NULL with data", 0, data, 0, seq + 3, true},
		{"XMAS", FIN | PSH | URG, nil, 0, seq + 1, true},
		{"SYN|FIN", SYN | FIN, data, 0, seq + 5, true},
		{"SYN|ACK", SYN | ACK, nil, ack, 0, false},
	} {
		before := r.verdicts(nat.DropTCPNoSYN)
		toIn, toOut := r.send(r.out, TCP(t, remote1+":1234", public+":22", c.flags, seq, ack, c.payload))
		if len(toIn) != 0 || len(toOut) != 1 {
			t.Fatalf("%s: %d in, %d out, want one reset back; %s", c.name, len(toIn), len(toOut), r.drops())
		}
		rst := Decode(t, toOut[0])
		if rst.TCP == nil || !rst.TCP.RST || rst.TCP.ACK != c.rstHasACK || rst.TCP.SYN || rst.TCP.FIN || rst.TCP.PSH ||
			rst.TCP.Seq != c.rstSeq || rst.TCP.Ack != c.rstAck || rst.TCP.Window != 0 || len(rst.TCP.Payload) != 0 ||
			len(rst.TCP.Options) != 0 || rst.Src() != public+":22" || rst.Dst() != remote1+":1234" || rst.IP.TTL != 64 {
			t.Fatalf("%s: reset %s -> %s: %+v", c.name, rst.Src(), rst.Dst(), rst.TCP)
		}
		if got := r.verdicts(nat.DropTCPNoSYN) - before; got != 1 {
			t.Fatalf("%s: tcp_no_syn counted %d times, want 1", c.name, got)
		}
	}
	if n := r.w.Counters().Event[EventTCPReset].Load(); n != 9 {
		t.Fatalf("tcp_reset = %d, want 9", n)
	}
	// Never a RST, with ACK or without.
	r.none(r.out, TCP(t, remote1+":1234", public+":22", RST, seq, 0, nil))
	r.none(r.out, TCP(t, remote1+":1234", public+":22", RST|ACK, seq, ack, nil))
	// A server's port is the server's to answer; a mapped one filters.
	r.none(r.out, TCP(t, remote1+":1234", public+":9091", ACK, seq, ack, nil))
	d := r.one(r.in, r.out, TCP(t, inClient+":40000", remote1+":80", SYN, 1, 0, nil))
	r.none(r.out, TCP(t, remote2+":80", d.Src(), ACK, seq, ack, nil))
	// From inside, to a closed port of the public address.
	toIn, toOut := r.send(r.in, TCP(t, inClient+":40001", public+":22", FIN|ACK, seq, ack, nil))
	if len(toIn) != 1 || len(toOut) != 0 {
		t.Fatalf("from inside: %d in, %d out, want one reset back; %s", len(toIn), len(toOut), r.drops())
	}
	if rst := Decode(t, toIn[0]); !rst.TCP.RST || rst.TCP.ACK || rst.TCP.Seq != ack || rst.Src() != public+":22" || rst.Dst() != inClient+":40001" {
		t.Fatalf("from inside: reset %s -> %s: %+v", rst.Src(), rst.Dst(), rst.TCP)
	}
	if n := r.w.Counters().Event[EventTCPReset].Load(); n != 10 {
		t.Fatalf("tcp_reset = %d, want 10", n)
	}
}
