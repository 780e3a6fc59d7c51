package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/fastnat/fastnat/internal/testnet"
)

// The FTP ALG's behaviour at its edges (issue 11), with real FTP clients
// (curl, lftp) and vsftpd in both directions — the server inside behind
// nat.server, and the client inside behind nat.outbound — in every mode the
// client can use: connections close cleanly; a command or reply cut into
// segments at any byte, however far apart, is rewritten and never passes
// unrewritten; a refused command or reply fails at once and leaves the
// control connection usable; idle passive requests never exhaust the
// per-session expectations.

// smallFile is the size of the files these tests fetch: they test the
// control connection, not throughput.
const smallFile = 64 << 10

// startFTPSized is startFTP with a file of size bytes and the server
// configured as cfg.
func startFTPSized(t *testing.T, topo *testnet.Topology, cfg testnet.FTPServerConfig, size int64) ftpFixture {
	t.Helper()
	s := topo.MustStartFTPServer(t, cfg)
	const name = "small.bin"
	sum := testnet.MustWriteRandomFile(t, filepath.Join(s.Root(), name), size, 0x2021)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s %s log:\n%s", cfg.Daemon, cfg.Addr, tailString(s.Log(), 8192))
		}
	})
	return ftpFixture{server: s, name: name, sha256: sum}
}

// ftpSide is one of the two directions of the case: where the client
// runs and the URL it fetches.
type ftpSide struct {
	name string
	ns   string // the client's namespace
	url  string
	f    ftpFixture
}

// bothSides starts an FTP server for each direction: inside (reached as
// public:9091 from the client outside) and outside (reached on port 9091
// from the inside host through nat.outbound), with cfg's extra settings.
func bothSides(t *testing.T, topo *testnet.Topology, extra func(inside bool) []string) []ftpSide {
	t.Helper()
	var ex func(bool) []string = func(bool) []string { return nil }
	if extra != nil {
		ex = extra
	}
	in := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP, Extra: ex(true)}, smallFile)
	out := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Client, Addr: outsideFTP, Extra: ex(false)}, smallFile)
	return []ftpSide{
		{"server-inside", topo.Client, in.server.URL(publicFTP, in.name), in},
		{"client-inside", topo.Host, out.server.URL(outsideFTP, out.name), out},
	}
}

// waitClosed fails the test if a TCP socket of the topology's client,
// server or inside host stays in a closing state (LAST-ACK, FIN-WAIT-1,
// FIN-WAIT-2, CLOSING) for more than a few seconds: a connection the NAT
// broke at its close.
func waitClosed(ctx context.Context, t *testing.T, topo *testnet.Topology) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left []string
		for _, ns := range []string{topo.Client, topo.Server, topo.Host} {
			if ns == "" {
				continue
			}
			socks, err := testnet.ClosingSockets(ctx, ns)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range socks {
				left = append(left, ns+": "+s)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var ports []uint16
			for _, s := range left {
				ports = append(ports, socketPorts(s)...)
			}
			t.Fatalf("sockets still closing 5 s after the client finished (the NAT broke their close):\n%s%s",
				strings.Join(left, "\n"), natState(t, topo, ports...))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// socketPorts returns the local port of a socket as ss prints it
// ("STATE RECV-Q SEND-Q LOCAL PEER"), the one that tells its session
// apart; none if the line does not parse.
func socketPorts(line string) []uint16 {
	f := strings.Fields(line)
	if len(f) < 5 {
		return nil
	}
	ap, err := netip.ParseAddrPort(f[3])
	if err != nil {
		return nil
	}
	return []uint16{ap.Port()}
}

// natState returns what explains a failure through the topology's
// fastnat, if it runs one (nothing for the kernel's NAT): its counters —
// drop reasons, the ALG's — and the sessions with any of ports in a
// tuple (every session and the ALG's expectations when none is given),
// with the TCP state fastnat holds of each. Failures only: it runs the
// CLI.
func natState(t *testing.T, topo *testnet.Topology, ports ...uint16) string {
	t.Helper()
	var sock string
	for _, p := range topo.Processes() {
		if filepath.Base(p.Name) != "fastnat" {
			continue
		}
		if done, _ := p.Exited(); done {
			continue
		}
		if m := controlSocketLine.FindStringSubmatch(p.Output()); m != nil {
			sock = strings.Trim(m[1], `"`)
		}
	}
	if sock == "" {
		return ""
	}
	var b strings.Builder
	show := func(args ...string) {
		code, out, errOut := fastnatCLI(t, append(append([]string{"show"}, args...), "--socket", sock)...)
		fmt.Fprintf(&b, "\n--- fastnat show %s (exit %d)\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	show("stats")
	if len(ports) == 0 {
		show("expectations")
		show("sessions", "--verbose", "--limit", "0")
	}
	for _, p := range ports {
		show("sessions", "--verbose", "--port", fmt.Sprint(p), "--limit", "0")
	}
	return b.String()
}

func TestFastnatFTPCloseClean(t *testing.T) { requireFastnat(t); ftpCloseClean(t, fastnatRouter) }
func TestKernelNATFTPCloseClean(t *testing.T) {
	requireHarness(t)
	ftpCloseClean(t, kernelRouter)
}

// ftpCloseClean: after every transfer, in both directions and every mode,
// no socket of the client or the server is left waiting in LAST-ACK or
// FIN-WAIT: the NAT carried every FIN and every acknowledgement of one
// with the right sequence numbers.
func ftpCloseClean(t *testing.T, r router) {
	ctx := testContext(t)
	topo := r.newTopology(t, true)
	r.setup(t, topo, true, nil)
	for _, side := range bothSides(t, topo, nil) {
		for _, tool := range testnet.Tools {
			for _, mode := range testnet.Modes {
				t.Run(side.name+"/"+tool.String()+"/"+mode.String(), func(t *testing.T) {
					if !tool.Supports(mode) {
						t.Skipf("%s: %v", tool, testnet.ErrModeUnsupported)
					}
					if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
						NS: side.ns, Tool: tool, Mode: mode, URL: side.url,
						Dst: filepath.Join(t.TempDir(), side.f.name), Timeout: 30 * time.Second,
					}, side.f.sha256); err != nil {
						t.Fatal(err)
					}
					waitClosed(ctx, t, topo)
				})
			}
		}
	}
}

// splitLines runs one split relay per direction of the case, each cutting
// the lines the ALG must rewrite in that direction, and returns the sides
// to fetch from: the server inside answers through a relay beside it that
// cuts its 227 and 229 replies, the client inside sends through a relay
// beside it that cuts its PORT and EPRT commands. split says how to cut
// the line a connection's peer (as the relay sees it) is sent.
type splitSides struct {
	sides  []ftpSide
	relays []*testnet.SplitRelay
	// addr is each side's address the Go client dials.
	addr []netip.AddrPort
	mu   sync.Mutex
	cuts int // lines cut so far
}

// Where the relays listen: beside the inside server, on the address and
// port nat.server publishes, with vsftpd moved to another port; beside the
// inside client, on its own address.
var (
	relayedFTP    = netip.AddrPortFrom(testnet.ServerAddr, 2121)
	hostRelayAddr = netip.AddrPortFrom(testnet.HostAddr, 2100)
)

func startSplitSides(t *testing.T, topo *testnet.Topology, split func(peer netip.AddrPort, line []byte) testnet.Split) *splitSides {
	t.Helper()
	// Behind the relay, vsftpd sees the relay as its client: it must
	// accept a PORT naming the real client, and data connections from it.
	in := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: relayedFTP,
		Extra: []string{"port_promiscuous=YES", "pasv_promiscuous=YES"}}, smallFile)
	out := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Client, Addr: outsideFTP}, smallFile)
	s := &splitSides{}
	counting := func(prefixes ...string) func(netip.AddrPort, []byte) testnet.Split {
		return func(peer netip.AddrPort, line []byte) testnet.Split {
			for _, p := range prefixes {
				if strings.HasPrefix(strings.ToUpper(string(line)), p) {
					sp := split(peer, line)
					if len(sp.Cuts) > 0 {
						s.mu.Lock()
						s.cuts++
						s.mu.Unlock()
					}
					return sp
				}
			}
			return testnet.Split{}
		}
	}
	rs, err := testnet.StartSplitRelay(topo.Server, insideFTP, relayedFTP, false, counting("227 ", "229 "))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := testnet.StartSplitRelay(topo.Host, hostRelayAddr, outsideFTP, true, counting("PORT ", "EPRT "))
	if err != nil {
		rs.Close()
		t.Fatal(err)
	}
	s.relays = []*testnet.SplitRelay{rs, rc}
	t.Cleanup(func() {
		for _, r := range s.relays {
			if err := r.Close(); err != nil {
				t.Errorf("split relay: %v", err)
			}
		}
	})
	s.sides = []ftpSide{
		{"server-inside", topo.Client, in.server.URL(publicFTP, in.name), in},
		{"client-inside", topo.Host, out.server.URL(hostRelayAddr, out.name), out},
	}
	s.addr = []netip.AddrPort{publicFTP, hostRelayAddr}
	return s
}

func (s *splitSides) cutLines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cuts
}

// cutsRewritten reports whether, in side i, mode's announcing line is one
// the relay cuts: the server inside's 227/229, the client inside's
// PORT/EPRT — the lines the ALG must rewrite.
func cutsRewritten(i int, mode testnet.Mode) bool { return (i == 0) == mode.Passive() }

// TestFastnatFTPSplitLines: real clients and vsftpd with the line the ALG
// must rewrite — the inside server's 227 and 229, the inside client's
// PORT and EPRT: every mode, each in the direction where it carries an
// inside address — cut by a relay into five segments 150 ms apart (the
// issue's reproduction: four or five segments at least 100 ms apart) and
// into two segments a second apart: the transfer works on the first try,
// so the line was rewritten however it came. (Through a relay the other
// modes do not work at all: an EPSV client connects to the relay's
// address, and vsftpd cannot connect from port 20 for a relayed session.)
func TestFastnatFTPSplitLines(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, true, nil)
	type variant struct {
		name  string
		split func(n int) testnet.Split
	}
	var cur variant
	var mu sync.Mutex
	sides := startSplitSides(t, topo, func(_ netip.AddrPort, line []byte) testnet.Split {
		mu.Lock()
		defer mu.Unlock()
		return cur.split(len(line))
	})
	variants := []variant{
		{"5x150ms", func(n int) testnet.Split { return testnet.Pieces(n, 5, 150*time.Millisecond) }},
		{"2x1s", func(n int) testnet.Split { return testnet.Pieces(n, 2, time.Second) }},
	}
	for _, v := range variants {
		mu.Lock()
		cur = v
		mu.Unlock()
		for i, side := range sides.sides {
			for _, tool := range testnet.Tools {
				for _, mode := range testnet.Modes {
					t.Run(v.name+"/"+side.name+"/"+tool.String()+"/"+mode.String(), func(t *testing.T) {
						if !tool.Supports(mode) {
							t.Skipf("%s: %v", tool, testnet.ErrModeUnsupported)
						}
						if !cutsRewritten(i, mode) {
							t.Skipf("%s carries no inside address %s", mode, side.name)
						}
						before := sides.cutLines()
						res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
							NS: side.ns, Tool: tool, Mode: mode, URL: side.url,
							Dst: filepath.Join(t.TempDir(), side.f.name), Timeout: 40 * time.Second,
						}, side.f.sha256)
						if err != nil {
							t.Fatal(err)
						}
						if sides.cutLines() == before {
							t.Fatal("the relay cut no line: the test did not test splitting")
						}
						t.Logf("%v", res.Elapsed.Round(time.Millisecond))
					})
				}
			}
		}
	}
	waitClosed(ctx, t, topo)
}

// TestFastnatFTPSplitEveryByte cuts the line the ALG must rewrite at every
// byte position in turn, with gaps from none to one second, through a
// real TCP stack (a relay writing each piece with TCP_NODELAY) — the inside
// server's 227 and 229 replies, the inside client's PORT and EPRT commands
// — on one control connection per mode of a Go FTP client against vsftpd;
// after each, the data connection must work, and a 227 must name the
// public address.
func TestFastnatFTPSplitEveryByte(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, true, nil)
	gaps := []time.Duration{0, 30 * time.Millisecond, 300 * time.Millisecond, time.Second}
	var plans sync.Map // peer netip.AddrPort -> *cutPlan
	sides := startSplitSides(t, topo, func(peer netip.AddrPort, line []byte) testnet.Split {
		if p, ok := plans.Load(peer); ok {
			return p.(*cutPlan).next(len(line))
		}
		return testnet.Split{}
	})
	for i, side := range sides.sides {
		for _, mode := range testnet.Modes {
			if !cutsRewritten(i, mode) {
				continue
			}
			t.Run(side.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				c, err := testnet.DialFTP(ctx, side.ns, sides.addr[i])
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Timeout = 30 * time.Second
				plan := &cutPlan{gaps: gaps}
				plans.Store(c.LocalAddr(), plan)
				for k := 1; ; k++ {
					plan.set(k)
					tr, err := c.List(ctx, mode)
					if err != nil {
						dumpNAT(t, topo)
						t.Fatalf("cut at byte %d (gap %v): %v", k, gaps[k%len(gaps)], err)
					}
					if !strings.Contains(string(tr.Data), side.f.name) {
						t.Fatalf("cut at byte %d: listing %q", k, tr.Data)
					}
					if mode == testnet.PASV && !strings.Contains(tr.Setup.Lines[0], "(198,18,0,204,") {
						t.Fatalf("cut at byte %d: %q does not name the public address", k, tr.Setup.Lines[0])
					}
					if plan.done() {
						t.Logf("cut at every one of %d positions", k)
						break
					}
				}
				if err := c.Quit(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// cutPlan cuts the next line a relay splits for one connection at byte k,
// with the k-th gap in turn; done reports when k has reached the last
// position of the line last cut.
type cutPlan struct {
	mu   sync.Mutex
	gaps []time.Duration
	k    int
	last int // length of the line last cut
}

func (p *cutPlan) set(k int) {
	p.mu.Lock()
	p.k = k
	p.mu.Unlock()
}

func (p *cutPlan) next(n int) testnet.Split {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = n
	if p.k <= 0 || p.k >= n {
		return testnet.Split{}
	}
	return testnet.Split{Cuts: []int{p.k}, Gap: p.gaps[p.k%len(p.gaps)]}
}

func (p *cutPlan) done() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.k >= p.last-1
}

// refusal is one way to make the ALG refuse a data endpoint: what the
// client is told to do, or what the server is configured to announce.
type refusal struct {
	name   string
	tool   testnet.Tool
	mode   testnet.Mode
	client func(self netip.Addr) ([]string, []string) // curl arguments, lftp settings
	server func(inside bool) []string                 // vsftpd settings
	reply  string                                     // what the client must be told
}

// TestFastnatFTPRefused: a PORT or EPRT naming a privileged port or
// another host than the client, and a 227 naming another host than the
// server or a 229 with a privileged port, in both directions and with
// both clients: the client is told at once, by a reply the ALG makes (500
// for the command, 425 in place of the passive reply), and fails within
// seconds instead of hanging; the refused command never reaches the
// server, and the control connection stays usable (the server receives
// the client's QUIT after it).
func TestFastnatFTPRefused(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, true, nil)
	priv := func(self netip.Addr) ([]string, []string) {
		return []string{"--ftp-port", self.String() + ":1000-1000"}, []string{"ftp:port-range 1000-1000"}
	}
	third := func(netip.Addr) ([]string, []string) {
		return nil, []string{"ftp:port-ipv4 " + thirdParty(true).String()}
	}
	refusals := []refusal{
		{"privileged PORT", testnet.Curl, testnet.PORT, priv, nil, "500 Illegal PORT command: refused by the NAT"},
		{"privileged EPRT", testnet.Curl, testnet.EPRT, priv, nil, "500 Illegal EPRT command: refused by the NAT"},
		{"privileged PORT", testnet.LFTP, testnet.PORT, priv, nil, "500 Illegal PORT command: refused by the NAT"},
		{"third-party PORT", testnet.LFTP, testnet.PORT, third, nil, "500 Illegal PORT command: refused by the NAT"},
		{"third-party 227", testnet.Curl, testnet.PASV, nil, func(inside bool) []string {
			return []string{"pasv_address=" + thirdParty(inside).String()}
		}, "425 Can't open passive connection: refused by the NAT"},
		{"third-party 227", testnet.LFTP, testnet.PASV, nil, func(inside bool) []string {
			return []string{"pasv_address=" + thirdParty(inside).String()}
		}, "425 Can't open passive connection: refused by the NAT"},
	}
	var last func(bool) []string
	var sides []ftpSide
	run := func(rf refusal, i int, side ftpSide) {
		self := []netip.Addr{testnet.ClientAddr, testnet.HostAddr}[i]
		t.Run(rf.name+"/"+side.name+"/"+rf.tool.String()+"/"+rf.mode.String(), func(t *testing.T) {
			spec := testnet.FetchSpec{
				NS: side.ns, Tool: rf.tool, Mode: rf.mode, URL: side.url,
				Dst:            filepath.Join(t.TempDir(), side.f.name),
				ConnectTimeout: 3 * time.Second, Timeout: 15 * time.Second,
			}
			if rf.client != nil {
				spec.CurlArgs, spec.LFTPSet = rf.client(self)
			}
			quits := strings.Count(side.f.server.Log(), `"QUIT"`)
			res, err := testnet.Fetch(ctx, spec)
			if err == nil {
				t.Fatal("the transfer succeeded; want the refusal")
			}
			if res.Elapsed > 8*time.Second {
				t.Fatalf("the client took %v to fail: it waited instead of being told", res.Elapsed.Round(time.Millisecond))
			}
			if !strings.Contains(strings.Join(res.Received, "\n"), rf.reply) {
				t.Fatalf("the client was not told %q; it got:\n%s", rf.reply, strings.Join(res.Received, "\n"))
			}
			log := side.f.server.Log()
			if rf.client != nil && (strings.Contains(log, `"PORT `) || strings.Contains(log, `"EPRT `)) {
				t.Errorf("the refused command reached the server:\n%s", tailString(log, 2048))
			}
			if rf.tool == testnet.Curl && strings.Count(log, `"QUIT"`) == quits {
				t.Errorf("the server got no QUIT after the refusal: the control connection did not stay usable:\n%s", tailString(log, 2048))
			}
			t.Logf("failed in %v: %.200v", res.Elapsed.Round(time.Millisecond), err)
		})
	}
	stop := func() {
		for _, s := range sides {
			if err := s.f.server.Stop(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, rf := range refusals {
		if sides == nil || !sameSettings(rf.server, last) {
			stop()
			sides, last = bothSides(t, topo, rf.server), rf.server
		}
		for i, side := range sides {
			run(rf, i, side)
		}
	}
	// A 229 with a privileged port: vsftpd will not listen below 1024, so a
	// relay beside each server puts port 21 in its 229 replies.
	stop()
	sides = editedSides(t, topo, func(line []byte) []byte {
		if !strings.HasPrefix(string(line), "229 ") {
			return nil
		}
		return []byte("229 Entering Extended Passive Mode (|||21|)\r\n")
	})
	for _, tool := range testnet.Tools {
		for i, side := range sides {
			run(refusal{"privileged 229", tool, testnet.EPSV, nil, nil, "425 Can't open passive connection: refused by the NAT"}, i, side)
		}
	}
	waitClosed(ctx, t, topo)
}

// editedSides starts, for each direction, vsftpd behind a relay beside it
// that writes edit(line) in place of every reply line for which edit
// returns non-nil: a server that misbehaves as a real one would not.
func editedSides(t *testing.T, topo *testnet.Topology, edit func(line []byte) []byte) []ftpSide {
	t.Helper()
	promiscuous := []string{"port_promiscuous=YES", "pasv_promiscuous=YES"}
	split := func(_ netip.AddrPort, line []byte) testnet.Split { return testnet.Split{Line: edit(line)} }
	var sides []ftpSide
	for _, s := range []struct {
		name, ns, client string
		listen, backend  netip.AddrPort
	}{
		{"server-inside", topo.Server, topo.Client, insideFTP, relayedFTP},
		{"client-inside", topo.Client, topo.Host, outsideFTP, netip.AddrPortFrom(testnet.ClientAddr, 9092)},
	} {
		f := startFTPSized(t, topo, testnet.FTPServerConfig{NS: s.ns, Addr: s.backend, Extra: promiscuous}, smallFile)
		r, err := testnet.StartSplitRelay(s.ns, s.listen, s.backend, false, split)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := r.Close(); err != nil {
				t.Errorf("relay: %v", err)
			}
		})
		reach := publicFTP
		if s.name == "client-inside" {
			reach = outsideFTP
		}
		sides = append(sides, ftpSide{s.name, s.client, f.server.URL(reach, f.name), f})
	}
	return sides
}

// thirdParty is an address that is neither the client's nor the server's
// on the side of the one that announces it.
func thirdParty(inside bool) netip.Addr {
	if inside {
		return netip.MustParseAddr("10.77.0.99")
	}
	return netip.MustParseAddr("198.18.0.99")
}

func sameSettings(a, b func(bool) []string) bool {
	get := func(f func(bool) []string) string {
		if f == nil {
			return ""
		}
		return strings.Join(f(true), ",") + "|" + strings.Join(f(false), ",")
	}
	return get(a) == get(b)
}

// TestFastnatFTPIdlePassive: a client asks for nine data connections it
// never opens — nine PASV, EPSV, PORT or EPRT before its transfer, with
// the default limit of eight expectations per session — and then
// transfers in the same mode: each announcement replaces the session's
// oldest expectation, so the transfer works on the first try, in both
// directions and with both clients.
func TestFastnatFTPIdlePassive(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, true, nil)
	for i, side := range bothSides(t, topo, nil) {
		self := []netip.Addr{testnet.ClientAddr, testnet.HostAddr}[i].As4()
		for _, tool := range testnet.Tools {
			for _, mode := range testnet.Modes {
				t.Run(side.name+"/"+tool.String()+"/"+mode.String(), func(t *testing.T) {
					if !tool.Supports(mode) {
						t.Skipf("%s: %v", tool, testnet.ErrModeUnsupported)
					}
					var quote []string
					for k := range 9 {
						p := 41000 + k
						switch mode {
						case testnet.PORT:
							quote = append(quote, fmt.Sprintf("PORT %d,%d,%d,%d,%d,%d", self[0], self[1], self[2], self[3], p>>8, p&0xff))
						case testnet.EPRT:
							quote = append(quote, fmt.Sprintf("EPRT |1|%d.%d.%d.%d|%d|", self[0], self[1], self[2], self[3], p))
						default:
							quote = append(quote, mode.String())
						}
					}
					res, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
						NS: side.ns, Tool: tool, Mode: mode, URL: side.url,
						Dst: filepath.Join(t.TempDir(), side.f.name), Quote: quote,
						ConnectTimeout: 3 * time.Second, Timeout: 20 * time.Second,
					}, side.f.sha256)
					if err != nil {
						t.Fatal(err)
					}
					if n := res.Count(mode.String()); n != 10 {
						t.Fatalf("%d %s sent, want 10", n, mode)
					}
				})
			}
		}
	}
}

// TestFastnatFTPActiveFromPort20: every active-mode data connection of the
// server inside reaches the client from public port 20, the server's data
// port (RFC 959 3.2), not only the first one.
func TestFastnatFTPActiveFromPort20(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, false)
	fastnatRouter.setup(t, topo, true, nil)
	f := startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Server, Addr: insideFTP}, smallFile)
	capt, err := testnet.StartCapture(topo.Client, testnet.NodeLink)
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Close()
	runs := []struct {
		tool testnet.Tool
		mode testnet.Mode
	}{{testnet.Curl, testnet.PORT}, {testnet.Curl, testnet.EPRT}, {testnet.LFTP, testnet.PORT}, {testnet.Curl, testnet.PORT}}
	for _, r := range runs {
		if _, err := testnet.FetchCheck(ctx, testnet.FetchSpec{
			NS: topo.Client, Tool: r.tool, Mode: r.mode, URL: f.server.URL(publicFTP, f.name),
			Dst: filepath.Join(t.TempDir(), f.name),
		}, f.sha256); err != nil {
			t.Fatal(err)
		}
	}
	capt.Close()
	var ports []uint16
	for _, fr := range capt.Frames() {
		d := gopacket.NewPacket(fr.Data, layers.LayerTypeEthernet, gopacket.Default)
		ip, _ := d.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := d.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if fr.Outgoing || ip == nil || tcp == nil || !tcp.SYN || tcp.ACK || !ip.SrcIP.Equal(testnet.PublicAddr.AsSlice()) {
			continue
		}
		ports = append(ports, uint16(tcp.SrcPort))
	}
	if len(ports) != len(runs) {
		t.Fatalf("%d data connections from the server seen, want %d (%v)", len(ports), len(runs), ports)
	}
	for i, p := range ports {
		if p != 20 {
			t.Errorf("data connection %d from public port %d, want 20 (all: %v)", i, p, ports)
		}
	}
}

// TestFastnatFTPActiveReusedPort: a client inside that listens on the
// same data port for every active-mode data connection (as clients that
// bind their data port do) gets every listing, not only the first: the
// previous data connection's session, closed but lingering for the
// transitory timeout with the same inside tuple (the client's port and
// the server's port 20), gives way to the new one.
func TestFastnatFTPActiveReusedPort(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, true, nil)
	startFTPSized(t, topo, testnet.FTPServerConfig{NS: topo.Client, Addr: outsideFTP}, smallFile)
	for _, mode := range []testnet.Mode{testnet.PORT, testnet.EPRT} {
		t.Run(mode.String(), func(t *testing.T) {
			c, err := testnet.DialFTP(ctx, topo.Host, outsideFTP)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.DataPort = 40020
			if mode == testnet.EPRT {
				c.DataPort = 40021
			}
			for i := 0; i < 3; i++ {
				if _, err := c.List(ctx, mode); err != nil {
					dumpNAT(t, topo)
					t.Fatalf("listing %d from data port %d: %v", i, c.DataPort, err)
				}
			}
			if err := c.Quit(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// dumpNAT logs the running fastnat's sessions, expectations and counters,
// to tell why a data connection failed.
func dumpNAT(t *testing.T, topo *testnet.Topology) {
	t.Helper()
	t.Log(natState(t, topo))
}

// TestFastnatFTPControlReusedPort: a client that connects again from the
// port of a control connection that has just closed — the same tuple, its
// session lingering for the transitory timeout, as when a client's
// ephemeral port comes round again — gets its banner, its listing and a
// clean close every time, in both directions: the new connection has a
// session of its own, and the ALG none of the old one's stream.
func TestFastnatFTPControlReusedPort(t *testing.T) {
	requireFastnat(t)
	ctx := testContext(t)
	topo := fastnatRouter.newTopology(t, true)
	fastnatRouter.setup(t, topo, true, nil)
	server := map[string]netip.AddrPort{"server-inside": publicFTP, "client-inside": outsideFTP}
	local := netip.AddrPortFrom(netip.IPv4Unspecified(), 40091)
	for _, side := range bothSides(t, topo, nil) {
		t.Run(side.name, func(t *testing.T) {
			for i := range 3 {
				// The port is free once the last connection's final ACK
				// has arrived (the client closed last: no TIME-WAIT).
				c, err := testnet.DialFTPFrom(ctx, side.ns, local, server[side.name])
				for deadline := time.Now().Add(5 * time.Second); errors.Is(err, syscall.EADDRINUSE) && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
					c, err = testnet.DialFTPFrom(ctx, side.ns, local, server[side.name])
				}
				if err != nil {
					t.Fatalf("connection %d from port %d: %v%s", i, local.Port(), err, natState(t, topo, local.Port()))
				}
				if _, err := c.List(ctx, testnet.PASV); err != nil {
					c.Close()
					t.Fatalf("connection %d: listing: %v%s", i, err, natState(t, topo, local.Port()))
				}
				if err := c.QuitLast(); err != nil {
					t.Fatalf("connection %d: %v%s", i, err, natState(t, topo, local.Port()))
				}
			}
			waitClosed(ctx, t, topo)
		})
	}
}
