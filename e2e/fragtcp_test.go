package e2e

import (
	"encoding/json"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
	"github.com/fastnat/fastnat/metrics"
)

// TestFragmentedTCPTransfer, through fastnat and through the kernel's NAT
// twin: iperf3 sends 2 MB from the outside to an inside server published
// by a nat server rule, while the outside host's route to the public
// address is locked at fragMTU, so that every segment with data leaves it
// as DF-clear IPv4 fragments (12 of them for a 536-byte segment). The
// tracker sees only each segment's first fragment, while the inside
// server acknowledges the segments whole: the transfer completes, and
// fastnat's tracker drops nothing (the end of a fragmented segment is
// open, trOpen, until its sender's next segment).
//
// The outside host's veth gets a pfifo qdisc. Without one (noqueue) a
// fragment the router's side of the veth cannot take at once — native
// XDP's 256-frame ring, full under a burst of a large congestion window
// times 12 fragments — is dropped at the sender and reported to its IP
// fragmentation (IpFragFails, the veth's TX dropped), after which the
// sender's TCP ignores the receiver's ACKs as beyond what it believes it
// sent (TcpExtTCPACKSkippedChallenge) and stalls, with fastnat counting
// no drop; the kernel's twin takes frames through the 1000-frame backlog
// and never fills it here. With a qdisc the veth pushes back instead
// (Linux 6.17+) and nothing is lost on the sender.
func TestFragmentedTCPTransfer(t *testing.T) {
	if err := testnet.CheckTools("iperf3"); err != nil {
		t.Skipf("e2e: %v; install the Debian package iperf3 (.ci/run does)", err)
	}
	bothRouters(t, fragmentedTCPTransfer)
}

func fragmentedTCPTransfer(t *testing.T, r router) {
	topo := r.newTopology(t, false)
	fwd := []testnet.Forward{{Proto: "tcp", Public: netip.AddrPortFrom(testnet.PublicAddr, iperfPort), Inside: netip.AddrPortFrom(testnet.ServerAddr, iperfPort)}}
	r.setup(t, topo, false, fwd)
	topo.MustStart(t, topo.Server, "iperf3", "-s", "-p", strconv.Itoa(iperfPort))
	testnet.MustRun(t, topo.Client, "sysctl", "-q", "-w", "net.ipv4.tcp_min_snd_mss="+strconv.Itoa(fragMSS))
	testnet.MustRun(t, topo.Client, "ip", "route", "replace", testnet.PublicAddr.String()+"/32", "dev", testnet.NodeLink,
		"mtu", "lock", strconv.Itoa(fragMTU))
	testnet.MustRun(t, topo.Client, "tc", "qdisc", "replace", "dev", testnet.NodeLink, "root", "pfifo", "limit", "10000")
	creates := func() uint64 {
		n, err := testnet.SNMPCounter(topo.Client, "Ip", "FragCreates")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := creates()
	ctx := testContext(t)
	args := []string{"-c", testnet.PublicAddr.String(), "-p", strconv.Itoa(iperfPort), "-n", "2M", "-J", "--connect-timeout", "3000"}
	var out []byte
	var err error
	start := time.Now()
	for try := 0; try < 10; try++ {
		// A stall ends with timeout's exit status; a server not
		// listening yet is tried again.
		if out, err = testnet.Run(ctx, topo.Client, "timeout", append([]string{"15", "iperf3"}, args...)...); err == nil || time.Since(start) > 5*time.Second {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if r.name == fastnatRouter.name {
		var s metrics.Snapshot
		if err := json.Unmarshal([]byte(fastnatShow(t, fastnatSocket(t, topo), "stats", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		for _, w := range s.Workers {
			for _, reason := range []string{"nat_tcp_ack_out_of_window", "nat_tcp_out_of_window", "nat_frag_no_session", "frag_held_evicted", "frag_held_expired"} {
				if n := w.Drops[reason]; n != 0 {
					t.Errorf("fastnat dropped %d frames as %s", n, reason)
				}
			}
		}
	}
	if err != nil {
		t.Fatalf("iperf3 %v: %v\n%s", args, err, tailString(string(out), 2048))
	}
	var res struct {
		End struct {
			SumSent struct {
				Bytes int64 `json:"bytes"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("iperf3 output: %v\n%s", err, tailString(string(out), 2048))
	}
	if res.End.SumSent.Bytes < 2<<20 {
		t.Errorf("iperf3 sent %d bytes, want 2 MiB", res.End.SumSent.Bytes)
	}
	if n := creates() - before; n < 1000 {
		t.Errorf("the client made %d fragments", n)
	}
	t.Logf("2 MiB in fragments in %v", elapsed.Round(time.Millisecond))
}
