package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
)

// A RST forged from outside into a live connection with a sequence number
// in the inside host's window but not at its next expected one (RFC 5961
// §3.2): the inside host answers it with a challenge ACK and carries on.
// conntrack keeps such a connection ESTABLISHED (only a RST at the exact
// number closes it), so a blind forger who lands in the window cannot
// make an idle connection's entry expire on CLOSE's 10 s timeout; nor
// may fastnat's session: it stays ESTABLISHED, and once the challenge ACK
// has passed its timeout is the established one again.

// unconfirmedRSTOffset is how far past the peer's next sequence number the
// forged RST lies: well inside the inside host's window (64 KiB or more),
// never at it.
const unconfirmedRSTOffset = 1000

func TestFastnatUnconfirmedRST(t *testing.T) {
	requireFastnat(t)
	c := openForgeryConn(t, fastnatRouter)
	sock := fastnatSocket(t, c.topo)
	session := func() (state, timeout string) {
		t.Helper()
		out := fastnatShow(t, sock, "sessions", "--verbose")
		st := regexp.MustCompile(`(?m)^State: (\S+)$`).FindStringSubmatch(out)
		to := regexp.MustCompile(`Timeout: (\S+)`).FindStringSubmatch(out)
		if st == nil || to == nil {
			t.Fatalf("no session state or timeout in:\n%s", out)
		}
		return st[1], to[1]
	}
	state, established := session()
	if state != "TCP_ESTABLISHED" {
		t.Fatalf("session %s after the handshake and a round trip", state)
	}
	seg := lastSegment(t, c.capture, c.server)
	sendForged(t, c.topo, seg, seg.next+unconfirmedRSTOffset, layers.TCP{RST: true}, nil)
	// The inside host's challenge ACK passes and restores the timeout.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, to := session()
		if st != "TCP_ESTABLISHED" {
			t.Fatalf("session %s after a RST in the window but not at RCV.NXT, want TCP_ESTABLISHED", st)
		}
		if to == established {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session timeout %s 5 s after the RST, want the established %s back", to, established)
		}
		time.Sleep(100 * time.Millisecond)
	}
	roundTrip(t, c.inside, c.outside, "after the unconfirmed RST")
}

// TestKernelUnconfirmedRST is the proof that TestFastnatUnconfirmedRST
// expects what a Linux NAT does: conntrack's entry stays ESTABLISHED.
func TestKernelUnconfirmedRST(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "conntrack", "conntrack")
	c := openForgeryConn(t, kernelRouter)
	seg := lastSegment(t, c.capture, c.server)
	sendForged(t, c.topo, seg, seg.next+unconfirmedRSTOffset, layers.TCP{RST: true}, nil)
	time.Sleep(500 * time.Millisecond)
	out, _ := testnet.Run(testContext(t), c.topo.Router, "conntrack", "-L", "-p", "tcp", "--dport", "7100")
	if !strings.Contains(string(out), "ESTABLISHED") {
		t.Fatalf("conntrack after a RST in the window but not at RCV.NXT:\n%s\nwant ESTABLISHED", out)
	}
	roundTrip(t, c.inside, c.outside, "after the unconfirmed RST")
}
