package doctor

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/config"
)

// fakeHost is a recorded host: command outputs, files, directories,
// symlinks and XDP features. A command or file it does not have fails.
type fakeHost struct {
	cmds     map[string]string
	files    map[string]string
	dirs     map[string][]string
	links    map[string]string
	features map[string]afxdp.XDPFeatures
	euid     int
}

func (h *fakeHost) system() System {
	return System{
		Run: func(name string, args ...string) (string, error) {
			line := name + " " + strings.Join(args, " ")
			if out, ok := h.cmds[line]; ok {
				return out, nil
			}
			return "", fmt.Errorf("%s: Operation not supported", line)
		},
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := h.files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		ReadDir: func(p string) ([]string, error) {
			if d, ok := h.dirs[p]; ok {
				return d, nil
			}
			return nil, fs.ErrNotExist
		},
		EvalSymlinks: func(p string) (string, error) {
			if l, ok := h.links[p]; ok {
				return l, nil
			}
			return "", fs.ErrNotExist
		},
		XDPFeatures: func(name string) (afxdp.XDPFeatures, error) {
			if f, ok := h.features[name]; ok {
				return f, nil
			}
			return 0, afxdp.ErrNoFeatures
		},
		EUID:   h.euid,
		NumCPU: 16,
	}
}

// nic adds a PCI NIC: its sysfs device with MSI vectors (one per queue,
// named by name(q), on CPUs cpus(q)), and its ethtool answers.
func (h *fakeHost) nic(ifname, driver, pci string, queues, numa int, irqName func(q int) string, cpus func(q int) string) {
	dev := "/sys/devices/pci0000:00/" + pci
	h.links["/sys/class/net/"+ifname+"/device"] = dev
	h.files[dev+"/numa_node"] = fmt.Sprint(numa)
	var vectors []string
	for q := range queues {
		n := 100*(1+len(h.links)) + q
		vectors = append(vectors, fmt.Sprint(n))
		h.files["/proc/interrupts"] += fmt.Sprintf(" %d:  5  6  PCI-MSIX-%s  %d-edge  %s\n", n, pci, q, irqName(q))
		h.files[fmt.Sprintf("/proc/irq/%d/smp_affinity_list", n)] = cpus(q) + "\n"
	}
	h.dirs[dev+"/msi_irqs"] = vectors
	h.cmds["ethtool -i "+ifname] = "driver: " + driver + "\nversion: 1\n"
	h.cmds["ethtool -l "+ifname] = fmt.Sprintf("Channel parameters for %s:\nPre-set maximums:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t63\n"+
		"Current hardware settings:\nRX:\t\tn/a\nTX:\t\tn/a\nOther:\t\t1\nCombined:\t%d\n", ifname, queues)
	h.cmds["ethtool -k "+ifname] = "Features for " + ifname + ":\ntx-checksumming: on\nlarge-receive-offload: off\nrx-vlan-offload: on\ngeneric-receive-offload: on\nrx-gro-hw: off [fixed]\n"
	h.cmds["ethtool -n "+ifname+" rx-flow-hash udp4"] = "UDP over IPV4 flows use these fields for computing Hash flow key:\nIP SA\nIP DA\n" +
		"L4 bytes 0 & 1 [TCP/UDP src port]\nL4 bytes 2 & 3 [TCP/UDP dst port]\n\n"
}

// goodBox is a two-NIC mlx5 machine set up as docs/deploy.md says: four
// queues each, UDP hashed by ports, queue q's interrupt on CPU 2+q, the
// workers pinned beside them on the NICs' node.
func goodBox() *fakeHost {
	h := &fakeHost{cmds: map[string]string{}, files: map[string]string{}, dirs: map[string][]string{}, links: map[string]string{},
		features: map[string]afxdp.XDPFeatures{}}
	h.files["/proc/sys/kernel/osrelease"] = "6.12.0-amd64\n"
	h.files["/sys/devices/system/cpu/online"] = "0-15\n"
	h.files["/proc/self/status"] = "Name:\tfastnat\nCapEff:\t000001ffffffffff\n"
	h.dirs["/proc"] = []string{"1", "77", "self"}
	h.files["/proc/1/comm"] = "systemd\n"
	h.files["/proc/77/comm"] = "sshd\n"
	h.files["/proc/sys/net/ipv4/ip_forward"] = "0\n"
	for c := range 16 {
		h.dirs[fmt.Sprintf("/sys/devices/system/cpu/cpu%d", c)] = []string{"cache", fmt.Sprintf("node%d", c/8), "topology"}
	}
	for i, name := range []string{"ens1f0", "ens1f1"} {
		pci := fmt.Sprintf("0000:3b:00.%d", i)
		h.nic(name, "mlx5_core", pci, 4, 0, func(q int) string { return fmt.Sprintf("mlx5_comp%d@pci:%s", q, pci) },
			func(q int) string { return fmt.Sprint(2 + q) })
		h.features[name] = afxdp.XDPBasic | afxdp.XDPRedirect | afxdp.XDPZeroCopy
	}
	h.cmds["ip -j -d link show"] = `[{"ifindex":1,"ifname":"lo","mtu":65536},` +
		`{"ifindex":4,"ifname":"ens1f0","mtu":1500,"num_rx_queues":8},{"ifindex":5,"ifname":"ens1f1","mtu":1500,"num_rx_queues":8}]`
	h.cmds["ip -j -d link show type vlan"] = "[]"
	return h
}

const boxConfig = `[dataplane]
cpus = [2, 3, 4, 5]
[[interface]]
name = "ens1f0"
role = "outside"
[[interface]]
name = "ens1f1"
role = "inside"
`

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("fastnat.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// findings lists a report's findings of severity Warn or Fail as
// "check interface: message".
func problems(r *Report) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity >= Warn {
			out = append(out, fmt.Sprintf("%v %s %s: %s | %s", f.Severity, f.Check, f.Interface, f.Message, f.Fix))
		}
	}
	return out
}

func TestGoodBox(t *testing.T) {
	r := Examine(parse(t, boxConfig), goodBox().system())
	if p := problems(r); len(p) > 0 {
		t.Fatalf("problems on a box set up right:\n%s", strings.Join(p, "\n"))
	}
	for _, check := range []string{"queues", "rss", "mtu", "offloads", "xdp", "irqbalance", "irq", "numa", "memlock", "cpus", "forwarding"} {
		if len(r.Find(check, "")) == 0 {
			t.Errorf("no %s finding", check)
		}
	}
	if f := r.Find("xdp", "ens1f0"); len(f) != 1 || f[0].Severity != OK || !strings.Contains(f[0].Message, "zero copy") {
		t.Errorf("xdp: %+v", f)
	}
}

// TestBadBox breaks the good box one way at a time and expects the
// finding, with its fix.
func TestBadBox(t *testing.T) {
	tests := []struct {
		name   string
		config string // replaces boxConfig when set
		break_ func(h *fakeHost)
		want   string // in a problem line (severity check interface: message | fix)
	}{
		{"workers clamped", strings.Replace(boxConfig, "cpus = [2, 3, 4, 5]", "workers = 8", 1), nil,
			"warn queues ens1f0: [dataplane] workers = 8 but ens1f0 has 4 queues: fastnat runs 4 workers | ethtool -L IF combined 8 on every interface, or [dataplane] workers = 4"},
		{"more queues than workers", strings.Replace(boxConfig, "cpus = [2, 3, 4, 5]", "workers = 2\ncpus = [2, 3]", 1), nil,
			"warn queues ens1f1: has 4 queues and 2 workers: what RSS puts on queues 2-3 goes to the kernel, untranslated | ethtool -L ens1f1 combined 2   (or ethtool -X ens1f1 equal 2)"},
		{"fewer queues on the inside", "", func(h *fakeHost) {
			h.cmds["ethtool -l ens1f1"] = strings.Replace(h.cmds["ethtool -l ens1f1"], "Combined:\t4", "Combined:\t2", 1)
		}, "FAIL queues ens1f1: has 2 queues; the workers need queue 2, 3: fastnat refuses to start | ethtool -L ens1f1 combined 4"},
		{"UDP by addresses", "", func(h *fakeHost) {
			h.cmds["ethtool -n ens1f0 rx-flow-hash udp4"] = "UDP over IPV4 flows use these fields for computing Hash flow key:\nIP SA\nIP DA\n"
		}, "warn rss ens1f0: UDP is hashed by addresses only: every UDP flow between two hosts lands on one queue and one worker | ethtool -N ens1f0 rx-flow-hash udp4 sdfn"},
		{"jumbo MTU", "", func(h *fakeHost) {
			h.cmds["ip -j -d link show"] = strings.Replace(h.cmds["ip -j -d link show"], `"ifname":"ens1f0","mtu":1500`, `"ifname":"ens1f0","mtu":3000`, 1)
		}, "FAIL mtu ens1f0: MTU 3000 needs 3270-byte frames but [dataplane] frame_size 2048 holds packets of 1792 bytes: native XDP refuses to attach or longer frames are lost | ip link set ens1f0 mtu 1778   (or [dataplane] frame_size = 4096)"},
		{"LRO", "", func(h *fakeHost) {
			h.cmds["ethtool -k ens1f0"] = strings.Replace(h.cmds["ethtool -k ens1f0"], "large-receive-offload: off", "large-receive-offload: on", 1)
		}, "warn offloads ens1f0: LRO is on"},
		{"VLAN stripping", "", func(h *fakeHost) {
			h.cmds["ip -j -d link show type vlan"] = `[{"ifindex":9,"ifname":"ens1f1.100","link":"ens1f1"}]`
		}, "warn offloads ens1f1: VLAN tags are stripped before XDP (rx-vlan-offload) on an interface with VLANs (ens1f1.100): fastnat would forward the frames untagged | ethtool -K ens1f1 rxvlan off"},
		{"no zero copy", "", func(h *fakeHost) {
			h.features["ens1f1"] = afxdp.XDPBasic | afxdp.XDPRedirect
			h.cmds["ethtool -i ens1f1"] = "driver: bnxt_en\n"
		}, "warn xdp : the interfaces have different drivers (bnxt_en, mlx5_core)"},
		{"mlx5 before 6.1", "", func(h *fakeHost) { h.files["/proc/sys/kernel/osrelease"] = "5.15.0-91-generic\n" },
			"warn xdp ens1f0: mlx5 before Linux 6.1 numbers its zero-copy queues after the regular ones (4-7): fastnat's sockets on queues 0-3 fall back to copy mode"},
		{"no native XDP", strings.Replace(boxConfig, "[dataplane]", "[dataplane]\nxdp_mode = \"native\"", 1), func(h *fakeHost) {
			h.features["ens1f0"] = 0
		}, "FAIL xdp ens1f0: driver mlx5_core has no native XDP (as the kernel reports) and xdp_mode is native: fastnat refuses to start"},
		{"another program", "", func(h *fakeHost) {
			h.cmds["ip -j -d link show"] = strings.Replace(h.cmds["ip -j -d link show"], `"ifname":"ens1f1","mtu":1500`,
				`"ifname":"ens1f1","mtu":1500,"xdp":{"mode":1,"prog":{"id":42,"name":"xdp_lb"}}`, 1)
		}, "FAIL xdp ens1f1: another XDP program (xdp_lb) is attached: fastnat refuses to replace it | ip link set ens1f1 xdp off"},
		{"irqbalance", "", func(h *fakeHost) {
			h.dirs["/proc"] = append(h.dirs["/proc"], "812")
			h.files["/proc/812/comm"] = "irqbalance\n"
		}, "warn irqbalance : irqbalance is running (pid 812)"},
		{"IRQ on the wrong CPU", "", func(h *fakeHost) {
			for p := range h.files {
				if strings.HasSuffix(p, "/smp_affinity_list") && h.files[p] == "3\n" && strings.HasPrefix(p, "/proc/irq/2") {
					h.files[p] = "0-15\n"
				}
			}
		}, "warn irq ens1f0: IRQ 201 (mlx5_comp1@pci:0000:3b:00.0, queue 1) runs on CPUs 0-15, worker 1 on CPU 3 | echo 3 > /proc/irq/201/smp_affinity_list"},
		{"IRQ not pinned, workers not pinned", strings.Replace(boxConfig, "cpus = [2, 3, 4, 5]", "", 1), func(h *fakeHost) {
			h.files["/proc/irq/300/smp_affinity_list"] = "0-7\n"
		}, "warn irq ens1f1: IRQ 300 (mlx5_comp0@pci:0000:3b:00.1, queue 0) may run on CPUs 0-7"},
		{"Intel names", "", func(h *fakeHost) {
			h.files["/proc/interrupts"] = strings.ReplaceAll(h.files["/proc/interrupts"], "mlx5_comp2@pci:0000:3b:00.0", "ice-ens1f0-TxRx-2")
			h.files["/proc/irq/202/smp_affinity_list"] = "9\n"
		}, "warn irq ens1f0: IRQ 202 (ice-ens1f0-TxRx-2, queue 2) runs on CPUs 9, worker 2 on CPU 4"},
		{"far NUMA node", "", func(h *fakeHost) { h.files["/sys/devices/pci0000:00/0000:3b:00.0/numa_node"] = "1" },
			"warn numa ens1f0: the NIC is on NUMA node 1; worker 0 on CPU 2 (node 0)"},
		{"memlock", "", func(h *fakeHost) {
			h.files["/proc/self/status"] = "CapEff:\t0000000000000000\n"
			h.files["/proc/self/limits"] = "Limit                     Soft Limit           Hard Limit           Units\nMax locked memory         8388608              8388608              bytes\n"
		}, "warn memlock : without CAP_IPC_LOCK, RLIMIT_MEMLOCK (8388608 bytes here) must hold the 128 MiB of UMEM the workers pin"},
		{"missing CPU", strings.Replace(boxConfig, "cpus = [2, 3, 4, 5]", "cpus = [2, 3, 4, 40]", 1), nil,
			"FAIL cpus : [dataplane] cpus names CPU 40, which is not online"},
		{"missing interface", strings.Replace(boxConfig, `"ens1f1"`, `"ens9f9"`, 1), nil,
			"FAIL interface ens9f9: no such network interface in this namespace"},
		{"kernel forwarding", "", func(h *fakeHost) { h.files["/proc/sys/net/ipv4/ip_forward"] = "1\n" },
			"warn forwarding : the kernel forwards IPv4: what fastnat leaves to it (sources outside every inside prefix, queues without a worker, everything while fastnat is stopped) is routed out untranslated | sysctl -w net.ipv4.ip_forward=0"},
		{"old kernel", "", func(h *fakeHost) { h.files["/proc/sys/kernel/osrelease"] = "4.19.0\n" },
			"FAIL kernel : Linux 4.19.0: fastnat needs 5.10"},
		{"not root", "", func(h *fakeHost) { h.euid = 1000 }, "warn root : not root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := goodBox()
			if tc.break_ != nil {
				tc.break_(h)
			}
			text := boxConfig
			if tc.config != "" {
				text = tc.config
			}
			r := Examine(parse(t, text), h.system())
			p := problems(r)
			for _, line := range p {
				if strings.Contains(line, tc.want) {
					return
				}
			}
			t.Fatalf("no problem %q among\n%s", tc.want, strings.Join(p, "\n"))
		})
	}
}

// TestVethPeer: the peer of a veth in the same namespace and in an
// unnamed one.
func TestVethPeer(t *testing.T) {
	h := &fakeHost{cmds: map[string]string{}, files: map[string]string{"/proc/sys/kernel/osrelease": "6.18.0\n"},
		dirs: map[string][]string{}, links: map[string]string{}, features: map[string]afxdp.XDPFeatures{}}
	h.cmds["ip -j -d link show"] = `[{"ifindex":2,"ifname":"v0","mtu":1500,"linkinfo":{"info_kind":"veth"}},` +
		`{"ifindex":3,"ifname":"v0p","mtu":1500,"linkinfo":{"info_kind":"veth"}},` +
		`{"ifindex":4,"ifname":"v1","mtu":1500,"link_netnsid":7,"linkinfo":{"info_kind":"veth"}}]`
	h.cmds["ethtool -S v0"] = "NIC statistics:\n     peer_ifindex: 3\n"
	h.cmds["ethtool -S v1"] = "NIC statistics:\n     peer_ifindex: 2\n"
	h.cmds["ethtool -k v0p"] = "tx-checksumming: on\n"
	h.cmds["ip -j netns list-id"] = `[{"nsid":7}]`
	cfg := parse(t, "[[interface]]\nname = \"v0\"\nrole = \"outside\"\n[[interface]]\nname = \"v1\"\nrole = \"inside\"\n")
	r := Examine(cfg, h.system())
	got := strings.Join(problems(r), "\n")
	for _, want := range []string{
		"FAIL checksum v0: the veth peer v0p has tx checksum offload on: it sends TCP and UDP with checksums only partly filled in, which fastnat forwards as they are and the receiver drops | ethtool -K v0p tx off",
		"warn checksum v1: the veth peer (ifindex 2) is in an unnamed namespace",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q among\n%s", want, got)
		}
	}
}

func TestParsers(t *testing.T) {
	if cur, maxq, ok := parseChannels("Pre-set maximums:\nRX:\t\t2\nTX:\t\t2\nCombined:\tn/a\nCurrent hardware settings:\nRX:\t\t2\nTX:\t\t2\nCombined:\tn/a\n"); cur != 2 || maxq != 2 || !ok {
		t.Errorf("veth channels: %d %d %v", cur, maxq, ok)
	}
	if _, _, ok := parseChannels("garbage"); ok {
		t.Error("garbage parsed as channels")
	}
	for name, want := range map[string][2]int{
		"mlx5_comp3@pci:0000:3b:00.0": {3, 1}, "ice-ens1f0-TxRx-12": {12, 1}, "ens1f0-TxRx-0": {0, 1},
		"virtio2-input.1": {1, 1}, "virtio2-output.1": {1, 0}, "ens1f0-tx-2": {2, 0}, "ena-io-comp-5": {5, 1},
		"virtio0-config": {-1, 0}, "mlx5_async0@pci:0000:3b:00.0": {-1, 0}, "i40e-0000:3b:00.0:misc": {-1, 0},
	} {
		q, rx := irqQueue(name)
		if q != want[0] || rx != (want[1] == 1) {
			t.Errorf("irqQueue(%q) = %d, %v", name, q, rx)
		}
	}
	for s, want := range map[string]string{"0-3,8": "[0 1 2 3 8]", "5": "[5]", "": "[]", "3-1": "[]", "x": "[]"} {
		if got := fmt.Sprint(parseCPUList(s)); got != want {
			t.Errorf("parseCPUList(%q) = %s", s, got)
		}
	}
	if got := shortErr(errors.New("ethtool -n x: Cannot get RX network flow hashing options: Operation not supported")); got != "Operation not supported" {
		t.Errorf("shortErr %q", got)
	}
	var s Severity
	if err := s.UnmarshalText([]byte("fail")); err != nil || s != Fail {
		t.Errorf("severity %v %v", s, err)
	}
}

// TestUnitIPFilter reads the unit the package installs, with and without
// the drop-in deploy/ip-allow.conf, as systemd would, and expects a
// warning for each collector or metrics endpoint it refuses.
func TestUnitIPFilter(t *testing.T) {
	unit := readRepo(t, "deploy/fastnat.service")
	dropin := readRepo(t, "deploy/ip-allow.conf")
	const logging = `
[metrics]
listen = %q
[[logging.ipfix]]
collector = "192.0.2.10:4739"
[[logging.syslog]]
transport = "tcp"
address = "%s:514"
`
	localOnly := "[Service]\nIPAddressDeny=any\nIPAddressAllow=localhost\n"
	tests := []struct {
		name    string
		dropins map[string]string // file name: text, in /etc/systemd/system/fastnat.service.d
		metrics string
		syslog  string
		want    []string // problem lines, in order; none: an ok "unit" finding
	}{
		{"shipped unit", nil, "0.0.0.0:9300", "198.51.100.9", nil},
		{"drop-in allows them", map[string]string{"ip-allow.conf": dropin}, "192.0.2.1:9300", "192.0.2.11", nil},
		{"drop-in misses the syslog receiver", map[string]string{"ip-allow.conf": dropin}, "127.0.0.1:9300", "198.51.100.9",
			[]string{"warn unit : [[logging.syslog]] tcp 198.51.100.9:514 (line 14): the unit's IPAddressDeny= refuses it, and the events sent there are lost | " +
				"systemctl edit fastnat   (a drop-in such as /usr/share/fastnat/systemd/ip-allow.conf)\nadd: IPAddressAllow=198.51.100.9"}},
		{"localhost only", map[string]string{"local.conf": localOnly}, ":9300", "127.0.0.1",
			[]string{"warn unit : [[logging.ipfix]] collector 192.0.2.10:4739 (line 12): the unit's IPAddressDeny= refuses it, and the events sent there are lost | " +
				"systemctl edit fastnat   (a drop-in such as /usr/share/fastnat/systemd/ip-allow.conf)\nadd: IPAddressAllow=192.0.2.10",
				`warn unit : [metrics] listen = ":9300", but the unit allows IP peers on this host only (IPAddressAllow=localhost): scrapes from elsewhere are refused | ` +
					"systemctl edit fastnat   (a drop-in such as /usr/share/fastnat/systemd/ip-allow.conf)\nadd: IPAddressAllow=PROMETHEUS-ADDRESS"}},
		{"a later drop-in resets the filter", map[string]string{"a.conf": localOnly, "b.conf": "[Service]\nIPAddressDeny=\n"}, ":9300", "198.51.100.9", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := goodBox()
			h.files["/lib/systemd/system/fastnat.service"] = unit
			for n, text := range tt.dropins {
				h.dirs["/etc/systemd/system/fastnat.service.d"] = append(h.dirs["/etc/systemd/system/fastnat.service.d"], n)
				h.files["/etc/systemd/system/fastnat.service.d/"+n] = text
			}
			r := Examine(parse(t, boxConfig+fmt.Sprintf(logging, tt.metrics, tt.syslog)), h.system())
			got := problems(r)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if f := r.Find("unit", ""); len(tt.want) == 0 && (len(f) != 1 || f[0].Severity != OK) {
				t.Errorf("unit findings %+v, want one ok", f)
			}
		})
	}
	t.Run("no unit installed", func(t *testing.T) {
		if f := Examine(parse(t, boxConfig), goodBox().system()).Find("unit", ""); len(f) != 0 {
			t.Errorf("unit findings without a unit: %+v", f)
		}
	})
}

// TestParseIPFilter checks systemd's rule: allow wins, then deny, then
// allow by default.
func TestParseIPFilter(t *testing.T) {
	f, err := ParseIPFilter("[Service]\nIPAddressDeny=any\nIPAddressAllow=localhost 10.0.0.0/8\n[Install]\nIPAddressAllow=192.0.2.1\n",
		"[Service]\nIPAddressAllow=2001:db8::1\n")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"127.0.0.1": true, "::1": true, "10.1.2.3": true, "2001:db8::1": true,
		"192.0.2.1": false, "198.51.100.1": false, "::ffff:10.0.0.1": true} {
		if got := f.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", addr, got, want)
		}
	}
	if f.OnlyLocal() {
		t.Error("OnlyLocal with 10.0.0.0/8 allowed")
	}
	if _, err := ParseIPFilter("[Service]\nIPAddressAllow=10.0.0.300\n"); err == nil {
		t.Error("no error for 10.0.0.300")
	}
	if f, _ := ParseIPFilter("[Service]\nIPAddressDeny=10.0.0.0/8\n"); f.Allows(netip.MustParseAddr("10.9.9.9")) || !f.Allows(netip.MustParseAddr("192.0.2.1")) {
		t.Error("a deny list without allow entries")
	}
}

// readRepo reads a file of the repository.
func readRepo(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFirstInterfaceMissing: the workers follow the first interface's
// queues, so when it is missing the checks of what they use say they were
// skipped instead of passing for no workers ("ok cpus 0 workers on CPUs
// []", "ok irq ... pinned").
func TestFirstInterfaceMissing(t *testing.T) {
	h := goodBox()
	r := Examine(parse(t, strings.Replace(boxConfig, `"ens1f0"`, `"ens9f9"`, 1)), h.system())
	if f := r.Find("interface", "ens9f9"); len(f) != 1 || f[0].Severity != Fail {
		t.Fatalf("interface: %+v", f)
	}
	const skipped = "skipped: the workers follow the queues of ens9f9, which is missing"
	for _, c := range []struct{ check, iface string }{{"cpus", ""}, {"irq", "ens1f1"}, {"numa", "ens1f1"}} {
		f := r.Find(c.check, c.iface)
		if len(f) != 1 || f[0].Severity != Info || f[0].Message != skipped {
			t.Errorf("%s %s: %+v, want one info %q", c.check, c.iface, f, skipped)
		}
	}
	if f := r.Find("memlock", ""); len(f) != 1 || strings.Contains(f[0].Message, " 0 MiB") {
		t.Errorf("memlock: %+v", f)
	}
	for _, f := range r.Findings {
		if f.Severity == OK && (strings.Contains(f.Message, "0 workers") || strings.Contains(f.Message, "[]")) {
			t.Errorf("a vacuous ok: %+v", f)
		}
	}
}
