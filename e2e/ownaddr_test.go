package e2e

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// From the inside host, sent to the router's MAC: datagrams spoofing the
// router's own addresses as their source (its inside and outside
// interfaces' and the public address) and datagrams to the directed
// broadcast addresses of the outside and inside prefixes. A router
// forwards none of them — the kernel's routing finds a local source a
// martian and delivers a directed broadcast to itself (bc_forwarding 0)
// — so nothing reaches the outside peer or the inside server, while an
// ordinary datagram sent the same way is translated to the peer.

// TestFastnatOwnSourceAndDirectedBroadcast: fastnat counts what reaches it
// as nat_martian (the inside address: the XDP program passes the others,
// whose sources are outside the inside prefix, to the kernel, which drops
// them) and nat_directed_broadcast, and makes no session for them.
func TestFastnatOwnSourceAndDirectedBroadcast(t *testing.T) {
	requireFastnat(t)
	topo := ownSourceAndBroadcast(t, fastnatRouter)
	sock := fastnatSocket(t, topo)
	drops, _ := fastnatStats(t, sock)
	if drops["nat_martian"] != 1 || drops["nat_directed_broadcast"] != 2 {
		t.Errorf("nat_martian %d, nat_directed_broadcast %d; want 1 and 2", drops["nat_martian"], drops["nat_directed_broadcast"])
	}
	if out := fastnatShow(t, sock, "sessions"); !strings.Contains(out, "Total sessions found: 1\n") {
		t.Errorf("want only the ordinary datagram's session:\n%s", out)
	}
}

// TestKernelOwnSourceAndDirectedBroadcast is the proof that
// ownSourceAndBroadcast expects what a Linux NAT does.
func TestKernelOwnSourceAndDirectedBroadcast(t *testing.T) {
	requireHarness(t)
	ownSourceAndBroadcast(t, kernelRouter)
}

// ownSourceAndBroadcast sends the datagrams through router r and checks
// the wire: the ordinary one reaches the peer from the public address,
// no other reaches the peer or the server. It returns the topology.
func ownSourceAndBroadcast(t *testing.T, r router) *testnet.Topology {
	topo := r.newTopology(t, true)
	r.setup(t, topo, false, nil)
	routerIn, hostMAC := insideMACs(t, topo)
	caps := startCaptures(t, topo.Client, topo.Server)
	host, client := testnet.HostAddr.String(), testnet.ClientAddr.String()
	frames := [][]byte{
		// Sources of the router's own.
		forgedUDP(t, routerIn, hostMAC, testnet.RouterInsideAddr.String(), 5000, client, 7000),
		forgedUDP(t, routerIn, hostMAC, testnet.RouterOutsideAddr.String(), 5000, client, 7000),
		forgedUDP(t, routerIn, hostMAC, testnet.PublicAddr.String(), 5000, client, 7000),
		// Directed broadcasts of the outside and inside prefixes.
		forgedUDP(t, routerIn, hostMAC, host, 5000, "198.18.0.255", 7000),
		forgedUDP(t, routerIn, hostMAC, host, 5000, "10.77.0.255", 7000),
	}
	// The ordinary datagram, marked apart.
	control := forgedUDP(t, routerIn, hostMAC, host, 5001, client, 7000)
	if n, err := testnet.SendFrames(topo.Host, testnet.NodeLink, append(frames, control)); err != nil || n != len(frames)+1 {
		t.Fatalf("sent %d of %d frames: %v", n, len(frames)+1, err)
	}
	time.Sleep(500 * time.Millisecond)
	arrived := false
	for i, c := range caps {
		_ = c.Close()
		for _, f := range c.Frames() {
			// Only the datagrams themselves: the peer's port unreachable
			// for the ordinary one quotes the mark too.
			if f.Outgoing || !bytes.Contains(f.Data, martianMark) || bytes.Equal(f.Data[6:12], hostMAC) || f.Data[23] != 17 {
				continue
			}
			// Through the router: the ordinary datagram to the peer, from
			// the public address and source port 5001 (kept).
			if i == 0 && len(f.Data) >= 14+28 && net.IP(f.Data[26:30]).Equal(testnet.PublicAddr.AsSlice()) && f.Data[34] == 5001>>8 && f.Data[35] == 5001&0xff {
				arrived = true
				continue
			}
			t.Errorf("%s: a forged frame came through the router to %s: % x", r.name, []string{"the peer", "the server"}[i], f.Data)
		}
	}
	if !arrived {
		t.Errorf("%s: the ordinary datagram did not reach the peer translated", r.name)
	}
	return topo
}

// insideMACs returns the router's inside MAC and the inside host's: the
// addresses of a frame the host forges to the router.
func insideMACs(t *testing.T, topo *testnet.Topology) (routerIn, host net.HardwareAddr) {
	t.Helper()
	routerIn, err := testnet.LinkMAC(topo.Router, testnet.RouterInsideLink)
	if err != nil {
		t.Fatal(err)
	}
	if host, err = testnet.LinkMAC(topo.Host, testnet.NodeLink); err != nil {
		t.Fatal(err)
	}
	return routerIn, host
}
