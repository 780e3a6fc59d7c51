package nat

import (
	"testing"

	"github.com/fastnat/fastnat/internal/testutil"
	"github.com/fastnat/fastnat/packet"
)

// TestICMPSessionTakesItsOwnKinds: a query session carries requests in
// the direction that opened it and replies in the other, and nothing
// else, though its tuple — addresses and identifier — is all a lookup
// compares. An outside host that sends an echo request to the public
// address with a live ping's identifier (nping --icmp-id) is answered by
// the NAT itself, as the kernel's NAT answers from its own stack, and
// does not reach the inside host; a timestamp request likewise goes
// nowhere inside; an inside host's echo reply on its own session's
// tuple starts nothing; and ICMP types fastnat does not translate, whose
// tuple reads identifier 0 (a router solicitation), do not pass on a
// session of identifier 0 (nping's address mask request). Each forwarded
// frame is checked by gopacket.
func TestICMPSessionTakesItsOwnKinds(t *testing.T) {
	g := newRig(t, testRules(t))
	r, d := g.send(Inside, echo(t, hostA, remote, 7, false))
	if r.Verdict != Forward || d.ICMP == nil {
		t.Fatalf("echo request: %v", r.Verdict)
	}
	pub := d.ICMP.Id
	if r, d := g.send(Outside, echo(t, remote, pubEIM, pub, true)); r.Verdict != Forward || d.Dst() != hostA || d.ICMP.Id != 7 {
		t.Fatalf("echo reply: %v %v", r.Verdict, d)
	}

	// An echo request from outside with the session's public identifier:
	// the public address answers it, back to the sender.
	r, d = g.send(Outside, echo(t, remote, pubEIM, pub, false))
	if r.Verdict != Forward || r.Out != Outside || d.Dst() != remote || d.Src() != pubEIM ||
		d.ICMP.TypeCode.Type() != packet.ICMPEchoReply {
		t.Fatalf("outside echo request with the session's identifier: %v out %v, %v; want the NAT's own echo reply", r.Verdict, r.Out, d)
	}
	// A timestamp request from outside with it goes nowhere.
	if r := g.process(Outside, testutil.ICMPMessage(t, remote, pubEIM, packet.ICMPTimestamp, pub, 1)); r.Verdict == Forward {
		t.Fatalf("outside timestamp request with the session's identifier forwarded (out %v)", r.Out)
	}
	// An echo reply from inside on the session's own tuple starts nothing.
	if r := g.process(Inside, echo(t, hostA, remote, 7, true)); r.Verdict == Forward {
		t.Fatal("inside echo reply on its request's tuple forwarded")
	}

	// Identifier 0: nping's address mask request opens a session; a
	// router solicitation, which fastnat does not translate, does not
	// pass on it, nor (matching nothing) an advertisement from outside.
	r, d = g.send(Inside, testutil.ICMPMessage(t, hostA, remote, packet.ICMPAddressMaskRequest, 0, 0))
	if r.Verdict != Forward {
		t.Fatalf("address mask request: %v", r.Verdict)
	}
	t.Logf("identifier 0 leaves as %d", d.ICMP.Id)
	const routerAdvertisement, routerSolicitation = 9, 10
	if r := g.process(Inside, testutil.ICMPMessage(t, hostA, remote, routerSolicitation, 0, 0)); r.Verdict != DropICMPUnsupported {
		t.Fatalf("router solicitation: %v, want %v", r.Verdict, DropICMPUnsupported)
	}
	if r := g.process(Outside, testutil.ICMPMessage(t, remote, pubEIM, routerAdvertisement, 0, 0)); r.Verdict != DropICMPUnsupported {
		t.Fatalf("router advertisement: %v, want %v", r.Verdict, DropICMPUnsupported)
	}
	// The sessions still work.
	if r, d := g.send(Outside, echo(t, remote, pubEIM, pub, true)); r.Verdict != Forward || d.Dst() != hostA {
		t.Fatalf("echo reply after: %v", r.Verdict)
	}
}
