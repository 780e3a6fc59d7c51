package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// nmap from the inside host scans the outside client through each NAT:
// a SYN scan (-sS) and a connect scan (-sT) of one open port and
// scanClosed closed ones, FTP's among them (21 by default and 9091 by
// the case's port mapping: control connections the ALG inspects). Both
// NATs must give nmap the same verdicts,
// let no packet reach the client with an inside source address, and keep
// no session for a closed port once its RST has passed: conntrack
// deletes a connection whose only answer is a RST, and fastnat ends any
// session reset before its handshake completed (before, each held a
// CLOSED session for the 4-minute transitory timeout, so one `nmap -p-`
// filled a 64 Ki table).

// scanOpen is the client's open port; the closed ones are scanFTP and
// scanClosedFirst and the ports after it, scanClosed in all.
const (
	scanOpen        = 8080
	scanClosedFirst = 20000
	scanClosed      = 100
)

var scanFTP = []uint16{21, testnet.FTPPublicPort}

func TestFastnatNmapScan(t *testing.T) {
	requireFastnat(t)
	requirePackage(t, "nmap", "nmap")
	nmapScan(t, fastnatRouter)
}

// TestKernelNmapScan is the proof that nmapScan expects what a Linux NAT
// does.
func TestKernelNmapScan(t *testing.T) {
	requireHarness(t)
	requirePackage(t, "nmap", "nmap")
	requirePackage(t, "conntrack", "conntrack")
	nmapScan(t, kernelRouter)
}

// requirePackage skips the test unless tool, of the Debian package pkg,
// is installed.
func requirePackage(t *testing.T, pkg, tool string) {
	t.Helper()
	if err := testnet.CheckTools(tool); err != nil {
		t.Skipf("e2e: %v; install the Debian package %s (.ci/run does)", err, pkg)
	}
}

func nmapScan(t *testing.T, r router) {
	ctx := testContext(t)
	topo, sock := routerTopology(t, r, testnet.Options{InsideHost: true}, "")
	listenOpen(t, topo.Client)
	// The client counts what arrives from an inside address.
	leaked := arrivals(t, topo.Client, "ip saddr "+testnet.InsideNet.String())
	ports := fmt.Sprintf("%d,%d,%d,%d-%d", scanOpen, scanFTP[0], scanFTP[1], scanClosedFirst, scanClosedFirst+scanClosed-len(scanFTP)-1)
	for _, scan := range []struct{ flag, reason string }{{"-sS", "reset"}, {"-sT", "conn-refused"}} {
		out := run(t, ctx, false, topo.Host, "nmap", "-n", "-Pn", scan.flag, "--max-retries", "1", "-p", ports, testnet.ClientAddr.String())
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d/tcp +open `, scanOpen)).MatchString(out) ||
			!strings.Contains(out, fmt.Sprintf("Not shown: %d closed tcp ports (%s)", scanClosed, scan.reason)) {
			t.Errorf("nmap %s: want %d/tcp open and %d ports closed (%s)", scan.flag, scanOpen, scanClosed, scan.reason)
		}
		// A closed port's session ends as its RST passes; allow the
		// last RSTs a moment to arrive. fastnat also ends the session of
		// the open port, whose SYN/ACK nmap's SYN scan resets (the
		// kernel keeps it 10 s in CLOSE).
		var left []uint16
		openTo := uint16(0)
		if scan.flag == "-sS" && r.name == fastnatRouter.name {
			openTo = scanOpen
		}
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			left = scannedSessions(t, r, topo, sock, openTo)
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(left) > 0 {
			t.Errorf("nmap %s: %d sessions left for scanned ports (%v...), want none:%s", scan.flag, len(left), left[:min(len(left), 5)],
				natState(t, topo, left[0]))
		}
	}
	if n := leaked(); n != 0 {
		t.Errorf("%d packets with an inside source reached the client", n)
	}
}

// listenOpen listens on the client's scanOpen port in namespace ns,
// accepting and closing connections until the test ends.
func listenOpen(t *testing.T, ns string) {
	t.Helper()
	ln, err := testnet.ListenTCP(ns, netip.AddrPortFrom(testnet.ClientAddr, scanOpen))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// scannedSessions lists the destination ports of the NAT's TCP sessions
// to the client's scanned closed ports, and to port openTo unless 0:
// fastnat's sessions over its control socket sock, or the kernel's
// conntrack entries.
func scannedSessions(t *testing.T, r router, topo *testnet.Topology, sock string, openTo uint16) []uint16 {
	t.Helper()
	closed := func(p uint16) bool {
		return p >= scanClosedFirst && p < scanClosedFirst+scanClosed || p == openTo || slices.Contains(scanFTP, p)
	}
	var ports []uint16
	if r.name != fastnatRouter.name {
		out, _ := testnet.Run(testContext(t), topo.Router, "conntrack", "-L", "-p", "tcp")
		for _, m := range regexp.MustCompile(`dport=(\d+)`).FindAllStringSubmatch(string(out), -1) {
			var p uint16
			fmt.Sscan(m[1], &p)
			if closed(p) {
				ports = append(ports, p)
			}
		}
		return ports
	}
	for _, s := range tcpSessions(t, sock) {
		if closed(s.dst.Port()) {
			ports = append(ports, s.dst.Port())
		}
	}
	return ports
}

// tcpSession is what a test reads of one of fastnat's TCP sessions.
type tcpSession struct {
	dst   netip.AddrPort // the inside destination
	state string         // TCP_ESTABLISHED and the like
}

// tcpSessions lists the TCP sessions of the fastnat whose control socket
// is sock (show sessions --json).
func tcpSessions(t *testing.T, sock string) []tcpSession {
	t.Helper()
	code, out, errOut := fastnatCLI(t, "show", "sessions", "--json", "--proto", "tcp", "--limit", "0", "--socket", sock)
	if code != 0 {
		t.Fatalf("fastnat show sessions: exit %d: %s", code, errOut)
	}
	var list struct {
		Sessions []struct {
			Inside struct{ Dst string } `json:"inside"`
			State  string               `json:"state"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("show sessions --json: %v\n%s", err, out)
	}
	var l []tcpSession
	for _, s := range list.Sessions {
		if ap, err := netip.ParseAddrPort(s.Inside.Dst); err == nil {
			l = append(l, tcpSession{ap, s.State})
		}
	}
	return l
}
