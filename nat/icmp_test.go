package nat

import (
	"testing"

	"github.com/fastnat/fastnat/internal/testutil"
)

// TestICMPErrorMustGoToQuotedSender: an ICMP error is translated only when
// it is addressed to the sender of the packet it quotes, as the kernel's
// conntrack requires (outer daddr == inner saddr); one sent to any other
// address routed through the NAT — an inside host, another public address
// — is dropped, whichever side it comes from, and reaches nobody.
func TestICMPErrorMustGoToQuotedSender(t *testing.T) {
	g := newRig(t, testRules(t))
	r, d := g.send(Inside, udp(t, hostA+":4000", remote+":53"))
	if r.Verdict != Forward {
		t.Fatalf("outbound: %v", r.Verdict)
	}
	pub := d.Src()
	r, d = g.send(Outside, udp(t, remote+":53", pub))
	if r.Verdict != Forward {
		t.Fatalf("reply: %v", r.Verdict)
	}
	toInside := d.Raw // remote:53 -> hostA:4000 as hostA got it

	// From outside: the error quotes hostA's translated packet.
	quoted := udp(t, pub, remote+":53")
	for _, dst := range []string{"198.18.0.99", hostB, hostA, pubAPDM} {
		if r, _ := g.send(Outside, testutil.ICMPError(t, "198.18.0.77", dst, 3, 3, quoted, -1)); r.Verdict != DropICMPNoSession {
			t.Errorf("error from outside to %s: %v, want %v", dst, r.Verdict, DropICMPNoSession)
		}
	}
	r, d = g.send(Outside, testutil.ICMPError(t, "198.18.0.77", pubEIM, 3, 3, quoted, -1))
	if r.Verdict != Forward || d.Dst() != hostA {
		t.Fatalf("error from outside to %s: %v, want forwarded to %s", pubEIM, r.Verdict, hostA)
	}

	// From inside: hostA (or a forger beside it) quoting what hostA got.
	for _, dst := range []string{remote2, pubEIM, hostB} {
		if r, _ := g.send(Inside, testutil.ICMPError(t, hostA, dst, 3, 3, toInside, -1)); r.Verdict != DropICMPNoSession {
			t.Errorf("error from inside to %s: %v, want %v", dst, r.Verdict, DropICMPNoSession)
		}
	}
	r, d = g.send(Inside, testutil.ICMPError(t, hostA, remote, 3, 3, toInside, -1))
	if r.Verdict != Forward || d.Dst() != remote || d.Src() != pubEIM {
		t.Fatalf("error from inside to %s: %v, want forwarded from %s", remote, r.Verdict, pubEIM)
	}
}
