package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastnat/fastnat/internal/cli"
	"github.com/fastnat/fastnat/internal/testnet"
)

// The demo's addressing comes from testnet's fixed plan; these are the
// parts the embedded configuration adds.
var (
	demoPublicFTP = netip.AddrPortFrom(testnet.PublicAddr, testnet.FTPPublicPort)
	demoInsideFTP = netip.AddrPortFrom(testnet.ServerAddr, testnet.FTPInsidePort)
	demoPublicUDP = netip.AddrPortFrom(testnet.PublicAddr, 7007)
	demoInsideUDP = netip.AddrPortFrom(testnet.ServerAddr, 7007)
)

// demoConfigText is the configuration the demo runs fastnat with: the
// case's firewall on testnet's topology. %[1]s is the control socket,
// %[2]s the port-mapping table (empty to reproduce the case's failure).
const demoConfigText = `# fastnat demo: the case on a three-namespace topology
[dataplane]
poll = "adaptive"           # one worker per queue of "outside"
xdp_mode = "native"         # veth spreads flows over its queues only in native mode

[[interface]]
name = "outside"            # router's veth towards the client, 198.18.0.254
role = "outside"

[[interface]]
name = "inside"             # router's veth towards the server, 10.77.0.1
role = "inside"

[flows]
max = 65536

[[nat.outbound]]            # nat outbound: inside hosts leave as 198.18.0.204
inside = ["10.77.0.0/24"]
pool = ["198.18.0.204"]

[[nat.server]]              # nat server: the FTP server, published on 9091
protocol = "tcp"
public = "198.18.0.204:9091"
inside = "10.77.0.226:2021"

[[nat.server]]              # nat server: a UDP sink for the bench
protocol = "udp"
public = "198.18.0.204:7007"
inside = "10.77.0.226:7007"

[control]
socket = %[1]q
%[2]s`

// demoPortMapping is the case's fix: port-mapping application ftp port 9091.
const demoPortMapping = `
[[port_mapping]]            # port-mapping application ftp port 9091
application = "ftp"
port = 9091
protocol = "tcp"
`

// demoConfig renders the demo's configuration.
func demoConfig(socket string, mapping bool) string {
	m := ""
	if mapping {
		m = demoPortMapping
	}
	return fmt.Sprintf(demoConfigText, socket, m)
}

// demoTools maps each program the demo runs to the Debian package that
// has it.
var demoTools = []struct{ prog, pkg string }{
	{"ip", "iproute2"},
	{"ethtool", "ethtool"},
	{"sysctl", "procps"},
	{"vsftpd", "vsftpd"},
	{"curl", "curl"},
}

// errDemoInterrupted is returned when SIGINT or SIGTERM stopped the demo.
var errDemoInterrupted = errors.New("interrupted; everything it built is removed")

// demoPreflight checks what the demo needs before it touches anything:
// root, and every program in demoTools (found reports whether one is
// installed). The error says what to do.
func demoPreflight(euid int, found func(prog string) bool) error {
	if euid != 0 {
		return errors.New("needs root: it creates network namespaces and attaches XDP programs; run `sudo ./scripts/demo`")
	}
	var progs, pkgs []string
	for _, t := range demoTools {
		if !found(t.prog) {
			progs = append(progs, t.prog)
			pkgs = append(pkgs, t.pkg)
		}
	}
	if len(progs) > 0 {
		return fmt.Errorf("%s not installed; install the Debian packages with `apt-get install %s` (or run `sudo ./scripts/demo`, which does)",
			strings.Join(progs, ", "), strings.Join(pkgs, " "))
	}
	return nil
}

// toolFound reports whether testnet would find prog.
func toolFound(prog string) bool { return filepath.IsAbs(testnet.ToolPath(prog)) }

// demoOptions are the demo's knobs; the defaults are cmdDemo's flags.
type demoOptions struct {
	bin      string        // the fastnat binary started in the router namespace
	fileSize int64         // bytes of the file each FTP transfer moves
	bench    time.Duration // length of the UDP flood
	queues   int           // rx/tx queues of the router's veths: fastnat workers
}

var demoCommand = &cli.Command{
	Name:    "demo",
	Summary: "the case, live: an FTP server published on port 9091, before and after the port mapping (root)",
	About: "Builds three network namespaces joined by veth pairs (client, router, server), starts vsftpd " +
		"inside and `fastnat run` in the router with the case's firewall configuration, shows a passive " +
		"download fail without the port mapping and work in PASV and PORT mode after adding it and a reload " +
		"(each checked by sha256), prints the sessions, floods UDP through the NAT, and removes everything. " +
		"It needs root and the Debian packages iproute2, ethtool, procps, vsftpd and curl (scripts/demo " +
		"installs them). Ctrl-C stops it at any step and still removes what it built.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		opt := demoOptions{}
		var size int
		cli.DurationVar(fs, &opt.bench, "bench", 3*time.Second, time.Second, time.Hour, "length of the UDP flood")
		cli.IntVar(fs, &size, "size", 8<<20, 1, 1<<30, "`BYTES` of the file each FTP transfer moves")
		cli.IntVar(fs, &opt.queues, "queues", 2, 1, 64, "queues of the router's veths, one fastnat worker each")
		return func(args []string, stdout, stderr io.Writer) int {
			opt.fileSize = int64(size)
			return demoMain(opt, stdout, stderr)
		}
	},
}

// demoMain runs the demo with opt and reports its outcome.
func demoMain(opt demoOptions, stdout, stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "fastnat demo: %v\n", err)
		return exitFailure
	}
	opt.bin = exe
	// Until the demo returns, SIGINT and SIGTERM only cancel ctx: every
	// step ends and the deferred teardown removes what was built.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runDemo(ctx, opt, stdout); err != nil {
		if errors.Is(err, errDemoInterrupted) {
			fmt.Fprintf(stderr, "fastnat demo: %v\n", err)
		} else {
			fmt.Fprintf(stderr, "fastnat demo: FAILED: %v\n", err)
		}
		return exitFailure
	}
	fmt.Fprintln(stdout, "\nfastnat demo: OK")
	return exitOK
}

// demo is one run: the topology, the daemon and what the steps found.
type demo struct {
	out    io.Writer
	opt    demoOptions
	topo   *testnet.Topology
	daemon *testnet.Process
	ftp    *testnet.FTPServer
	config string // configuration file
	socket string // control socket
	file   string // file name on the FTP server
	sha256 string
	step   int
}

// demoSteps is the number of narrated steps, teardown included.
const demoSteps = 8

// runDemo runs every step and always tears down what it built; ctx ending
// (SIGINT) stops the step under way.
func runDemo(ctx context.Context, opt demoOptions, out io.Writer) (err error) {
	if err := demoPreflight(os.Geteuid(), toolFound); err != nil {
		return err
	}
	d := &demo{out: out, opt: opt, file: "payload.bin"}
	fmt.Fprintln(out, "fastnat demo: the case (an FTP server published on port 9091) on this machine")
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = errDemoInterrupted
		}
		// After an interrupt there is nothing to diagnose.
		if terr := d.teardown(err != nil && err != errDemoInterrupted); terr != nil {
			err = errors.Join(err, fmt.Errorf("teardown: %w", terr))
		}
	}()
	for _, step := range []func(context.Context) error{
		d.network, d.ftpServer, d.startFastnat, d.theCase, d.theFix, d.sessions, d.bench,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// header starts the next step.
func (d *demo) header(format string, args ...any) {
	d.step++
	fmt.Fprintf(d.out, "\n[%d/%d] %s\n", d.step, demoSteps, fmt.Sprintf(format, args...))
}

// say prints one indented line of narration.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "  "+format+"\n", args...)
}

// quote prints text as an indented block.
func (d *demo) quote(text string) {
	if strings.TrimSpace(text) == "" {
		return
	}
	for line := range strings.Lines(strings.TrimRight(text, "\n")) {
		fmt.Fprintf(d.out, "  | %s", line)
	}
	fmt.Fprintln(d.out)
}

func (d *demo) network(ctx context.Context) error {
	d.header("Building the network: three namespaces joined by veth pairs")
	t, err := testnet.New(ctx, testnet.Options{Queues: d.opt.queues})
	if err != nil {
		return err
	}
	d.topo = t
	d.socket = filepath.Join(t.Dir, "fastnat.sock")
	d.config = filepath.Join(t.Dir, "fastnat.toml")
	d.say("client  %-16s eth0 %v/24, default via %v", t.Client, testnet.ClientAddr, testnet.RouterOutsideAddr)
	d.say("router  %-16s outside %v/24, inside %v/24, %d queues each, kernel forwarding off",
		t.Router, testnet.RouterOutsideAddr, testnet.RouterInsideAddr, t.Queues)
	d.say("server  %-16s eth0 %v/24, default via %v", t.Server, testnet.ServerAddr, testnet.RouterInsideAddr)
	d.say("With forwarding off only fastnat can carry a packet from client to server.")
	return nil
}

func (d *demo) ftpServer(ctx context.Context) error {
	d.header("FTP server inside: vsftpd on %v", demoInsideFTP)
	s, err := d.topo.StartFTPServer(ctx, testnet.FTPServerConfig{NS: d.topo.Server, Addr: demoInsideFTP})
	if err != nil {
		return err
	}
	d.ftp = s
	d.sha256, err = testnet.WriteRandomFile(filepath.Join(s.Root(), d.file), d.opt.fileSize, 0x9091)
	if err != nil {
		return err
	}
	d.say("serving %s: %d random bytes, sha256 %s", d.file, d.opt.fileSize, d.sha256)
	d.say("passive data ports %d-%d; active data connections from port 20", testnet.DefaultPasvMin, testnet.DefaultPasvMax)
	return nil
}

func (d *demo) startFastnat(ctx context.Context) error {
	d.header("fastnat as the router, configured like the case's firewall (no port mapping yet)")
	if err := os.WriteFile(d.config, []byte(demoConfig(d.socket, false)), 0o600); err != nil {
		return err
	}
	d.say("%s:", d.config)
	d.quote(demoConfig(d.socket, false))
	p, err := d.topo.Start(d.topo.Router, d.opt.bin, "run", "-c", d.config)
	if err != nil {
		return err
	}
	p.Name = "fastnat"
	d.daemon = p
	d.say("$ ip netns exec %s %s run -c %s", d.topo.Router, d.opt.bin, d.config)
	if err := d.waitLog(ctx, "fastnat running", 0, 15*time.Second); err != nil {
		return err
	}
	d.quote(logLines(p.Output(), "serving", "fastnat running"))
	return nil
}

// waitLog waits until fastnat's output holds more than n lines containing
// want.
func (d *demo) waitLog(ctx context.Context, want string, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for strings.Count(d.daemon.Output(), want) <= n {
		if done, err := d.daemon.Exited(); done {
			return fmt.Errorf("fastnat exited (%v):\n%s", err, d.daemon.Output())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fastnat did not log %q within %v:\n%s", want, limit, d.daemon.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// logLines returns fastnat's log lines that contain one of words, without
// their time stamps.
func logLines(out string, words ...string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		for _, w := range words {
			if strings.Contains(line, w) {
				if strings.HasPrefix(line, "time=") {
					if _, rest, ok := strings.Cut(line, " "); ok {
						line = rest
					}
				}
				b.WriteString(line)
				break
			}
		}
	}
	return b.String()
}

// fetch downloads the file from the client namespace through the public
// address with curl in mode.
func (d *demo) fetch(ctx context.Context, mode testnet.Mode, connect, limit time.Duration) (testnet.FetchResult, error) {
	return testnet.FetchCheck(ctx, testnet.FetchSpec{
		NS: d.topo.Client, Tool: testnet.Curl, Mode: mode,
		URL:            d.ftp.URL(demoPublicFTP, d.file),
		Dst:            filepath.Join(d.topo.Dir, "download-"+strings.ToLower(mode.String())),
		ConnectTimeout: connect, Timeout: limit,
	}, d.sha256)
}

func (d *demo) theCase(ctx context.Context) error {
	d.header("The case: a passive download from the client through %v", demoPublicFTP)
	d.say("$ curl --ftp-pasv %s   (in %s)", d.ftp.URL(demoPublicFTP, d.file), d.topo.Client)
	res, err := d.fetch(ctx, testnet.PASV, 2*time.Second, 15*time.Second)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return errors.New("the download worked without the port mapping; fastnat should reproduce the case's failure")
	}
	reply := res.Reply("227")
	d.say("server's reply: %s", reply)
	if !strings.Contains(reply, "(10,77,0,226,") {
		return fmt.Errorf("download failed, but not as in the case: %v", err)
	}
	d.say("FAILED, as in the case: port 9091 is not FTP to the NAT, so no ALG rewrote the")
	d.say("inside address 10.77.0.226 in the reply and no session awaits the data connection.")
	return nil
}

func (d *demo) theFix(ctx context.Context) error {
	d.header("The fix: port-mapping application ftp port 9091, then SIGHUP")
	if err := os.WriteFile(d.config, []byte(demoConfig(d.socket, true)), 0o600); err != nil {
		return err
	}
	d.say("added to %s:", d.config)
	d.quote(strings.TrimLeft(demoPortMapping, "\n"))
	reloads := strings.Count(d.daemon.Output(), "configuration reloaded")
	d.say("$ kill -HUP %d", d.daemon.Pid())
	if err := syscall.Kill(d.daemon.Pid(), syscall.SIGHUP); err != nil {
		return fmt.Errorf("signal fastnat: %w", err)
	}
	if err := d.waitLog(ctx, "configuration reloaded", reloads, 10*time.Second); err != nil {
		return err
	}
	d.quote(logLines(d.daemon.Output(), "configuration reloaded"))
	for _, m := range []testnet.Mode{testnet.PASV, testnet.PORT} {
		res, err := d.fetch(ctx, m, 5*time.Second, 60*time.Second)
		if err != nil {
			return fmt.Errorf("%v download after the fix: %w", m, err)
		}
		rate := float64(res.Size) / res.Elapsed.Seconds() / 1e6
		switch m {
		case testnet.PASV:
			d.say("curl PASV: server's reply: %s", res.Reply("227"))
			d.say("           the ALG rewrote 10,77,0,226 to the public address and expects the data connection")
		case testnet.PORT:
			d.say("curl PORT: client sent: %s", firstWith(res.Sent, "PORT "))
			d.say("           the server connects back from port 20; fastnat translates it to %v", testnet.PublicAddr)
		}
		d.say("           %d bytes in %v (%.0f MB/s), sha256 matches", res.Size, res.Elapsed.Round(time.Millisecond), rate)
	}
	return nil
}

// firstWith returns the first of lines that starts with prefix.
func firstWith(lines []string, prefix string) string {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func (d *demo) sessions(ctx context.Context) error {
	d.header("The session table")
	d.say("$ fastnat show sessions -c %s", d.config)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.opt.bin, "show", "sessions", "-c", d.config).CombinedOutput()
	if err != nil && strings.Contains(string(out), "not implemented") {
		d.quote(string(out))
		return nil
	}
	if err != nil {
		return fmt.Errorf("fastnat show sessions: %w\n%s", err, out)
	}
	d.quote(string(out))
	return nil
}

func (d *demo) bench(ctx context.Context) error {
	d.header("Bench: a %v UDP flood through fastnat", d.opt.bench)
	sink, err := testnet.ListenUDP(d.topo.Server, demoInsideUDP)
	if err != nil {
		return err
	}
	defer sink.Close()
	_ = sink.SetReadBuffer(8 << 20)
	var received atomic.Uint64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, err := sink.Read(buf); err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			received.Add(1)
		}
	}()
	// One socket per queue: each is a flow, and the veth spreads flows
	// over its queues by a hash, so more than one worker gets work.
	flows := d.topo.Queues * 2
	conns := make([]*net.UDPConn, flows)
	for i := range conns {
		c, err := testnet.DialUDP(d.topo.Client, netip.AddrPort{}, demoPublicUDP)
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	const payload = 64
	d.say("senders: %d sockets (flows) in %s to %v (nat server udp to %v), %d-byte payloads (%d-byte frames)",
		flows, d.topo.Client, demoPublicUDP, demoInsideUDP, payload, 14+20+8+payload)
	d.say("sink:    a socket in %s on %v counting what arrives", d.topo.Server, demoInsideUDP)

	// Until the first datagrams arrive the router still resolves the
	// server's MAC address; start counting once every flow went through.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < uint64(flows) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no datagram to %v reached the sink in 5s", demoPublicUDP)
		}
		for _, c := range conns {
			_, _ = c.Write(make([]byte, payload))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	before := received.Load()
	var sent atomic.Uint64
	start := time.Now()
	end := start.Add(d.opt.bench)
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, payload)
			n := uint64(0)
			for i := uint64(0); ; i++ {
				if i%256 == 0 && (ctx.Err() != nil || time.Now().After(end)) {
					break
				}
				binary.BigEndian.PutUint64(buf, i)
				// A write fails only transiently (ENOBUFS, or
				// ECONNREFUSED from a stray ICMP error); such a
				// datagram is not counted as sent.
				if _, err := c.Write(buf); err == nil {
					n++
				}
			}
			sent.Add(n)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	time.Sleep(300 * time.Millisecond) // the last datagrams in flight
	got := received.Load() - before
	total := sent.Load()
	loss := 0.0
	if total > 0 && got < total {
		loss = 100 * float64(total-got) / float64(total)
	}
	secs := elapsed.Seconds()
	d.say("sent     %10d datagrams in %.1f s  %9.0f pps", total, secs, float64(total)/secs)
	d.say("received %10d datagrams            %9.0f pps  %.0f Mbit/s of frames, loss %.2f%%",
		got, float64(got)/secs, float64(got)*float64(14+20+8+payload)*8/secs/1e6, loss)
	d.say("Senders, the kernel's veth path, fastnat's workers and the sink share this")
	d.say("machine's %d CPUs, so this shows the path working, not fastnat's top speed;", runtime.NumCPU())
	d.say("`fastnat bench` compares fastnat with the kernel's NAT. The workers' counters")
	d.say("below show how the flows spread over the queues.")
	if got == 0 {
		return errors.New("bench: nothing reached the sink")
	}
	return nil
}

// teardown stops fastnat and removes the topology. After a failure it
// first prints what helps to see why.
func (d *demo) teardown(failed bool) error {
	d.step = demoSteps - 1
	d.header("Teardown")
	var errs []error
	if d.daemon != nil {
		if err := d.daemon.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("fastnat: %w", err))
		}
		if failed {
			d.say("fastnat's log:")
			d.quote(tailLines(d.daemon.Output(), 40))
		} else {
			d.say("fastnat stopped (SIGTERM: XDP detached, sockets closed); its counters:")
			d.quote(logLines(d.daemon.Output(), "worker totals"))
		}
	}
	if d.topo != nil {
		if failed && d.ftp != nil {
			d.say("vsftpd's log:")
			d.quote(tailLines(d.ftp.Log(), 20))
		}
		if err := d.topo.Close(); err != nil {
			errs = append(errs, err)
		} else {
			d.say("removed %s and %s", strings.Join(d.topo.Namespaces(), ", "), d.topo.Dir)
		}
	}
	return errors.Join(errs...)
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	lines := strings.SplitAfter(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}
