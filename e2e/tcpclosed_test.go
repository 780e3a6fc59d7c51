package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// A connection reset once established keeps its NAT state for the short
// CLOSE timeout, not the 4-minute transitory one: conntrack keeps a CLOSE
// entry nf_conntrack_tcp_timeout_close (10 s), fastnat a CLOSED session
// tcp_closed (10 s). Both are set to closedTimeout here to keep the test
// short: after the server resets the connection (SO_LINGER 0) the state
// is there, CLOSED, and gone a little after closedTimeout.

const closedTimeout = 2 // seconds

func TestFastnatResetSessionTimeout(t *testing.T) {
	requireFastnat(t)
	resetSessionTimeout(t, fastnatRouter)
}

// TestKernelResetSessionTimeout is the proof that resetSessionTimeout
// expects what a Linux NAT does.
func TestKernelResetSessionTimeout(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "conntrack", "conntrack")
	resetSessionTimeout(t, kernelRouter)
}

func resetSessionTimeout(t *testing.T, r router) {
	ctx := testContext(t)
	topo, sock := routerTopology(t, r, testnet.Options{InsideHost: true},
		fmt.Sprintf("\n[timeouts]\ntcp_closed = \"%ds\"\n", closedTimeout))
	if sock == "" {
		testnet.MustRun(t, topo.Router, "sysctl", "-qw", fmt.Sprint("net.netfilter.nf_conntrack_tcp_timeout_close=", closedTimeout))
	}
	const port = 7103
	server := netip.AddrPortFrom(testnet.ClientAddr, port)
	ln, err := testnet.ListenTCP(topo.Client, server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	inside, err := testnet.DialTCP(dctx, topo.Host, server)
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	_ = ln.SetDeadline(time.Now().Add(10 * time.Second))
	outside, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, inside, outside, "before the reset")
	_ = outside.(*net.TCPConn).SetLinger(0)
	_ = outside.Close()
	_ = inside.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := inside.Read(make([]byte, 16)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("inside read after the server's reset: %v, want connection reset", err)
	}
	reset := time.Now()
	if st := closedState(t, topo, sock, port); st != "TCP_CLOSED" && st != "CLOSE" {
		t.Fatalf("state after the reset %q, want CLOSED", st)
	}
	for closedState(t, topo, sock, port) != "" {
		if time.Since(reset) > (closedTimeout+3)*time.Second {
			t.Fatalf("state outlived the %ds closed timeout by 3 s", closedTimeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if gone := time.Since(reset); gone < (closedTimeout-1)*time.Second {
		t.Errorf("state gone %v after the reset, before the %ds closed timeout", gone, closedTimeout)
	}
}

// closedState is the state of the NAT's TCP session to the client's port
// (fastnat's over its control socket sock, the kernel's conntrack entry),
// "" when it has none.
func closedState(t *testing.T, topo *testnet.Topology, sock string, port uint16) string {
	t.Helper()
	if sock == "" {
		out, _ := testnet.Run(testContext(t), topo.Router, "conntrack", "-L", "-p", "tcp", "--dport", fmt.Sprint(port))
		if m := regexp.MustCompile(`(?m)^tcp +\d+ \d+ (\S+) `).FindSubmatch(out); m != nil {
			return string(m[1])
		}
		return ""
	}
	for _, s := range tcpSessions(t, sock) {
		if s.dst.Port() == port {
			return s.state
		}
	}
	return ""
}
