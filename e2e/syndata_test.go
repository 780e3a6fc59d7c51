package e2e

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/fastnat/fastnat/internal/testnet"
)

// A SYN carrying data (hping3 -S -d, nmap --data-length, TCP Fast Open)
// opens its connection through both NATs: the client, whose kernel does
// not take data on a SYN without Fast Open, acknowledges only ISN+1 in
// its SYN/ACK, and that SYN/ACK reaches the inside host. fastnat used to
// require the SYN/ACK to acknowledge the data too, dropped it as
// tcp_out_of_window, and nmap saw the port filtered.

func TestFastnatSYNWithData(t *testing.T) {
	requireFastnat(t)
	requirePackage(t, "hping3", "hping3")
	requirePackage(t, "nmap", "nmap")
	synWithData(t, fastnatRouter)
}

// TestKernelSYNWithData is the proof that synWithData expects what a
// Linux NAT does.
func TestKernelSYNWithData(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "hping3", "hping3")
	requirePackage(t, "nmap", "nmap")
	synWithData(t, kernelRouter)
}

func synWithData(t *testing.T, r router) {
	ctx := testContext(t)
	topo, sock := routerTopology(t, r, testnet.Options{InsideHost: true}, "")
	listenOpen(t, topo.Client)
	client, port := testnet.ClientAddr.String(), fmt.Sprint(scanOpen)
	synAcks := arrivals(t, topo.Host, "ip saddr "+client+" tcp sport "+port+" tcp flags & (syn|ack) == syn|ack")
	run(t, ctx, true, topo.Host, "hping3", "-c", "1", "-q", "-S", "-d", "100", "-p", port, client)
	if n := synAcks(); n != 1 {
		t.Errorf("hping3 -S -d 100: %d SYN/ACKs reached the inside host, want 1", n)
	}
	out := run(t, ctx, false, topo.Host, "nmap", "-n", "-Pn", "-sS", "--data-length", "50", "--max-retries", "1", "-p", port, client)
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d/tcp +open `, scanOpen)).MatchString(out) {
		t.Errorf("nmap -sS --data-length 50: want %d/tcp open", scanOpen)
	}
	if sock != "" {
		if drops, _ := fastnatStats(t, sock); drops["tcp_out_of_window"] != 0 {
			t.Errorf("tcp_out_of_window drops %d, want none (%v)", drops["tcp_out_of_window"], drops)
		}
	}
}
