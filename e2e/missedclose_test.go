package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatSYNAfterMissedClose: a connection from inside to a server
// outside ends with both endpoints resetting it abortively (SO_LINGER 0)
// while each namespace's nftables drops its RST, so the NAT sees no end
// and still holds the session ESTABLISHED. The client then connects again
// from the same port to the same server — the server, holding nothing,
// answers the SYN with a SYN/ACK the old connection's window does not
// cover. The kernel's conntrack remembers the SYN it ignored (last_end)
// and takes the new connection up; so must fastnat, instead of dropping
// the SYN/ACK until the established timeout runs out.
func TestFastnatSYNAfterMissedClose(t *testing.T) {
	requireFastnat(t)
	synAfterMissedClose(t, fastnatRouter)
}

// TestKernelSYNAfterMissedClose is the same through the kernel's NAT.
func TestKernelSYNAfterMissedClose(t *testing.T) {
	requireHarness(t)
	synAfterMissedClose(t, kernelRouter)
}

func synAfterMissedClose(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, false)
	r.setup(t, topo, false, nil)
	const port = 7102
	server := netip.AddrPortFrom(testnet.ClientAddr, port)
	local := netip.AddrPortFrom(netip.IPv4Unspecified(), 40222)
	ln, err := testnet.ListenTCP(topo.Client, server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	connect := func(when string) (inside, outside net.Conn) {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		inside, err := testnet.DialTCPFrom(dctx, topo.Server, local, server)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		_ = ln.SetDeadline(time.Now().Add(10 * time.Second))
		outside, err = ln.Accept()
		if err != nil {
			t.Fatalf("%s: accept: %v", when, err)
		}
		roundTrip(t, inside, outside, when)
		return inside, outside
	}
	inside, outside := connect("the first connection")

	// Both ends reset; neither RST leaves its namespace.
	drop := map[string]string{
		topo.Server: fmt.Sprint("tcp dport ", port),
		topo.Client: fmt.Sprint("tcp sport ", port),
	}
	for ns, match := range drop {
		testnet.MustRun(t, ns, "nft", "add table inet missedclose")
		testnet.MustRun(t, ns, "nft", "add chain inet missedclose out { type filter hook output priority 0 ; }")
		testnet.MustRun(t, ns, "nft", "add rule inet missedclose out "+match+" tcp flags rst drop")
	}
	for _, c := range []net.Conn{inside, outside} {
		_ = c.(*net.TCPConn).SetLinger(0)
		_ = c.Close()
	}
	for ns := range drop {
		testnet.MustRun(t, ns, "nft", "delete table inet missedclose")
	}

	inside, outside = connect("a new connection from the same port")
	defer inside.Close()
	defer outside.Close()
}
