package doctor

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fastnat/fastnat/afxdp"
	"github.com/fastnat/fastnat/config"
)

// headroom is what the kernel keeps in front of a packet in every UMEM
// frame (XDP_PACKET_HEADROOM).
const headroom = 256

// zeroCopyDrivers have AF_XDP zero copy, for kernels that do not report
// XDP features (before 6.3).
var zeroCopyDrivers = []string{"i40e", "ice", "ixgbe", "igc", "mlx5_core", "stmmac", "idpf", "igb", "virtio_net", "gve", "fec"}

func (d *doctor) checkRoot() {
	if d.sys.EUID != 0 {
		d.add("root", "", Warn, "sudo fastnat doctor", "not root: some checks may see less than the daemon would")
	}
}

// kernelAtLeast reports whether the running kernel is major.minor or later.
func (d *doctor) kernelAtLeast(major, minor int) bool {
	fs := strings.FieldsFunc(d.r.Kernel, func(r rune) bool { return r < '0' || r > '9' })
	if len(fs) < 2 {
		return true // unknown: assume recent
	}
	a, _ := strconv.Atoi(fs[0])
	b, _ := strconv.Atoi(fs[1])
	return a > major || a == major && b >= minor
}

func (d *doctor) checkKernel() {
	if !d.kernelAtLeast(5, 10) {
		d.add("kernel", "", Fail, "upgrade to Linux 5.10 or later", "Linux %s: fastnat needs 5.10 (AF_XDP sockets sharing one UMEM across devices)", d.r.Kernel)
	}
}

func (d *doctor) checkInterfaces() {
	for _, f := range d.ifaces {
		if !f.exists {
			d.add("interface", f.name, Fail, fmt.Sprintf("ip link show   (and correct [[interface]] name = %q, line %d)", f.name, f.cfg.Line),
				"no such network interface in this namespace")
		}
	}
}

// checkQueues compares every interface's queues with the workers.
func (d *doctor) checkQueues() {
	if len(d.ifaces) == 0 || !d.ifaces[0].exists {
		return
	}
	first := d.ifaces[0]
	queues, asked := d.cfg.WorkerQueues(first.queues)
	workers := len(queues)
	if asked > workers {
		fix := fmt.Sprintf("ethtool -L IF combined %d on every interface, or [dataplane] workers = %d", asked, workers)
		if first.maxQueues > 0 && first.maxQueues < asked {
			fix = fmt.Sprintf("[dataplane] workers = %d (%s allows at most %s)", workers, first.name, count(first.maxQueues, "queue"))
		}
		d.add("queues", first.name, Warn, fix, "[dataplane] workers = %d but %s has %s: fastnat runs %s", asked, first.name, count(first.queues, "queue"), count(workers, "worker"))
	}
	for _, f := range d.ifaces {
		if !f.exists {
			continue
		}
		var missing []string
		for _, q := range queues {
			if q >= f.queues {
				missing = append(missing, strconv.Itoa(q))
			}
		}
		switch {
		case len(missing) > 0:
			d.add("queues", f.name, Fail, fmt.Sprintf("ethtool -L %s combined %d", f.name, slices.Max(queues)+1),
				"has %s; the workers need queue %s: fastnat refuses to start", count(f.queues, "queue"), strings.Join(missing, ", "))
		case f.queues > workers && f.cfg.Queues == nil:
			d.add("queues", f.name, Warn, fmt.Sprintf("ethtool -L %s combined %d   (or ethtool -X %s equal %d)", f.name, workers, f.name, workers),
				"has %s and %s: what RSS puts on queues %d-%d goes to the kernel, untranslated", count(f.queues, "queue"), count(workers, "worker"), workers, f.queues-1)
		default:
			d.add("queues", f.name, OK, "", "%s, %s", count(f.queues, "queue"), count(workers, "worker"))
		}
	}
}

// unknownWorkers returns why the workers cannot be known — their number
// and queues follow the first interface's queues — or "" when they can.
// The checks of what the workers use (CPUs, interrupts, NUMA, UMEM) then
// say they were skipped rather than report on no workers at all.
func (d *doctor) unknownWorkers() string {
	if len(d.ifaces) > 0 && !d.ifaces[0].exists {
		return fmt.Sprintf("skipped: the workers follow the queues of %s, which is missing", d.ifaces[0].name)
	}
	return ""
}

// checkCPUs checks [dataplane] cpus against the machine.
func (d *doctor) checkCPUs() {
	cpus := d.cfg.Dataplane.CPUs
	online := parseCPUList(d.read("/sys/devices/system/cpu/online"))
	failed := false
	for _, c := range cpus {
		if online != nil && !slices.Contains(online, c) || online == nil && c >= d.sys.NumCPU {
			d.add("cpus", "", Fail, "[dataplane] cpus: CPUs from `cat /sys/devices/system/cpu/online`",
				"[dataplane] cpus names CPU %d, which is not online: the worker cannot be pinned there", c)
			failed = true
		}
	}
	workers := len(d.queues)
	switch {
	case failed:
	case d.unknownWorkers() != "":
		d.add("cpus", "", Info, "", "%s", d.unknownWorkers())
	case workers > d.sys.NumCPU:
		d.add("cpus", "", Warn, fmt.Sprintf("[dataplane] workers = %d", d.sys.NumCPU),
			"%s on %s: workers share cores and poll each other's time away", count(workers, "worker"), count(d.sys.NumCPU, "CPU"))
	case len(cpus) > 0 && len(cpus) < workers:
		d.add("cpus", "", Warn, fmt.Sprintf("[dataplane] cpus with %d entries", workers),
			"%s but %s in [dataplane] cpus: the others are not pinned", count(workers, "worker"), count(len(cpus), "CPU"))
	case len(cpus) == 0 && workers > 0:
		d.add("cpus", "", Info, "[dataplane] cpus = [...]   (one CPU per worker, next to its queue's interrupt)",
			"workers are not pinned to CPUs")
	default:
		d.add("cpus", "", OK, "", "%s on CPUs %v", count(workers, "worker"), cpus[:min(workers, len(cpus))])
	}
}

// checkRSS checks that UDP is hashed by ports on multi-queue interfaces.
func (d *doctor) checkRSS() {
	for _, f := range d.ifaces {
		if !f.exists || f.queues < 2 {
			continue
		}
		h := f.udpHash
		switch {
		case f.hashErr != nil:
			d.add("rss", f.name, Info, "", "the driver does not say how it hashes UDP (%s): check that UDP flows spread over the queues", shortErr(f.hashErr))
		case !h.srcPort || !h.dstPort:
			d.add("rss", f.name, Warn, fmt.Sprintf("ethtool -N %s rx-flow-hash udp4 sdfn", f.name),
				"UDP is hashed by addresses only: every UDP flow between two hosts lands on one queue and one worker")
		default:
			d.add("rss", f.name, OK, "", "UDP hashed by addresses and ports")
		}
	}
}

// checkMTU checks that a full-sized frame fits a UMEM frame.
func (d *doctor) checkMTU() {
	room := d.cfg.Dataplane.FrameSize - headroom
	for _, f := range d.ifaces {
		if !f.exists {
			continue
		}
		need := f.mtu + 14 // Ethernet header
		if len(f.vlans) > 0 {
			need += 4
		}
		if need > room {
			fix := fmt.Sprintf("ip link set %s mtu %d", f.name, room-14)
			if d.cfg.Dataplane.FrameSize < 4096 && f.mtu+14 <= 4096-headroom {
				fix += "   (or [dataplane] frame_size = 4096)"
			}
			d.add("mtu", f.name, Fail, fix, "MTU %d needs %d-byte frames but [dataplane] frame_size %d holds packets of %d bytes: native XDP refuses to attach or longer frames are lost",
				f.mtu, need+headroom, d.cfg.Dataplane.FrameSize, room)
			continue
		}
		d.add("mtu", f.name, OK, "", "MTU %d fits frames of %d bytes", f.mtu, d.cfg.Dataplane.FrameSize)
	}
}

// checkOffloads checks the receive offloads that change what XDP sees.
func (d *doctor) checkOffloads() {
	generic := d.cfg.Dataplane.XDPMode == config.XDPGeneric
	for _, f := range d.ifaces {
		if !f.exists || f.features == nil {
			continue
		}
		found := false
		on := func(k string) bool { return onOff(f.features[k]) == "on" }
		if on("large-receive-offload") && !fixed(f.features["large-receive-offload"]) {
			d.add("offloads", f.name, Warn, fmt.Sprintf("ethtool -K %s lro off", f.name),
				"LRO is on: the NIC merges segments into frames larger than the MTU (drivers turn it off for native XDP; generic mode sees them)")
			found = true
		}
		if on("rx-gro-hw") && !fixed(f.features["rx-gro-hw"]) {
			d.add("offloads", f.name, Warn, fmt.Sprintf("ethtool -K %s rx-gro-hw off", f.name),
				"hardware GRO is on: the NIC merges segments before XDP sees them")
			found = true
		}
		if generic && on("generic-receive-offload") {
			d.add("offloads", f.name, Warn, fmt.Sprintf("ethtool -K %s gro off", f.name),
				"GRO is on and xdp_mode is generic: the program may see merged segments larger than the MTU")
			found = true
		}
		if on("rx-vlan-offload") && len(f.vlans) > 0 {
			d.add("offloads", f.name, Warn, fmt.Sprintf("ethtool -K %s rxvlan off", f.name),
				"VLAN tags are stripped before XDP (rx-vlan-offload) on an interface with VLANs (%s): fastnat would forward the frames untagged",
				strings.Join(f.vlans, ", "))
			found = true
		}
		if !found {
			d.add("offloads", f.name, OK, "", "no receive offload changes what XDP sees")
		}
	}
}

// checkXDP checks native XDP and zero copy against the drivers.
func (d *doctor) checkXDP() {
	mode := d.cfg.Dataplane.XDPMode
	drivers := map[string]bool{}
	for _, f := range d.ifaces {
		if !f.exists {
			continue
		}
		drivers[driverName(f.driver)] = true
		if f.xdpAttached != "" && f.xdpAttached != afxdp.ProgramName {
			d.add("xdp", f.name, Fail, fmt.Sprintf("ip link set %s xdp off   (if that program is not needed)", f.name),
				"another XDP program (%s) is attached: fastnat refuses to replace it", f.xdpAttached)
		}
		native, zc := f.xdp&afxdp.XDPBasic != 0 && f.xdp&afxdp.XDPRedirect != 0, f.xdp&afxdp.XDPZeroCopy != 0
		known := f.xdpErr == nil
		if !known {
			native, zc = true, slices.Contains(zeroCopyDrivers, f.driver)
		}
		source := "as the kernel reports"
		if !known {
			source = "guessed from the driver's name: " + shortErr(f.xdpErr)
		}
		switch {
		case !native && mode == config.XDPNative:
			d.add("xdp", f.name, Fail, `[dataplane] xdp_mode = "generic"   (or a NIC whose driver has native XDP)`,
				"driver %s has no native XDP (%s) and xdp_mode is native: fastnat refuses to start", driverName(f.driver), source)
		case !native:
			d.add("xdp", f.name, Warn, "a NIC whose driver has native XDP",
				"driver %s has no native XDP (%s): generic mode, every packet copied", driverName(f.driver), source)
		case mode == config.XDPGeneric:
			d.add("xdp", f.name, Warn, `[dataplane] xdp_mode = "native"`,
				"xdp_mode is generic: every packet is copied, though driver %s has native XDP", driverName(f.driver))
		case zc:
			d.add("xdp", f.name, OK, "", "driver %s: native XDP and AF_XDP zero copy (%s)", driverName(f.driver), source)
		default:
			d.add("xdp", f.name, Info, "", "driver %s: native XDP without zero copy (%s): sockets copy every packet", driverName(f.driver), source)
		}
		if f.driver == "mlx5_core" && !d.kernelAtLeast(6, 1) {
			d.add("xdp", f.name, Warn, "upgrade to Linux 6.1 or later",
				"mlx5 before Linux 6.1 numbers its zero-copy queues after the regular ones (%d-%d): fastnat's sockets on queues 0-%d fall back to copy mode",
				f.queues, 2*f.queues-1, f.queues-1)
		}
	}
	if len(drivers) > 1 {
		names := make([]string, 0, len(drivers))
		for n := range drivers {
			names = append(names, n)
		}
		slices.Sort(names)
		d.add("xdp", "", Warn, "NICs of one driver (or two ports of one NIC) on both sides",
			"the interfaces have different drivers (%s): a worker's sockets share one UMEM and so one mode, copy unless both can do zero copy together",
			strings.Join(names, ", "))
	}
}

// checkChecksum checks transmit checksum offload on the peers of veths.
func (d *doctor) checkChecksum() {
	for _, f := range d.ifaces {
		p := f.peer
		if p == nil {
			continue
		}
		where, fix := p.name, "ethtool -K "+p.name+" tx off"
		if p.ns != "" {
			where = fmt.Sprintf("%s (namespace %s)", p.name, p.ns)
			fix = fmt.Sprintf("ip netns exec %s ethtool -K %s tx off", p.ns, p.name)
		}
		switch {
		case p.err != nil:
			d.add("checksum", f.name, Info, "", "could not read the veth peer's offloads: %s", shortErr(p.err))
		case p.name == "":
			d.add("checksum", f.name, Warn, fmt.Sprintf("ethtool -K PEER tx off   (in namespace id %d, the peer of %s)", p.nsid, f.name),
				"the veth peer (ifindex %d) is in an unnamed namespace: if its tx checksum offload is on, TCP and UDP it sends through fastnat arrive with wrong checksums", p.ifindex)
		case p.txCsum == "on":
			d.add("checksum", f.name, Fail, fix,
				"the veth peer %s has tx checksum offload on: it sends TCP and UDP with checksums only partly filled in, which fastnat forwards as they are and the receiver drops", where)
		default:
			d.add("checksum", f.name, OK, "", "the veth peer %s computes its checksums", where)
		}
	}
}

// checkForwarding warns when the kernel forwards IPv4: every packet
// fastnat's XDP program leaves to the kernel — from a source outside every
// inside prefix, on a queue no worker serves, or any packet while fastnat
// is stopped or restarting — is then routed out untranslated, private
// source and all. fastnat forwards what it translates itself.
func (d *doctor) checkForwarding() {
	switch strings.TrimSpace(d.read("/proc/sys/net/ipv4/ip_forward")) {
	case "1":
		d.add("forwarding", "", Warn, "sysctl -w net.ipv4.ip_forward=0   (fastnat forwards what it translates; or drop it in an nftables forward chain)",
			"the kernel forwards IPv4: what fastnat leaves to it (sources outside every inside prefix, queues without a worker, everything while fastnat is stopped) is routed out untranslated")
	case "0":
		d.add("forwarding", "", OK, "", "the kernel does not forward IPv4: nothing leaves untranslated")
	}
}

// checkIRQBalance warns while irqbalance runs: it moves pinned interrupts.
func (d *doctor) checkIRQBalance() {
	procs, _ := d.sys.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p); err != nil {
			continue
		}
		if strings.TrimSpace(d.read("/proc/"+p+"/comm")) == "irqbalance" {
			d.add("irqbalance", "", Warn, "systemctl disable --now irqbalance   (or IRQBALANCE_BANNED_CPULIST for the workers' CPUs)",
				"irqbalance is running (pid %s): it moves the NIC queues' interrupts away from the workers' CPUs", p)
			return
		}
	}
	d.add("irqbalance", "", OK, "", "irqbalance is not running")
}

// checkIRQs checks that each worker's queue interrupt is pinned to one
// CPU, the worker's when workers are pinned.
func (d *doctor) checkIRQs() {
	cpus := d.cfg.Dataplane.CPUs
	for _, f := range d.ifaces {
		if !f.exists {
			continue
		}
		if f.device == "" {
			d.add("irq", f.name, Info, "", "a virtual interface: no interrupts to pin")
			continue
		}
		if why := d.unknownWorkers(); why != "" {
			d.add("irq", f.name, Info, "", "%s", why)
			continue
		}
		bad := false
		for w, q := range d.queues {
			for _, v := range f.irqs {
				if v.queue != q || !v.rx {
					continue
				}
				set := parseCPUList(v.cpus)
				want := -1
				if w < len(cpus) {
					want = cpus[w]
				}
				switch {
				case want >= 0 && !(len(set) == 1 && set[0] == want):
					d.add("irq", f.name, Warn, fmt.Sprintf("echo %d > /proc/irq/%d/smp_affinity_list", want, v.num),
						"IRQ %d (%s, queue %d) runs on CPUs %s, worker %d on CPU %d", v.num, v.name, q, v.cpus, w, want)
					bad = true
				case want < 0 && len(set) != 1:
					d.add("irq", f.name, Warn, fmt.Sprintf("echo CPU > /proc/irq/%d/smp_affinity_list   (one CPU, and the worker's with [dataplane] cpus)", v.num),
						"IRQ %d (%s, queue %d) may run on CPUs %s", v.num, v.name, q, v.cpus)
					bad = true
				}
			}
		}
		if !bad {
			d.add("irq", f.name, OK, "", "the workers' queue interrupts are pinned")
		}
	}
}

// checkNUMA checks the workers' CPUs against the NICs' nodes.
func (d *doctor) checkNUMA() {
	cpus := d.cfg.Dataplane.CPUs
	for _, f := range d.ifaces {
		if !f.exists || f.device == "" {
			continue
		}
		if f.numa < 0 {
			d.add("numa", f.name, OK, "", "no NUMA node (a single-node machine)")
			continue
		}
		if why := d.unknownWorkers(); why != "" && len(cpus) > 0 {
			d.add("numa", f.name, Info, "", "%s", why)
			continue
		}
		var far []string
		for w := range min(len(cpus), len(d.queues)) {
			if n := d.cpuNode(cpus[w]); n >= 0 && n != f.numa {
				far = append(far, fmt.Sprintf("worker %d on CPU %d (node %d)", w, cpus[w], n))
			}
		}
		if len(far) > 0 {
			d.add("numa", f.name, Warn, fmt.Sprintf("[dataplane] cpus from `cat /sys/devices/system/node/node%d/cpulist`", f.numa),
				"the NIC is on NUMA node %d; %s: every packet crosses the interconnect", f.numa, strings.Join(far, ", "))
			continue
		}
		d.add("numa", f.name, OK, "", "the NIC and the pinned workers are on node %d", f.numa)
	}
}

// cpuNode is the NUMA node of cpu, -1 if unknown.
func (d *doctor) cpuNode(cpu int) int {
	names, _ := d.sys.ReadDir(fmt.Sprintf("/sys/devices/system/cpu/cpu%d", cpu))
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, "node"); ok {
			if v, err := strconv.Atoi(rest); err == nil {
				return v
			}
		}
	}
	return -1
}

// capIPCLock is CAP_IPC_LOCK's bit in /proc/PID/status CapEff.
const capIPCLock = 14

// checkMemlock checks that the UMEM can be pinned.
func (d *doctor) checkMemlock() {
	need := uint64(len(d.queues)) * uint64(len(d.cfg.Interfaces)) * uint64(d.cfg.Dataplane.FramesPerQueue) * uint64(d.cfg.Dataplane.FrameSize)
	umem := fmt.Sprintf("the %d MiB of UMEM are", need>>20)
	if d.unknownWorkers() != "" {
		umem = "the UMEM is"
	}
	status := d.read("/proc/self/status")
	if caps, err := strconv.ParseUint(field(status, "CapEff"), 16, 64); err == nil && caps&(1<<capIPCLock) != 0 {
		d.add("memlock", "", OK, "", "CAP_IPC_LOCK: %s not charged to RLIMIT_MEMLOCK", umem)
		return
	}
	limit := "unknown"
	for line := range strings.Lines(d.read("/proc/self/limits")) {
		if strings.HasPrefix(line, "Max locked memory") {
			if fs := strings.Fields(line); len(fs) >= 5 {
				limit = fs[3]
			}
		}
	}
	if limit == "unlimited" {
		d.add("memlock", "", OK, "", "RLIMIT_MEMLOCK is unlimited")
		return
	}
	if why := d.unknownWorkers(); why != "" {
		d.add("memlock", "", Info, "", "RLIMIT_MEMLOCK %s bytes, UMEM not sized: %s", limit, why)
		return
	}
	if n, err := strconv.ParseUint(limit, 10, 64); err == nil && n >= need {
		d.add("memlock", "", OK, "", "RLIMIT_MEMLOCK %d MiB holds the %d MiB of UMEM", n>>20, need>>20)
		return
	}
	d.add("memlock", "", Warn, "LimitMEMLOCK=infinity in the unit (deploy/fastnat.service has it), or ulimit -l unlimited",
		"without CAP_IPC_LOCK, RLIMIT_MEMLOCK (%s bytes here) must hold the %d MiB of UMEM the workers pin", limit, need>>20)
}

// parseCPUList reads "0-3,8,10-11"; nil if s is empty or malformed.
func parseCPUList(s string) []int {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil
			}
		}
		for c := a; c <= b; c++ {
			out = append(out, c)
		}
	}
	return out
}

// count is "1 queue", "2 queues".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// driverName names a driver for messages.
func driverName(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// shortErr is the end of an error's last line, after the command and the
// tool's own prefixes: "Operation not supported".
func shortErr(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		s = s[i+2:]
	}
	return s
}
