package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// An ICMP query session carries its own kinds only: requests the way it
// was opened, replies back. While the inside host pings the client, the
// client sends an echo request to the public address with the identifier
// the ping leaves the NAT with (nping --icmp-id): the NAT answers it
// itself and the inside host never sees it; and after the inside host's
// address mask request with identifier 0, its router solicitation (type
// 10, which has no identifier: its tuple reads 0) does not leave as the
// public address. Conntrack keys ICMP by type too, so through the kernel
// the request reaches the router's own stack, which answers, and the
// solicitation matches no entry (the kernel then forwards it untranslated,
// its source the inside host's: the twin's forward chain passes anything
// from inside; fastnat drops it as a type it does not translate).
// Through fastnat the request used to reach the inside host, which
// answered it, and the solicitation left translated on the mask
// request's session.

func TestFastnatICMPQueryKinds(t *testing.T) {
	requireFastnat(t)
	requirePackage(t, "nmap", "nping")
	icmpQueryKinds(t, fastnatRouter)
}

// TestKernelICMPQueryKinds is the proof that icmpQueryKinds expects what
// a Linux NAT does.
func TestKernelICMPQueryKinds(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "nmap", "nping")
	icmpQueryKinds(t, kernelRouter)
}

func icmpQueryKinds(t *testing.T, r router) {
	ctx := testContext(t)
	topo, _ := routerTopology(t, r, testnet.Options{InsideHost: true}, "")
	client, public := testnet.ClientAddr.String(), testnet.PublicAddr.String()
	// The inside host counts echo requests from the client, the client
	// router solicitations from the public address.
	echoes := arrivals(t, topo.Host, "ip saddr "+client+" icmp type echo-request")
	solicitations := arrivals(t, topo.Client, "ip saddr "+public+" icmp type router-solicitation")

	// The ping's public identifier, as the client sees it.
	capture, err := topo.Start(topo.Client, "tcpdump", "-i", testnet.NodeLink, "-nn", "-l", "-c", "1",
		"icmp[icmptype] = icmp-echo and src host "+public)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // tcpdump attaches
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ping := testnet.Command(pctx, topo.Host, "ping", "-n", "-i", "0.2", "-w", "10", client)
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}
	defer ping.Wait()
	defer cancel()
	select {
	case <-capture.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("no echo request from %s reached the client:\n%s", public, capture.Output())
	}
	m := regexp.MustCompile(`ICMP echo request, id (\d+),`).FindStringSubmatch(capture.Output())
	if m == nil {
		t.Fatalf("tcpdump:\n%s", capture.Output())
	}
	out := run(t, ctx, true, topo.Client, "nping", "-q", "-c", "1", "--icmp", "--icmp-type", "8", "--icmp-id", m[1], public)
	if !strings.Contains(out, "Rcvd: 1 ") {
		t.Errorf("the NAT did not answer the echo request to %s with the ping's identifier %s", public, m[1])
	}
	cancel()

	if n := echoes(); n != 0 {
		t.Errorf("the inside host received %d echo requests from the client, want none", n)
	}

	// Identifier 0.
	run(t, ctx, true, topo.Host, "nping", "-q", "-c", "1", "--icmp", "--icmp-type", "17", "--icmp-id", "0", client)
	run(t, ctx, true, topo.Host, "nping", "-q", "-c", "1", "--icmp", "--icmp-type", "10", client)
	if n := solicitations(); n != 0 {
		t.Errorf("%d router solicitations reached the client from %s, want none", n, public)
	}
}
