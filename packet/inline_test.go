package packet

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// hotInlinable lists the functions the per-packet path calls that must stay
// inlinable: a change that pushes one over the inliner's budget turns a few
// instructions into a call per packet, and this test says which. The
// checksum-updating 32-bit setters (IPv4.SetSrcAddr, TCP.SetSeq) are just
// over the budget and not listed; nat's fast path uses the Raw setters with
// a precomputed Delta instead.
var hotInlinable = []string{
	"Fold", "UpdateChecksum16", "UpdateChecksum32", "PseudoHeaderSum",
	"ApplyDelta", "ApplyDeltaUDP", "Delta.Add16", "Delta.Add32", "Delta.Add",
	"Ethernet.Dst", "Ethernet.Src", "Ethernet.SetDst", "Ethernet.SetSrc", "Ethernet.EtherType",
	"IPv4.HeaderLen", "IPv4.TotalLength", "IPv4.TTL", "IPv4.Protocol", "IPv4.Checksum", "IPv4.SetChecksum",
	"IPv4.SrcAddr", "IPv4.DstAddr",
	"IPv4.SetSrcAddrRaw", "IPv4.SetDstAddrRaw", "IPv4.DecTTL", "IPv4.FragOffset",
	"TCP.SrcPort", "TCP.DstPort", "TCP.SetSrcPort", "TCP.SetDstPort", "TCP.SetSrcPortRaw", "TCP.SetDstPortRaw",
	"TCP.Seq", "TCP.Ack", "TCP.Flags", "TCP.Checksum", "TCP.SetChecksum",
	"UDP.SrcPort", "UDP.DstPort", "UDP.SetSrcPortRaw", "UDP.SetDstPortRaw", "UDP.Checksum", "UDP.SetChecksum",
	"ICMP.Type", "ICMP.ID", "ICMP.SetID", "ICMP.SetIDRaw", "ICMP.Checksum", "ICMP.SetChecksum",
	"(*Parsed).IPv4", "(*Parsed).TCP", "(*Parsed).UDP", "(*Parsed).ICMP", "Frag.IsFragment",
	"TranslateCommonIPv4", "TranslateCommonUDP", "TranslateCommonTCP", "CommonTCP", "CommonIPv4", "CommonTCPPlainOptions",
}

func TestHotFunctionsInlinable(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goTool, "build", "-gcflags=-m", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	can := map[string]bool{}
	re := regexp.MustCompile(`: can inline (\S+)`)
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		can[m[1]] = true
	}
	var not []string
	for _, f := range hotInlinable {
		if !can[f] {
			not = append(not, f)
		}
	}
	if len(not) > 0 {
		t.Errorf("no longer inlinable: %s", strings.Join(not, ", "))
	}
}
