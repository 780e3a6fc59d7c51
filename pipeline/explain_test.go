package pipeline

import (
	"net"
	"net/netip"
	"testing"

	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// TestExplainMatchesWorker: for every kind of first packet `fastnat
// explain` is asked about — forwarded, answered by the NAT as a host
// (ping, a closed port's reset or port unreachable, from either side),
// answered as a router (time exceeded, TTL 1 or 0), dropped (no rule,
// unsolicited, martian, directed broadcast) — nat.Explain's decision is
// what a worker does with the packet: the verdict it counts, and what it
// sends, decoded by gopacket with its checksums checked: the translated
// packet where Explain says so, or the answer Explain names, from the
// address Explain names, back out of the port the packet came in on, or
// nothing at all.
func TestExplainMatchesWorker(t *testing.T) {
	rules := caseRules(t, true, 1024, 65535)
	for _, p := range []string{routerIn + "/24", routerOut + "/24", public + "/32"} {
		rules.Local = append(rules.Local, netip.MustParsePrefix(p))
	}
	const noRule = "10.99.0.5" // an inside host no nat.outbound holds
	probes := []struct {
		name     string
		proto    uint8
		src, dst string // "addr:port"; ICMP: the port is the echo identifier
		from     nat.Side
		ttl      uint8
	}{
		{"udp out", packet.ProtoUDP, inClient + ":5000", remote1 + ":53", nat.Inside, 64},
		{"udp out, ttl 1", packet.ProtoUDP, inClient + ":5000", remote1 + ":53", nat.Inside, 1},
		{"udp out, ttl 0", packet.ProtoUDP, inClient + ":5000", remote1 + ":53", nat.Inside, 0},
		{"syn out, ttl 1", packet.ProtoTCP, inClient + ":40000", remote1 + ":80", nat.Inside, 1},
		{"ping out, ttl 1", packet.ProtoICMP, inClient + ":7", remote1 + ":7", nat.Inside, 1},
		{"udp from no rule", packet.ProtoUDP, noRule + ":5000", remote1 + ":53", nat.Inside, 64},
		{"udp from no rule, ttl 1", packet.ProtoUDP, noRule + ":5000", remote1 + ":53", nat.Inside, 1},
		{"syn to the server", packet.ProtoTCP, remote1 + ":40000", public + ":9091", nat.Outside, 64},
		{"udp to the server, ttl 1", packet.ProtoUDP, remote1 + ":999", public + ":5353", nat.Outside, 1},
		{"syn to a closed port", packet.ProtoTCP, remote1 + ":40000", public + ":4444", nat.Outside, 64},
		{"syn to a closed port, ttl 1", packet.ProtoTCP, remote1 + ":40000", public + ":4444", nat.Outside, 1},
		{"udp to a closed port", packet.ProtoUDP, remote1 + ":999", public + ":4444", nat.Outside, 64},
		{"udp to a closed port, ttl 0", packet.ProtoUDP, remote1 + ":999", public + ":4444", nat.Outside, 0},
		{"udp to the server's tcp port", packet.ProtoUDP, remote1 + ":999", public + ":9091", nat.Outside, 64},
		{"syn from inside to a closed port", packet.ProtoTCP, inClient + ":40000", public + ":4444", nat.Inside, 64},
		{"udp from inside to a closed port, ttl 1", packet.ProtoUDP, inClient + ":999", public + ":4444", nat.Inside, 1},
		{"hairpin to the server", packet.ProtoTCP, inClient + ":40000", public + ":9091", nat.Inside, 64},
		{"hairpin to the server, ttl 1", packet.ProtoTCP, inClient + ":40000", public + ":9091", nat.Inside, 1},
		{"ping the public address", packet.ProtoICMP, remote1 + ":7", public + ":7", nat.Outside, 64},
		{"ping the public address, ttl 1", packet.ProtoICMP, remote1 + ":7", public + ":7", nat.Outside, 1},
		{"ping the public address from inside", packet.ProtoICMP, inClient + ":7", public + ":7", nat.Inside, 1},
		{"syn unsolicited, not to a public address", packet.ProtoTCP, remote1 + ":40000", "198.18.0.77:80", nat.Outside, 64},
		{"the router's inside address as source", packet.ProtoUDP, routerIn + ":5000", remote1 + ":53", nat.Inside, 64},
		{"the router's inside address as source, ttl 1", packet.ProtoUDP, routerIn + ":5000", remote1 + ":53", nat.Inside, 1},
		{"outside directed broadcast", packet.ProtoUDP, inClient + ":5000", "198.18.0.255:53", nat.Inside, 64},
		{"inside directed broadcast, ttl 1", packet.ProtoUDP, inClient + ":5000", "10.77.0.255:137", nat.Inside, 1},
	}
	for _, pr := range probes {
		t.Run(pr.name, func(t *testing.T) {
			src, dst := netip.MustParseAddrPort(pr.src), netip.MustParseAddrPort(pr.dst)
			tu := packet.Tuple{SrcAddr: Addr(t, src.Addr().String()), DstAddr: Addr(t, dst.Addr().String()),
				SrcPort: src.Port(), DstPort: dst.Port(), Proto: pr.proto}
			d, err := nat.Explain(rules, tu, pr.ttl, pr.from, false)
			if err != nil {
				t.Fatal(err)
			}
			var frame []byte
			switch pr.proto {
			case packet.ProtoUDP:
				frame = UDP(t, pr.src, pr.dst, []byte("probe"))
			case packet.ProtoTCP:
				frame = TCP(t, pr.src, pr.dst, SYN, 1000, 0, nil)
			case packet.ProtoICMP:
				frame = ICMPEcho(t, src.Addr().String(), dst.Addr().String(), src.Port(), 1, false)
			}
			frame = withTTL(frame, pr.ttl)
			r := routerRig(t, rigOpts{rules: rules})
			r.in.SetNeighbor(Addr(t, noRule), macHost)
			in, back := r.in, r.in
			if pr.from == nat.Outside {
				in, back = r.out, r.out
			}
			toIn, toOut := r.send(in, frame)
			if n := r.verdicts(d.Verdict); n != 1 {
				t.Errorf("explain says %v; the worker counted it %d times (%s)", d.Verdict, n, r.drops())
			}
			got := append(toIn, toOut...)
			if d.Verdict == nat.Forward && d.Response == nat.NoResponse {
				want := r.out
				if d.ToInside {
					want = r.in
				}
				if len(got) != 1 || (want == r.in) != (len(toIn) == 1) {
					t.Fatalf("explain says forwarded to %s; the worker sent %d in, %d out", want.Name(), len(toIn), len(toOut))
				}
				dec := Decode(t, got[0])
				x := d.Translated
				if dec.IP.TTL != pr.ttl-1 || addrOf(dec.IP.DstIP) != nat.Addr(x.DstAddr) || addrOf(dec.IP.SrcIP) != nat.Addr(x.SrcAddr) {
					t.Errorf("forwarded %s -> %s TTL %d; explain says %v -> %v, TTL %d", dec.Src(), dec.Dst(), dec.IP.TTL,
						nat.Addr(x.SrcAddr), nat.Addr(x.DstAddr), pr.ttl-1)
				}
				return
			}
			if d.Response == nat.NoResponse {
				if len(got) != 0 {
					t.Fatalf("explain says %v, nothing sent; the worker sent %d frames", d.Verdict, len(got))
				}
				return
			}
			if len(got) != 1 || (back == r.in) != (len(toIn) == 1) {
				t.Fatalf("explain says %v answered %v; the worker sent %d in, %d out (%s)", d.Verdict, d.Response, len(toIn), len(toOut), r.drops())
			}
			portAddr := routerIn
			if back == r.out {
				portAddr = routerOut
			}
			switch d.Response {
			case nat.RespondTimeExceeded:
				icmpErr(t, got[0], portAddr, frame, packet.ICMPTimeExceeded, packet.ICMPCodeTTLExceeded)
			case nat.RespondPortUnreachable:
				icmpErr(t, got[0], dst.Addr().String(), frame, packet.ICMPDestUnreachable, packet.ICMPCodePortUnreachable)
			case nat.RespondTCPReset:
				dec := Decode(t, got[0])
				if dec.TCP == nil || !dec.TCP.RST || dec.Src() != pr.dst || dec.Dst() != pr.src {
					t.Fatalf("explain says reset from %s; the worker sent %s -> %s %+v", pr.dst, dec.Src(), dec.Dst(), dec.TCP)
				}
			case nat.RespondEchoReply:
				dec := Decode(t, got[0])
				if dec.ICMP == nil || dec.ICMP.TypeCode.Type() != packet.ICMPEchoReply || dec.Src() != dst.Addr().String() || dec.Dst() != src.Addr().String() {
					t.Fatalf("explain says echo reply from %s; the worker sent %s -> %s %v", dst.Addr(), dec.Src(), dec.Dst(), dec.ICMP)
				}
			default:
				t.Fatalf("response %v", d.Response)
			}
		})
	}
}

// addrOf is a decoded IPv4 address as netip has it.
func addrOf(ip net.IP) netip.Addr { a, _ := netip.AddrFromSlice(ip.To4()); return a }
