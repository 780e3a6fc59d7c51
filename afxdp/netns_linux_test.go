package afxdp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// requireXDP skips tests that need root and AF_XDP.
func requireXDP(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: AF_XDP sockets, BPF programs and network namespaces")
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		t.Skip("kernel without AF_XDP sockets")
	}
	if err == nil {
		unix.Close(fd)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

var nsCounter atomic.Int32

// netNS is a network namespace that lives as long as the test.
type netNS struct {
	name string
	h    netns.NsHandle
}

func newNetNS(t testing.TB) *netNS {
	t.Helper()
	name := fmt.Sprintf("fxa-%d-%d", os.Getpid(), nsCounter.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	n := &netNS{name: name, h: h}
	n.ip(t, "link", "set", "lo", "up")
	return n
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ip runs `ip -n NS args...`.
func (n *netNS) ip(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "-n", n.name}, args...)...)
}

// exec runs a command inside the namespace.
func (n *netNS) exec(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, append([]string{"ip", "netns", "exec", n.name}, args...)...)
}

// do runs fn on an OS thread that has entered the namespace. The thread is
// never unlocked, so Go discards it afterwards instead of reusing a thread
// in the wrong namespace. Sockets, BPF links and netlink handles created in
// fn stay in the namespace.
func (n *netNS) do(t testing.TB, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.h); err != nil {
			errc <- fmt.Errorf("enter %s: %w", n.name, err)
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// vethPair joins namespaces a and b with a veth pair of the given queue
// count, addresses aAddr on aName and bAddr on bName ("" for none), both up.
//
// Transmit checksum offload is turned off on both ends: a veth hands the
// packets its peer sends up as CHECKSUM_PARTIAL, with the TCP or UDP
// checksum not yet filled in, because no real wire is crossed. The AF_XDP
// side copies such a packet out as it is, and when fastnat sends it on
// through another interface the receiver finds a wrong checksum and drops
// it. With "tx off" the sender's stack computes the checksum in software.
func vethPair(t testing.TB, a *netNS, aName, aAddr string, b *netNS, bName, bAddr string, queues int) {
	t.Helper()
	q := fmt.Sprint(queues)
	a.ip(t, "link", "add", aName, "numtxqueues", q, "numrxqueues", q, "type", "veth",
		"peer", "name", bName, "netns", b.name, "numtxqueues", q, "numrxqueues", q)
	for _, e := range []struct {
		ns         *netNS
		name, addr string
	}{{a, aName, aAddr}, {b, bName, bAddr}} {
		e.ns.exec(t, "ethtool", "-K", e.name, "tx", "off")
		if e.addr != "" {
			e.ns.ip(t, "addr", "add", e.addr, "dev", e.name)
		}
		e.ns.ip(t, "link", "set", e.name, "up")
	}
}
