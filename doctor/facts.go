package doctor

import (
	"encoding/json"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/config"
)

// ifaceFacts is what the doctor learned about one configured interface.
type ifaceFacts struct {
	cfg    config.Interface
	name   string
	exists bool
	driver string
	mtu    int
	// queues are the receive queues in use (ethtool channels, combined
	// plus rx-only; else the kernel's queue count), max the most the
	// driver allows (0: unknown).
	queues, maxQueues int
	channelsKnown     bool
	features          map[string]string // ethtool -k: "on", "off", "on [fixed]", ...
	udpHash           hashFields
	hashErr           error
	device            string // sysfs path of the device with the MSI vectors; "" for virtual interfaces
	numa              int    // the device's NUMA node, -1 if none
	irqs              []irq
	vlans             []string // VLAN interfaces on top of it
	xdp               afxdp.XDPFeatures
	xdpErr            error
	xdpAttached       string // the program attached now ("" none)
	peer              *vethPeer
}

// hashFields are the header fields a NIC hashes a flow type by.
type hashFields struct{ srcIP, dstIP, srcPort, dstPort bool }

// irq is one interrupt of a device.
type irq struct {
	num   int
	name  string
	queue int  // the queue it serves, -1 if none (control vectors)
	rx    bool // it serves received packets (not transmit only)
	cpus  string
}

// vethPeer is the other end of a veth.
type vethPeer struct {
	ifindex int
	nsid    int    // -1: the same namespace
	ns      string // named namespace of the peer, "" if same or unnamed
	name    string
	txCsum  string // tx-checksumming: "on", "off", "" unknown
	err     error
}

// ipLink is the part of `ip -j -d link` the doctor reads.
type ipLink struct {
	Ifindex  int    `json:"ifindex"`
	Ifname   string `json:"ifname"`
	Link     string `json:"link"`
	MTU      int    `json:"mtu"`
	NetnsID  *int   `json:"link_netnsid"`
	NumRxQ   int    `json:"num_rx_queues"`
	LinkInfo *struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
	XDP *struct {
		Mode int `json:"mode"`
		Prog *struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"prog"`
	} `json:"xdp"`
}

// links runs `ip -j -d [netns] link show args...`.
func (d *doctor) links(ns string, args ...string) ([]ipLink, error) {
	cmd := []string{"-j", "-d"}
	if ns != "" {
		cmd = append(cmd, "-n", ns)
	}
	out, err := d.sys.Run("ip", append(append(cmd, "link", "show"), args...)...)
	if err != nil {
		return nil, err
	}
	var ls []ipLink
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	err = json.Unmarshal([]byte(out), &ls)
	return ls, err
}

// gather collects the facts of every configured interface.
func (d *doctor) gather() {
	all, _ := d.links("")
	vlans, _ := d.links("", "type", "vlan")
	interrupts := parseInterrupts(d.read("/proc/interrupts"))
	for _, ic := range d.cfg.Interfaces {
		f := &ifaceFacts{cfg: ic, name: ic.Name, numa: -1}
		d.ifaces = append(d.ifaces, f)
		i := slices.IndexFunc(all, func(l ipLink) bool { return l.Ifname == ic.Name })
		if i < 0 {
			continue
		}
		l := all[i]
		f.exists, f.mtu = true, l.MTU
		if l.XDP != nil && l.XDP.Prog != nil {
			f.xdpAttached = l.XDP.Prog.Name
			if f.xdpAttached == "" {
				f.xdpAttached = "id " + strconv.Itoa(l.XDP.Prog.ID)
			}
		}
		if out, err := d.sys.Run("ethtool", "-i", ic.Name); err == nil {
			f.driver = field(out, "driver")
		}
		if out, err := d.sys.Run("ethtool", "-l", ic.Name); err == nil {
			f.queues, f.maxQueues, f.channelsKnown = parseChannels(out)
		}
		if !f.channelsKnown {
			f.queues = max(l.NumRxQ, 1)
		}
		if out, err := d.sys.Run("ethtool", "-k", ic.Name); err == nil {
			f.features = parseFeatures(out)
		}
		out, err := d.sys.Run("ethtool", "-n", ic.Name, "rx-flow-hash", "udp4")
		f.udpHash, f.hashErr = parseHash(out), err
		f.xdp, f.xdpErr = d.sys.XDPFeatures(ic.Name)
		for _, v := range vlans {
			if v.Link == ic.Name {
				f.vlans = append(f.vlans, v.Ifname)
			}
		}
		d.device(f, interrupts)
		if l.LinkInfo != nil && l.LinkInfo.Kind == "veth" {
			f.peer = d.peer(f, l, all)
		}
	}
	if len(d.ifaces) > 0 && d.ifaces[0].exists {
		d.queues, _ = d.cfg.WorkerQueues(d.ifaces[0].queues)
	}
}

// device finds the interface's device in sysfs: the first directory up
// from /sys/class/net/IF/device that has MSI vectors (a virtio NIC's are
// on its PCI parent), its NUMA node and its interrupts.
func (d *doctor) device(f *ifaceFacts, interrupts map[int]string) {
	dev, err := d.sys.EvalSymlinks("/sys/class/net/" + f.name + "/device")
	if err != nil {
		return // a virtual interface
	}
	for p := dev; p != "/" && p != "." && strings.HasPrefix(p, "/sys/devices"); p = path.Dir(p) {
		vectors, err := d.sys.ReadDir(p + "/msi_irqs")
		if err != nil {
			continue
		}
		f.device = p
		if n, err := strconv.Atoi(strings.TrimSpace(d.read(p + "/numa_node"))); err == nil {
			f.numa = n
		}
		for _, v := range vectors {
			n, err := strconv.Atoi(v)
			if err != nil {
				continue
			}
			q, rx := irqQueue(interrupts[n])
			f.irqs = append(f.irqs, irq{num: n, name: interrupts[n], queue: q, rx: rx,
				cpus: strings.TrimSpace(d.read("/proc/irq/" + v + "/smp_affinity_list"))})
		}
		slices.SortFunc(f.irqs, func(a, b irq) int { return a.num - b.num })
		return
	}
}

// peer finds the other end of a veth and reads its tx checksum offload,
// in its own namespace when that has a name.
func (d *doctor) peer(f *ifaceFacts, l ipLink, all []ipLink) *vethPeer {
	p := &vethPeer{nsid: -1}
	out, err := d.sys.Run("ethtool", "-S", f.name)
	if err != nil {
		p.err = err
		return p
	}
	if p.ifindex, err = strconv.Atoi(field(out, "peer_ifindex")); err != nil {
		p.err = err
		return p
	}
	links := all
	if l.NetnsID != nil {
		p.nsid = *l.NetnsID
		ids, err := d.sys.Run("ip", "-j", "netns", "list-id")
		if err != nil {
			p.err = err
			return p
		}
		var list []struct {
			NSID int    `json:"nsid"`
			Name string `json:"name"`
		}
		_ = json.Unmarshal([]byte(ids), &list)
		for _, e := range list {
			if e.NSID == p.nsid {
				p.ns = e.Name
			}
		}
		if p.ns == "" {
			return p // an unnamed namespace: nothing more to read
		}
		if links, err = d.links(p.ns); err != nil {
			p.err = err
			return p
		}
	}
	for _, pl := range links {
		if pl.Ifindex == p.ifindex {
			p.name = pl.Ifname
		}
	}
	if p.name == "" {
		return p
	}
	args := []string{"-k", p.name}
	name := "ethtool"
	if p.ns != "" {
		name, args = "ip", append([]string{"netns", "exec", p.ns, "ethtool"}, args...)
	}
	out, err = d.sys.Run(name, args...)
	if err != nil {
		p.err = err
		return p
	}
	p.txCsum = onOff(parseFeatures(out)["tx-checksumming"])
	return p
}

// field returns the value of "key: value" in ethtool's output.
func field(out, key string) string {
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// parseChannels reads `ethtool -l`: the current and maximum combined plus
// rx-only channels.
func parseChannels(out string) (current, maximum int, ok bool) {
	pre, cur, found := strings.Cut(out, "Current hardware settings:")
	if !found {
		return 0, 0, false
	}
	count := func(s string) int {
		n := 0
		for _, k := range []string{"Combined", "RX"} {
			if v, err := strconv.Atoi(field(s, k)); err == nil {
				n += v
			}
		}
		return n
	}
	current, maximum = count(cur), count(pre)
	return current, maximum, current > 0
}

// parseFeatures reads `ethtool -k`: feature name to value ("on", "off",
// "off [fixed]").
func parseFeatures(out string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "Features for") {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// onOff is a feature's state without "[fixed]" or "[requested on]".
func onOff(v string) string {
	s, _, _ := strings.Cut(v, " ")
	return s
}

// fixed reports whether a feature cannot be changed.
func fixed(v string) bool { return strings.Contains(v, "[fixed]") }

// parseHash reads `ethtool -n IF rx-flow-hash udp4`.
func parseHash(out string) hashFields {
	var h hashFields
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case line == "IP SA":
			h.srcIP = true
		case line == "IP DA":
			h.dstIP = true
		case strings.HasPrefix(line, "L4 bytes 0 & 1"):
			h.srcPort = true
		case strings.HasPrefix(line, "L4 bytes 2 & 3"):
			h.dstPort = true
		}
	}
	return h
}

// parseInterrupts maps each numbered interrupt of /proc/interrupts to its
// name, the line's last field.
func parseInterrupts(s string) map[int]string {
	m := map[int]string{}
	for line := range strings.Lines(s) {
		num, rest, ok := strings.Cut(line, ":")
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if !ok || err != nil {
			continue
		}
		if fs := strings.Fields(rest); len(fs) > 0 {
			m[n] = fs[len(fs)-1]
		}
	}
	return m
}

// queueIRQ matches the queue vectors of the drivers fastnat targets:
// ens1f0-TxRx-3 and i40e-ens1f0-TxRx-3 (Intel), mlx5_comp3@pci:...
// (mlx5), virtio2-input.3 (virtio), ena-io-comp-3, eth0-rx-3, ...
var queueIRQ = regexp.MustCompile(`(?i)(txrx|rx|tx|input|output|comp|fp|queue)[-_.]?(\d+)(@|$)`)

// irqQueue returns the queue an interrupt's name says it serves, and
// whether it carries received packets; -1 for control vectors.
func irqQueue(name string) (queue int, rx bool) {
	m := queueIRQ.FindStringSubmatch(name)
	if m == nil {
		return -1, false
	}
	q, _ := strconv.Atoi(m[2])
	kind := strings.ToLower(m[1])
	return q, kind != "tx" && kind != "output"
}
