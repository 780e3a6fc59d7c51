package afxdp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// attachByNetlink attaches an XDP_PASS program named name the old way, as
// a crashed process would have left it.
func attachByNetlink(t *testing.T, ns *netNS, dev, name string, flags int) {
	t.Helper()
	ns.do(t, func() error {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: ebpf.XDP, License: "MIT",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()}})
		if err != nil {
			return err
		}
		defer prog.Close() // the attachment keeps it alive
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		return netlink.LinkSetXdpFdWithFlags(l, prog.FD(), flags)
	})
}

// attachedProgram returns the name and id of the XDP program on dev.
func attachedProgram(t *testing.T, ns *netNS, dev string) (name string, id uint32) {
	t.Helper()
	ns.do(t, func() error {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return err
		}
		x := l.Attrs().Xdp
		if x == nil || !x.Attached {
			return nil
		}
		id = x.ProgId
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			return err
		}
		defer p.Close()
		info, err := p.Info()
		if err != nil {
			return err
		}
		name = info.Name
		return nil
	})
	return name, id
}

func loadIn(t *testing.T, ns *netNS, spec IfaceSpec) (*Interface, error) {
	t.Helper()
	var i *Interface
	var err error
	ns.do(t, func() error {
		i, err = Load(spec)
		return nil
	})
	if i != nil {
		t.Cleanup(func() { i.Close() })
	}
	return i, err
}

func attachIn(t *testing.T, ns *netNS, i *Interface) error {
	t.Helper()
	var err error
	ns.do(t, func() error { err = i.Attach(); return nil })
	return err
}

func TestAttachReplacesStale(t *testing.T) {
	for _, tt := range []struct {
		name  string
		flags int
		mode  Mode
	}{
		{"stale generic, attach generic", unix.XDP_FLAGS_SKB_MODE, ModeGeneric},
		{"stale native, attach native", unix.XDP_FLAGS_DRV_MODE, ModeNative},
		{"stale native, attach generic", unix.XDP_FLAGS_DRV_MODE, ModeGeneric},
	} {
		t.Run(tt.name, func(t *testing.T) {
			requireXDP(t)
			ns := newNetNS(t)
			vethPair(t, ns, "x0", "", ns, "x1", "", 1)
			attachByNetlink(t, ns, "x0", ProgramName, tt.flags)
			_, staleID := attachedProgram(t, ns, "x0")
			i, err := loadIn(t, ns, IfaceSpec{Name: "x0", Role: Outside, Mode: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := attachIn(t, ns, i); err != nil {
				t.Fatalf("attach over a stale program: %v", err)
			}
			name, id := attachedProgram(t, ns, "x0")
			info, _ := i.prog.Info()
			ourID, _ := info.ID()
			if name != ProgramName || id == staleID || id != uint32(ourID) {
				t.Fatalf("attached %q id %d; want ours (id %d), not the stale id %d", name, id, ourID, staleID)
			}
			if err := i.Close(); err != nil {
				t.Fatal(err)
			}
			if name, _ := attachedProgram(t, ns, "x0"); name != "" {
				t.Fatalf("program %q still attached after Close", name)
			}
		})
	}
}

func TestAttachRefusesOthers(t *testing.T) {
	requireXDP(t)
	ns := newNetNS(t)
	vethPair(t, ns, "x0", "", ns, "x1", "", 1)

	attachByNetlink(t, ns, "x0", "someone_else", unix.XDP_FLAGS_SKB_MODE)
	i, err := loadIn(t, ns, IfaceSpec{Name: "x0", Role: Outside, Mode: ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	if err := attachIn(t, ns, i); !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "someone_else") {
		t.Fatalf("attach over a foreign program: %v; want ErrBusy naming it", err)
	}
	if name, _ := attachedProgram(t, ns, "x0"); name != "someone_else" {
		t.Fatalf("foreign program replaced by %q", name)
	}

	// A fastnat that is running holds its program through a link, which a
	// second one must not take over.
	first, err := loadIn(t, ns, IfaceSpec{Name: "x1", Role: Inside, Mode: ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	if err := attachIn(t, ns, first); err != nil {
		t.Fatal(err)
	}
	second, err := loadIn(t, ns, IfaceSpec{Name: "x1", Role: Inside, Mode: ModeGeneric})
	if err != nil {
		t.Fatal(err)
	}
	if err := attachIn(t, ns, second); !errors.Is(err, ErrBusy) {
		t.Fatalf("second attach: %v; want ErrBusy", err)
	}
}

func TestSetupErrors(t *testing.T) {
	requireXDP(t)
	ns := newNetNS(t)
	vethPair(t, ns, "x0", "", ns, "x1", "", 1)
	x0, err := loadIn(t, ns, IfaceSpec{Name: "x0", Role: Outside})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"no such interface", func() error {
			_, err := Load(IfaceSpec{Name: "nope0", Role: Outside})
			return err
		}, ErrNoInterface},
		{"queues of no such interface", func() error {
			_, err := Queues("nope0")
			return err
		}, ErrNoInterface},
		{"no role", func() error {
			_, err := Load(IfaceSpec{Name: "x0"})
			return err
		}, ErrInvalidOptions},
		{"IPv6 gateway", func() error {
			_, err := Load(IfaceSpec{Name: "x0", Role: Outside, Gateway: netip.MustParseAddr("2001:db8::1")})
			return err
		}, ErrInvalidOptions},
		{"queue beyond the interface's", func() error {
			_, err := Open([]*Interface{x0}, 1, Options{})
			return err
		}, ErrQueueMismatch},
		{"interface twice", func() error {
			_, err := Open([]*Interface{x0, x0}, 0, Options{})
			return err
		}, ErrInvalidOptions},
		{"queue held by another worker", func() error {
			w, err := Open([]*Interface{x0}, 0, Options{FramesPerQueue: 64, RingSize: 64})
			if err != nil {
				return err
			}
			defer w.Close()
			saved := bindRetries
			bindRetries = 0
			defer func() { bindRetries = saved }()
			_, err = Open([]*Interface{x0}, 0, Options{FramesPerQueue: 64, RingSize: 64})
			return err
		}, ErrBusy},
		{"frame size", func() error {
			_, err := Open([]*Interface{x0}, 0, Options{FrameSize: 1500})
			return err
		}, ErrInvalidOptions},
		{"ring larger than the frames", func() error {
			_, err := Open([]*Interface{x0}, 0, Options{FramesPerQueue: 64, RingSize: 128})
			return err
		}, ErrInvalidOptions},
		{"ring size not a power of two", func() error {
			_, err := Open([]*Interface{x0}, 0, Options{RingSize: 100})
			return err
		}, ErrInvalidOptions},
		{"no native XDP on loopback", func() error {
			lo, err := Load(IfaceSpec{Name: "lo", Role: Outside, Mode: ModeNative})
			if err != nil {
				return err
			}
			defer lo.Close()
			return lo.Attach()
		}, ErrXDPUnsupported},
		{"mode", func() error {
			_, err := ParseMode("turbo")
			return err
		}, ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			ns.do(t, func() error { err = tt.run(); return nil })
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v; want %v", err, tt.want)
			}
		})
	}
}

func TestSysErr(t *testing.T) {
	tests := []struct {
		in   error
		want error
	}{
		{unix.EPERM, ErrNotRoot},
		{unix.EACCES, ErrNotRoot},
		{unix.EAFNOSUPPORT, ErrXDPUnsupported},
		{unix.EOPNOTSUPP, ErrXDPUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.in.Error(), func(t *testing.T) {
			err := sysErr(tt.in)
			if !errors.Is(err, tt.want) || !errors.Is(err, tt.in) {
				t.Fatalf("sysErr(%v) = %v; want both %v and the errno", tt.in, err, tt.want)
			}
		})
	}
}

func TestAutoMode(t *testing.T) {
	requireXDP(t)
	ns := newNetNS(t)
	vethPair(t, ns, "x0", "", ns, "x1", "", 1)
	i, err := loadIn(t, ns, IfaceSpec{Name: "x0", Role: Outside})
	if err != nil {
		t.Fatal(err)
	}
	if i.Mode() != vethAutoMode {
		t.Fatalf("auto on veth is %v, want %v", i.Mode(), vethAutoMode)
	}
	lo, err := loadIn(t, ns, IfaceSpec{Name: "lo", Role: Outside})
	if err != nil {
		t.Fatal(err)
	}
	if err := attachIn(t, ns, lo); err != nil {
		t.Fatal(err)
	}
	if lo.Mode() != ModeGeneric {
		t.Fatalf("auto on loopback (no native XDP) is %v, want generic", lo.Mode())
	}
}

func TestQueues(t *testing.T) {
	requireXDP(t)
	ns := newNetNS(t)
	vethPair(t, ns, "x0", "", ns, "x1", "", 3)
	for _, tt := range []struct {
		dev  string
		want int
	}{{"x0", 3}, {"lo", 1}} {
		var n int
		var err error
		ns.do(t, func() error { n, err = Queues(tt.dev); return err })
		if n != tt.want {
			t.Errorf("Queues(%s) = %d, want %d", tt.dev, n, tt.want)
		}
	}
}

func TestAddresses(t *testing.T) {
	requireXDP(t)
	ns := newNetNS(t)
	vethPair(t, ns, "x0", "198.18.7.8/24", ns, "x1", "198.18.8.1/24", 1)
	ns.ip(t, "addr", "add", "198.18.7.9/32", "dev", "x0", "label", "x0:fn") // left by a crashed run
	has := func(addr string) string {
		out := ns.ip(t, "-4", "-o", "addr", "show")
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, " "+addr+"/") {
				return strings.Fields(line)[1]
			}
		}
		return ""
	}
	var a *Addresses
	ns.do(t, func() (err error) { a, err = NewAddresses(); return err })
	add := func(dev, addr string) error {
		var err error
		ns.do(t, func() error { err = a.Add(dev, netip.MustParseAddr(addr)); return nil })
		return err
	}
	for _, tt := range []struct {
		name, dev, addr string
		want            error
	}{
		{"new public address", "x0", "198.18.7.7", nil},
		{"same again", "x0", "198.18.7.7", nil},
		{"operator's own address", "x0", "198.18.7.8", nil},
		{"leftover of a crashed run", "x0", "198.18.7.9", nil},
		{"address of another interface", "x0", "198.18.8.1", ErrAddrConflict},
		{"no such interface", "nope0", "198.18.7.10", ErrNoInterface},
		{"IPv6", "x0", "2001:db8::1", ErrInvalidOptions},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := add(tt.dev, tt.addr); !errors.Is(err, tt.want) {
				t.Fatalf("Add(%s, %s) = %v, want %v", tt.dev, tt.addr, err, tt.want)
			}
		})
	}
	if has("198.18.7.7") != "x0" {
		t.Fatal("198.18.7.7 not on x0")
	}
	// Remove takes off what Add put on, and leaves the operator's own.
	var err error
	ns.do(t, func() error { err = a.Add("x0", netip.MustParseAddr("198.18.7.10")); return nil })
	if err != nil || has("198.18.7.10") != "x0" {
		t.Fatalf("Add 198.18.7.10: %v", err)
	}
	for _, addr := range []string{"198.18.7.10", "198.18.7.8"} {
		ns.do(t, func() error { err = a.Remove("x0", netip.MustParseAddr(addr)); return nil })
		if err != nil {
			t.Fatalf("Remove %s: %v", addr, err)
		}
	}
	if has("198.18.7.10") != "" || has("198.18.7.8") != "x0" {
		t.Fatalf("after Remove: 198.18.7.10 on %q, 198.18.7.8 on %q; want removed and kept", has("198.18.7.10"), has("198.18.7.8"))
	}
	ns.do(t, func() error { err = a.Close(); return nil })
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{"198.18.7.7": "", "198.18.7.9": "", "198.18.7.8": "x0", "198.18.8.1": "x1"} {
		if got := has(addr); got != want {
			t.Errorf("after Close %s is on %q, want %q", addr, got, want)
		}
	}
}

func TestNeighbourResolution(t *testing.T) {
	requireXDP(t)
	r, b := newNetNS(t), newNetNS(t)
	vethPair(t, r, "r2", "198.18.2.1/24", b, "b0", "198.18.2.2/24", 1)
	bMAC := linkMAC(t, b, "b0")
	// eventually polls NextHop until it answers; the first call misses and
	// starts resolution.
	eventually := func(i *Interface, addr string) ([6]byte, bool) {
		for range 300 {
			if mac, ok := resolved(i.NextHop(ip(addr))); ok {
				return mac, true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return [6]byte{}, false
	}

	plain, err := loadIn(t, r, IfaceSpec{Name: "r2", Role: Outside})
	if err != nil {
		t.Fatal(err)
	}
	if mac, ok := eventually(plain, "198.18.2.2"); !ok || mac != bMAC {
		t.Fatalf("on-link neighbour resolved to %v, %v; want %v", mac, ok, bMAC)
	}
	if _, ok := resolved(plain.NextHop(ip("203.0.113.5"))); ok {
		t.Fatal("off-link destination resolved without a gateway")
	}
	if mac, ok := resolved(plain.NextHop(ip("198.18.2.77"))); ok {
		t.Fatalf("absent host resolved to %v", mac)
	}

	withGateway, err := loadIn(t, r, IfaceSpec{Name: "r2", Role: Outside, Gateway: netip.MustParseAddr("198.18.2.2")})
	if err != nil {
		t.Fatal(err)
	}
	if mac, ok := resolved(withGateway.NextHop(ip("203.0.113.5"))); !ok || mac != bMAC {
		t.Fatalf("off-link via configured gateway: %v, %v; want %v (already in the neighbour table)", mac, ok, bMAC)
	}

	r.ip(t, "route", "add", "default", "via", "198.18.2.2")
	viaRoute, err := loadIn(t, r, IfaceSpec{Name: "r2", Role: Outside})
	if err != nil {
		t.Fatal(err)
	}
	if mac, ok := resolved(viaRoute.NextHop(ip("203.0.113.5"))); !ok || mac != bMAC {
		t.Fatalf("off-link via the default route's gateway: %v, %v; want %v", mac, ok, bMAC)
	}

	// A neighbour that changes its MAC is followed.
	b.ip(t, "link", "set", "b0", "address", "02:00:00:00:00:42")
	r.ip(t, "neigh", "flush", "dev", "r2")
	want := [6]byte{2, 0, 0, 0, 0, 0x42}
	for range 300 {
		if mac, ok := resolved(plain.NextHop(ip("198.18.2.2"))); ok && mac == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("new MAC %v of 198.18.2.2 never seen", net.HardwareAddr(want[:]))
}

func TestPinCPU(t *testing.T) {
	cpu := runtime.NumCPU() - 1
	errc := make(chan error, 1)
	go func() {
		if err := PinCPU(cpu); err != nil {
			errc <- err
			return
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			errc <- err
			return
		}
		if set.Count() != 1 || !set.IsSet(cpu) {
			errc <- errors.New("affinity not set to the one cpu")
			return
		}
		errc <- nil // the goroutine exits locked: its pinned thread is discarded
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := PinCPU(-1); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("PinCPU(-1) = %v", err)
	}
}

// TestResolverSleeps checks that an idle resolver goes to sleep (no
// wakeups until its next resync) and that a miss wakes it at once: with
// resyncs a minute apart, only the miss's kick can get the neighbour
// resolved within the test's wait.
func TestResolverSleeps(t *testing.T) {
	requireXDP(t)
	defer func(d time.Duration) { resyncInterval = d }(resyncInterval)
	resyncInterval = time.Minute
	r, b := newNetNS(t), newNetNS(t)
	vethPair(t, r, "r3", "198.18.3.1/24", b, "b0", "198.18.3.2/24", 1)
	bMAC := linkMAC(t, b, "b0")
	i, err := loadIn(t, r, IfaceSpec{Name: "r3", Role: Outside})
	if err != nil {
		t.Fatal(err)
	}
	asleep := false
	for range 500 {
		if asleep = i.neigh.asleep.Load(); asleep {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !asleep {
		t.Fatal("the resolver never went to sleep")
	}
	if _, ok := resolved(i.NextHop(ip("198.18.3.2"))); ok {
		t.Fatal("resolved before anyone asked")
	}
	for range 500 {
		if mac, ok := resolved(i.NextHop(ip("198.18.3.2"))); ok {
			if mac != bMAC {
				t.Fatalf("resolved to %v, want %v", mac, bMAC)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a miss did not wake the sleeping resolver in 5 s (its next resync is a minute away)")
}

// linkMAC is the hardware address of link name in ns.
func linkMAC(t *testing.T, ns *netNS, name string) [6]byte {
	t.Helper()
	var mac [6]byte
	ns.do(t, func() error {
		l, err := netlink.LinkByName(name)
		if err == nil {
			copy(mac[:], l.Attrs().HardwareAddr)
		}
		return err
	})
	return mac
}
