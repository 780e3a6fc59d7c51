package e2e

import (
	"strings"
	"sync"
	"testing"

	"github.com/fastnat/fastnat/internal/testnet"
)

// Two inside hosts ping the same outside host at once with the same ICMP
// identifier (ping -e): the NAT gives their flows distinct public
// identifiers, so each gets every one of its own replies and none of the
// other's (RFC 5508 §3.1).

func TestFastnatSameEchoIdentifier(t *testing.T) {
	requireFastnat(t)
	requireRouterTools(t)
	sameEchoIdentifier(t, fastnatRouter)
}

// TestKernelSameEchoIdentifier is the proof that sameEchoIdentifier
// expects what a Linux NAT does.
func TestKernelSameEchoIdentifier(t *testing.T) {
	requireHarness(t)
	requireRouterTools(t)
	sameEchoIdentifier(t, kernelRouter)
}

func sameEchoIdentifier(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	r.setup(t, topo, false, nil)
	hosts := []string{topo.Server, topo.Host}
	outs := make([]string, len(hosts))
	var wg sync.WaitGroup
	for i, ns := range hosts {
		wg.Go(func() {
			out, _ := testnet.Run(ctx, ns, "ping", "-n", "-c", "20", "-i", "0.05", "-W", "2", "-e", "4242", testnet.ClientAddr.String())
			outs[i] = string(out)
		})
	}
	wg.Wait()
	for i, out := range outs {
		t.Logf("%s:\n%s", hosts[i], out)
		if !strings.Contains(out, " 20 received") || strings.Contains(out, "DUP!") || strings.Contains(out, "duplicates") {
			t.Errorf("%s did not get exactly its 20 replies", hosts[i])
		}
	}
}
