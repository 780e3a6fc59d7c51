package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// TestFastnatMultiQueue: veth pairs with two queues each give fastnat two
// workers, one per queue, each owning its queue on both interfaces; UDP
// from many source ports spreads over the queues, and both workers carry
// traffic at once (their totals, logged at stop, both show translated
// frames).
func TestFastnatMultiQueue(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	r := fastnatRouter
	r.opts.Queues = 2
	topo := r.newTopology(t, false)
	// veth delivers to the rx queue its peer transmitted on only on its
	// NAPI path, which native XDP turns on; in generic mode every packet
	// looks like queue 0 to XDP. (A real multi-queue NIC spreads by RSS.)
	fastnatXDPMode = "native"
	t.Cleanup(func() { fastnatXDPMode = "auto" })
	r.setup(t, topo, true, []testnet.Forward{{
		Proto:  "udp",
		Public: netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort),
		Inside: netip.AddrPortFrom(testnet.ServerAddr, 7),
	}})
	var fastnat *testnet.Process
	for _, p := range topo.Processes() {
		if p.Name == fastnatBinary(t) {
			fastnat = p
		}
	}
	if fastnat == nil {
		t.Fatal("fastnat process not found")
	}
	for q := 0; q < 2; q++ {
		if !regexp.MustCompile(fmt.Sprintf(`msg=serving interface=outside queue=%d worker=%d`, q, q)).MatchString(fastnat.Output()) {
			t.Fatalf("no worker serving queue %d:\n%s", q, fastnat.Output())
		}
	}
	testnet.MustUDPEcho(t, topo.Server, netip.AddrPortFrom(testnet.ServerAddr, 7))
	// 32 flows (one socket each, so 32 source ports) of 10 datagrams.
	for f := 0; f < 32; f++ {
		got, err := testnet.UDPExchange(ctx, topo.Client, netip.AddrPortFrom(testnet.PublicAddr, udpEchoPort), payloads(10), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if got != 10 {
			t.Errorf("flow %d: %d of 10 echoes", f, got)
		}
	}
	if err := fastnat.Stop(); err != nil {
		t.Fatal(err)
	}
	totals := regexp.MustCompile(`msg="worker totals" worker=(\d+) rx=(\d+) tx=(\d+)`).FindAllStringSubmatch(fastnat.Output(), -1)
	if len(totals) != 2 {
		t.Fatalf("want totals of 2 workers, got %d:\n%s", len(totals), fastnat.Output())
	}
	for _, m := range totals {
		tx, _ := strconv.Atoi(m[3])
		t.Logf("worker %s: rx %s tx %s", m[1], m[2], m[3])
		if tx < 20 {
			t.Errorf("worker %s forwarded only %d frames: traffic did not spread over both queues", m[1], tx)
		}
	}
}
