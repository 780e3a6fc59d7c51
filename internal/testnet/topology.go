package testnet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The fixed addressing plan (RFC 2544 benchmarking space outside, RFC 1918
// inside). Every Topology uses it; only the namespace names differ per run.
var (
	OutsideNet        = netip.MustParsePrefix("198.18.0.0/24")
	ClientAddr        = netip.MustParseAddr("198.18.0.1")
	RouterOutsideAddr = netip.MustParseAddr("198.18.0.254")
	PublicAddr        = netip.MustParseAddr("198.18.0.204")
	InsideNet         = netip.MustParsePrefix("10.77.0.0/24")
	RouterInsideAddr  = netip.MustParseAddr("10.77.0.1")
	ServerAddr        = netip.MustParseAddr("10.77.0.226")
	HostAddr          = netip.MustParseAddr("10.77.0.5")
)

// The ports of the case: an FTP server listening inside on FTPInsidePort
// is published on PublicAddr:FTPPublicPort.
const (
	FTPInsidePort = 2021
	FTPPublicPort = 9091
)

// Link names. Names live inside their namespace, so they are the same in
// every run and never collide with the host's.
const (
	RouterOutsideLink = "outside" // router's veth towards the client
	RouterInsideLink  = "inside"  // router's veth towards the server
	NodeLink          = "eth0"    // the client's, server's and host's veth
	ServerBridge      = "br0"     // server's bridge when Options.InsideHost is set
	serverHostPort    = "hostport"
)

// setupTimeout bounds the whole of New and of Close.
const setupTimeout = 30 * time.Second

// Options choose the variable parts of a topology.
type Options struct {
	// Queues is the number of rx and tx queues of both ends of the
	// router's veths (numrxqueues/numtxqueues); 0 means 1.
	Queues int
	// Forwarding turns the router's ip_forward on. Leave it off when
	// fastnat is the router, so that only fastnat can carry traffic.
	Forwarding bool
	// InsideHost adds a fourth namespace, an inside client at HostAddr,
	// on the inside segment (bridged in the server namespace).
	InsideHost bool
	// KeepOffload leaves the veths' tx checksum offload on. Only useful to
	// show what goes wrong without turning it off; see New.
	KeepOffload bool
}

// Topology is a set of network namespaces joined by veth pairs; see the
// package documentation for the picture. Its fields are read-only.
type Topology struct {
	ID     string // random suffix shared by the namespace names
	Client string // namespace of the outside client (ClientAddr)
	Router string // namespace of the router: fastnat or the kernel NAT
	Server string // namespace of the inside server (ServerAddr)
	Host   string // namespace of the inside client (HostAddr); "" unless Options.InsideHost
	// ServerLink is the server's interface holding ServerAddr: NodeLink,
	// or ServerBridge with an inside host.
	ServerLink string
	Queues     int    // queues of the router's veths
	Dir        string // scratch directory removed by Close (mode 0755)

	mu     sync.Mutex
	procs  []*Process
	closed bool
}

// Namespaces lists the topology's namespaces in creation order.
func (t *Topology) Namespaces() []string {
	ns := []string{t.Client, t.Router, t.Server}
	if t.Host != "" {
		ns = append(ns, t.Host)
	}
	return ns
}

// New builds a topology. On error everything created so far is removed.
//
// Tx checksum offload is turned off on every veth (ethtool -K IF tx off).
// With it on, a veth hands its peer CHECKSUM_PARTIAL packets: the TCP/UDP
// checksum field holds only the pseudo-header sum and the real checksum is
// left for a NIC that does not exist. The kernel's own stack knows this
// from the skb's metadata, but an XDP program or AF_XDP socket on the peer
// sees bare bytes, so fastnat would read, patch incrementally and forward
// a wrong checksum, and the receiver would drop the segment. With tx
// offload off the sender's stack computes full checksums in software (and
// TSO goes off with it, so no frame exceeds the MTU).
func New(ctx context.Context, opt Options) (*Topology, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("create namespaces: %w", ErrNotRoot)
	}
	if err := CheckTools("ip", "ethtool", "sysctl"); err != nil {
		return nil, err
	}
	q := opt.Queues
	if q <= 0 {
		q = 1
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	t := &Topology{
		ID:         id,
		Client:     "fnt-" + id + "-cli",
		Router:     "fnt-" + id + "-rtr",
		Server:     "fnt-" + id + "-srv",
		ServerLink: NodeLink,
		Queues:     q,
	}
	if opt.InsideHost {
		t.Host = "fnt-" + id + "-hst"
		t.ServerLink = ServerBridge
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := t.build(ctx, opt); err != nil {
		return nil, errors.Join(fmt.Errorf("build topology %s: %w", id, err), t.Close())
	}
	return t, nil
}

func (t *Topology) build(ctx context.Context, opt Options) error {
	dir, err := os.MkdirTemp("", "fnt-"+t.ID+"-")
	if err != nil {
		return err
	}
	// vsftpd drops to an unprivileged user inside directories under here.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	t.Dir = dir

	for _, ns := range t.Namespaces() {
		if _, err := runHost(ctx, "ip", "netns", "add", ns); err != nil {
			return err
		}
		if err := writeResolvConf(ns); err != nil {
			return err
		}
		// No IPv6: router solicitations and neighbour discovery would be
		// noise on every link fastnat reads.
		if err := Sysctl(ctx, ns, "net.ipv6.conf.all.disable_ipv6", "1"); err != nil {
			return err
		}
		if err := Sysctl(ctx, ns, "net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
			return err
		}
	}
	qs := strconv.Itoa(t.Queues)
	queues := []string{"numtxqueues", qs, "numrxqueues", qs}
	veth := func(ns, name, peerNS, peer string, q []string) []string {
		a := []string{"-n", ns, "link", "add", name}
		a = append(a, q...)
		a = append(a, "type", "veth", "peer", "name", peer, "netns", peerNS)
		return append(a, q...)
	}
	steps := [][]string{
		veth(t.Router, RouterOutsideLink, t.Client, NodeLink, queues),
		veth(t.Router, RouterInsideLink, t.Server, NodeLink, queues),
	}
	if t.Host != "" {
		steps = append(steps,
			[]string{"-n", t.Server, "link", "add", ServerBridge, "type", "bridge"},
			[]string{"-n", t.Server, "link", "set", NodeLink, "master", ServerBridge},
			veth(t.Server, serverHostPort, t.Host, NodeLink, nil),
			[]string{"-n", t.Server, "link", "set", serverHostPort, "master", ServerBridge},
			[]string{"-n", t.Server, "link", "set", serverHostPort, "up"},
			[]string{"-n", t.Server, "link", "set", NodeLink, "up"},
		)
	}
	addr := func(ns string, a netip.Addr, p netip.Prefix, link string) []string {
		return []string{"-n", ns, "addr", "add", netip.PrefixFrom(a, p.Bits()).String(), "dev", link}
	}
	steps = append(steps,
		addr(t.Client, ClientAddr, OutsideNet, NodeLink),
		addr(t.Router, RouterOutsideAddr, OutsideNet, RouterOutsideLink),
		addr(t.Router, RouterInsideAddr, InsideNet, RouterInsideLink),
		addr(t.Server, ServerAddr, InsideNet, t.ServerLink),
	)
	if t.Host != "" {
		steps = append(steps, addr(t.Host, HostAddr, InsideNet, NodeLink))
	}
	up := func(ns, link string) []string { return []string{"-n", ns, "link", "set", link, "up"} }
	for _, ns := range t.Namespaces() {
		steps = append(steps, up(ns, "lo"))
	}
	steps = append(steps,
		up(t.Client, NodeLink), up(t.Router, RouterOutsideLink), up(t.Router, RouterInsideLink),
		up(t.Server, t.ServerLink),
		[]string{"-n", t.Client, "route", "add", "default", "via", RouterOutsideAddr.String()},
		[]string{"-n", t.Server, "route", "add", "default", "via", RouterInsideAddr.String()},
	)
	if t.Host != "" {
		steps = append(steps,
			up(t.Host, NodeLink),
			[]string{"-n", t.Host, "route", "add", "default", "via", RouterInsideAddr.String()},
		)
	}
	for _, s := range steps {
		if _, err := runHost(ctx, "ip", s...); err != nil {
			return err
		}
	}
	if !opt.KeepOffload {
		for _, l := range t.veths() {
			if _, err := Run(ctx, l[0], "ethtool", "-K", l[1], "tx", "off"); err != nil {
				return err
			}
		}
	}
	return t.SetForwarding(ctx, opt.Forwarding)
}

// netnsEtc holds per-namespace files that `ip netns exec NS` binds over
// their namesakes in /etc (ip-netns(8)).
const netnsEtc = "/etc/netns"

// writeResolvConf gives namespace ns a resolv.conf of its own naming a
// name server on its loopback, where nothing listens: a program that looks
// up a name (ncftp looks up addresses, for one) is refused at once instead
// of sending queries to the machine's name server — an address outside the
// topology, which no route reaches: the query would wait out the
// resolver's timeouts (10 s with glibc's defaults) behind the NAT.
func writeResolvConf(ns string) error {
	d := filepath.Join(netnsEtc, ns)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("resolv.conf for %s: %w", ns, err)
	}
	conf := "# fastnat testnet: no name server reachable from the topology\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
	if err := os.WriteFile(filepath.Join(d, "resolv.conf"), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("resolv.conf for %s: %w", ns, err)
	}
	return nil
}

// veths lists every veth end as (namespace, link).
func (t *Topology) veths() [][2]string {
	v := [][2]string{
		{t.Client, NodeLink}, {t.Router, RouterOutsideLink},
		{t.Router, RouterInsideLink}, {t.Server, NodeLink},
	}
	if t.Host != "" {
		v = append(v, [2]string{t.Server, serverHostPort}, [2]string{t.Host, NodeLink})
	}
	return v
}

// Sysctl sets key to value inside namespace ns.
func Sysctl(ctx context.Context, ns, key, value string) error {
	_, err := Run(ctx, ns, "sysctl", "-qw", key+"="+value)
	return err
}

// SetForwarding turns IPv4 forwarding in the router namespace on or off.
func (t *Topology) SetForwarding(ctx context.Context, on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	if err := Sysctl(ctx, t.Router, "net.ipv4.ip_forward", v); err != nil {
		return fmt.Errorf("set ip_forward=%s: %w", v, err)
	}
	return nil
}

// AddPublicAddr adds PublicAddr/32 to the router's outside link, so that
// the router's kernel answers ARP for it (and, with the kernel NAT, owns
// it). Adding it twice is not an error.
func (t *Topology) AddPublicAddr(ctx context.Context) error {
	_, err := runHost(ctx, "ip", "-n", t.Router, "addr", "replace",
		netip.PrefixFrom(PublicAddr, 32).String(), "dev", RouterOutsideLink)
	if err != nil {
		return fmt.Errorf("add public address: %w", err)
	}
	return nil
}

// Start starts a long-running command in namespace ns; Close stops it.
func (t *Topology) Start(ns, name string, args ...string) (*Process, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	p, err := Start(ns, name, args...)
	if err != nil {
		return nil, err
	}
	t.procs = append(t.procs, p)
	return p, nil
}

// Processes returns the processes started with Start, oldest first.
func (t *Topology) Processes() []*Process {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]*Process(nil), t.procs...)
}

// Close stops every process started with Start (newest first), kills any
// other process still inside the topology's namespaces (they can only be
// ones this topology started: the names are new), deletes the namespaces
// (which deletes the veths and the nftables rules with them) and removes
// Dir. It returns every error it met; calling it again does nothing.
func (t *Topology) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	procs := t.procs
	t.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		// A process that died early has been reported by whoever used it;
		// here only the cleanup matters.
		_ = procs[i].Stop()
	}
	for _, ns := range t.Namespaces() {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue // never created
		}
		if out, err := runHost(ctx, "ip", "netns", "pids", ns); err == nil {
			for _, f := range strings.Fields(string(out)) {
				// Never ourselves: a thread of this process may sit in
				// the namespace (see Do), and the kernel then lists us.
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if _, err := runHost(ctx, "ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(filepath.Join(netnsEtc, ns)); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Dir != "" {
		if err := os.RemoveAll(t.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Diagnose returns the state of every namespace (addresses, routes,
// neighbours, the router's nftables ruleset and sysctls) and the end of each
// started process's output, for a failing test's log.
func (t *Topology) Diagnose(ctx context.Context) string {
	var b strings.Builder
	show := func(ns string, name string, args ...string) {
		out, err := Run(ctx, ns, name, args...)
		fmt.Fprintf(&b, "### %s: %s %s\n%s", ns, name, strings.Join(args, " "), out)
		if err != nil {
			fmt.Fprintf(&b, "(error: %v)\n", err)
		}
	}
	for _, ns := range t.Namespaces() {
		show(ns, "ip", "-br", "addr")
		show(ns, "ip", "route")
		show(ns, "ip", "neigh")
	}
	show(t.Router, "sysctl", "net.ipv4.ip_forward")
	show(t.Router, "nft", "list", "ruleset")
	for _, p := range t.Processes() {
		fmt.Fprintf(&b, "### process %s (pid %d)\n%s\n", p.Name, p.Pid(), tail(p.Output(), 4096))
	}
	return b.String()
}

// CheckTools returns an error wrapping ErrMissingTool that names every
// program in names not found in PATH.
func CheckTools(names ...string) error {
	var missing []string
	for _, n := range names {
		if !filepath.IsAbs(ToolPath(n)) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissingTool, strings.Join(missing, ", "))
	}
	return nil
}

// newID returns a random suffix for namespace names that no existing
// namespace uses.
func newID() (string, error) {
	for range 16 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if _, err := os.Stat("/run/netns/fnt-" + id + "-rtr"); os.IsNotExist(err) {
			return id, nil
		}
	}
	return "", errors.New("no free namespace id")
}
