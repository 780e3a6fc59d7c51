package pipeline

import (
	"bytes"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	. "github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/nat"
	"github.com/fastnat/fastnat/packet"
)

// checkGRE decodes a written GRE frame with gopacket: the outer header
// (its checksum is verified by Decode), the GRE header, and the tunnelled
// IPv4 packet and ICMP echo, which address-only translation must leave as
// they were sent.
func checkGRE(t *testing.T, d *Decoded, src, dst string) {
	t.Helper()
	if d.Src() != src || d.Dst() != dst || d.IP.Protocol != layers.IPProtocolGRE || d.IP.TTL != 63 {
		t.Fatalf("GRE written %s -> %s proto %v ttl %d, want %s -> %s", d.Src(), d.Dst(), d.IP.Protocol, d.IP.TTL, src, dst)
	}
	p := gopacket.NewPacket(d.Raw, layers.LayerTypeEthernet, gopacket.Default)
	gre, ok := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
	if !ok || gre.Protocol != layers.EthernetTypeIPv4 || gre.ChecksumPresent || gre.Version != 0 {
		t.Fatalf("GRE header %+v", gre)
	}
	var inner *layers.IPv4
	for _, l := range p.Layers() {
		if ip, ok := l.(*layers.IPv4); ok && ip != d.IP {
			inner = ip
		}
	}
	if inner == nil || inner.SrcIP.String() != "10.99.0.1" || inner.DstIP.String() != "10.99.0.2" {
		t.Fatalf("tunnelled packet %+v", inner)
	}
	CheckChecksums(t, append(append([]byte(nil), d.Raw[:14]...), d.Raw[14+20+4:]...)) // the tunnelled packet, framed
	ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || ic.Id != 7 || ic.Seq != 1 || !bytes.Equal(ic.Payload, []byte("fastnat-gre")) {
		t.Fatalf("tunnelled echo %+v", ic)
	}
}

// GRE from inside goes out from the public address with only the outer
// IPv4 header changed and its reply comes back; unsolicited GRE, and AH,
// are dropped and counted; an ICMP error quoting the translated GRE
// packet is translated back to the inside host.
func TestGREConversation(t *testing.T) {
	r := newRig(t, rigOpts{rules: caseRules(t, true, 1024, 65535)})
	out := r.one(r.in, r.out, GRE(t, inClient, remote1))
	checkGRE(t, out, public, remote1)
	checkGRE(t, r.one(r.out, r.in, GRE(t, remote1, public)), remote1, inClient)

	r.none(r.out, GRE(t, remote2, public))
	if got := r.verdicts(nat.DropUnsolicited); got != 1 {
		t.Fatalf("unsolicited GRE drops %d, want 1", got)
	}
	r.none(r.in, IPProto(t, inClient, remote1, packet.ProtoAH, make([]byte, 24)))
	if got := r.verdicts(nat.DropProtocol); got != 1 {
		t.Fatalf("AH drops %d, want 1", got)
	}

	// Fragmentation needed about the GRE packet as it left.
	e := r.one(r.out, r.in, ICMPError(t, remote1, public, 3, 4, out.Raw, 8))
	if e.Dst() != inClient || e.ICMP == nil {
		t.Fatalf("ICMP error about GRE went to %s", e.Dst())
	}
	q := e.ICMP.Payload
	if len(q) < 20 || q[9] != packet.ProtoGRE || !bytes.Equal(q[12:16], []byte{10, 77, 0, 5}) {
		t.Fatalf("quoted header % x", q[:min(len(q), 20)])
	}
	if packet.Fold(packet.Sum(q[:20], 0)) != 0xffff {
		t.Fatalf("quoted header checksum wrong: % x", q[:20])
	}
}
