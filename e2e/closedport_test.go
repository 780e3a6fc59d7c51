package e2e

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/fastnat/fastnat/internal/testnet"
)

// A closed port of the public address answers every TCP segment but a
// RST as the kernel's stack does (RFC 9293 §3.10.7.1): a segment with
// ACK with a bare RST at the acknowledged sequence number, one without
// with RST|ACK acknowledging its sequence space. fastnat used to answer
// only a SYN, so nmap's ACK scan saw the public address's ports filtered
// and its FIN, NULL and XMAS scans open|filtered, where through the
// kernel's NAT they are unfiltered and closed. hping3 -V shows the
// answer's flags, sequence and acknowledgment numbers, which must be the
// kernel's.

func TestFastnatClosedPortSegments(t *testing.T) {
	requireFastnat(t)
	requirePackage(t, "hping3", "hping3")
	requirePackage(t, "nmap", "nmap")
	closedPortSegments(t, fastnatRouter)
}

// TestKernelClosedPortSegments is the proof that closedPortSegments
// expects what a Linux NAT does.
func TestKernelClosedPortSegments(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "hping3", "hping3")
	requirePackage(t, "nmap", "nmap")
	closedPortSegments(t, kernelRouter)
}

func closedPortSegments(t *testing.T, r router) {
	ctx := testContext(t)
	topo, _ := routerTopology(t, r, testnet.Options{}, "")
	public := testnet.PublicAddr.String()
	const seq, ack = 7000, 123456
	for _, c := range []struct {
		name  string
		flags []string // hping3's
		want  string   // the answer: flags seq ack
	}{
		{"ACK", []string{"-A"}, fmt.Sprintf("R %d 0", ack)},
		{"FIN|ACK with data", []string{"-F", "-A", "-d", "10"}, fmt.Sprintf("R %d 0", ack)},
		{"FIN", []string{"-F"}, fmt.Sprintf("RA 0 %d", seq+1)},
		{"NULL with data", []string{"-d", "10"}, fmt.Sprintf("RA 0 %d", seq+10)},
		{"XMAS", []string{"-F", "-P", "-U"}, fmt.Sprintf("RA 0 %d", seq+1)},
		{"SYN|FIN", []string{"-S", "-F"}, fmt.Sprintf("RA 0 %d", seq+2)},
		{"RST", []string{"-R"}, ""},
	} {
		args := append([]string{"-c", "1", "-V", "-M", strconv.Itoa(seq), "-L", strconv.Itoa(ack), "-p", "20001"}, c.flags...)
		out := run(t, ctx, true, topo.Client, "hping3", append(args, public)...)
		got := ""
		if m := regexp.MustCompile(`flags=(\S+) `).FindStringSubmatch(out); m != nil {
			n := regexp.MustCompile(`(?m)^seq=(\d+) ack=(\d+)`).FindStringSubmatch(out)
			if n == nil {
				t.Fatalf("%s: no seq and ack in hping3's output", c.name)
			}
			got = m[1] + " " + n[1] + " " + n[2]
		}
		if got != c.want {
			t.Errorf("%s to a closed port: answered %q, want %q", c.name, got, c.want)
		}
	}
	// nmap's ACK scan finds the ports unfiltered, its FIN scan closed.
	for _, scan := range []struct{ flag, want string }{{"-sA", "unfiltered"}, {"-sF", "closed"}} {
		out := run(t, ctx, false, topo.Client, "nmap", "-n", "-Pn", scan.flag, "--max-retries", "1", "-p", "20001-20005", public)
		if n := len(regexp.MustCompile(`(?m)^2000[1-5]/tcp +`+scan.want+` `).FindAllString(out, -1)); n != 5 {
			t.Errorf("nmap %s of the public address: %d of 5 ports %s", scan.flag, n, scan.want)
		}
	}
}
