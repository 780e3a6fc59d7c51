package bench

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/stat and /proc/PID/stat
// (USER_HZ, 100 on every Linux architecture Go supports).
const userHZ = 100

// cpuTimes is one CPU's line of /proc/stat, in USER_HZ ticks.
type cpuTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal uint64
}

// busy is the time the CPU was doing anything: all but idle and iowait
// (steal is time the hypervisor took away, not the CPU's own work).
func (c cpuTimes) busy() uint64 { return c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ }

// sub returns c − d field by field.
func (c cpuTimes) sub(d cpuTimes) cpuTimes {
	return cpuTimes{c.User - d.User, c.Nice - d.Nice, c.System - d.System, c.Idle - d.Idle,
		c.IOWait - d.IOWait, c.IRQ - d.IRQ, c.SoftIRQ - d.SoftIRQ, c.Steal - d.Steal}
}

// parseProcStat returns the per-CPU lines ("cpu0", "cpu1", ...) of
// /proc/stat, indexed by CPU number.
func parseProcStat(b []byte) ([]cpuTimes, error) {
	var out []cpuTimes
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n < 0 || n >= 4096 {
			return nil, fmt.Errorf("/proc/stat: bad cpu line %q", f[0])
		}
		var v [8]uint64
		for i := range v {
			if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
				return nil, fmt.Errorf("/proc/stat: %s: %w", f[0], err)
			}
		}
		for len(out) <= n {
			out = append(out, cpuTimes{})
		}
		out[n] = cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("/proc/stat: no per-cpu lines")
	}
	return out, nil
}

func readProcStat() ([]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseProcStat(b)
}

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// parsePIDStat returns utime+stime (ticks) and the process flags from
// /proc/PID/stat. The command name in parentheses may hold spaces and
// parentheses, so the fields are counted from the last ')'.
func parsePIDStat(b []byte) (cpu uint64, flags uint64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state(3) ppid ... utime is field 14, stime 15 of
	// the whole line, so 12 and 13 here (0-based, from state).
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	if flags, err = strconv.ParseUint(f[6], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("stat flags: %w", err)
	}
	u, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat utime: %w", err)
	}
	s, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("stat stime: %w", err)
	}
	return u + s, flags, nil
}

// processCPU returns the CPU time pid has used (all its threads).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	t, _, err := parsePIDStat(b)
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return ticks(t), nil
}

// knownProcesses returns the CPU ticks of the processes in pids (0s are
// ignored) and of every kernel thread: what the benchmark knows to be its
// own or the DUT's (kernel threads include ksoftirqd, which does the
// kernel DUT's work). Everything else the CPUs did is other load.
//
// Why not sum the other processes instead: most of the load beside a
// benchmark on a shared machine is compilers and test binaries that start
// and end within a window, and a process that has ended is no longer in
// /proc to be read. Each tick of /proc/stat's busy time is charged to the
// task it interrupted (tick-based accounting), so busy time less the
// known processes' is the rest, the short-lived included.
func knownProcesses(pids ...int) map[int]uint64 {
	out := map[int]uint64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone
		}
		if t, flags, err := parsePIDStat(b); err == nil && (flags&pfKthread != 0 || slices.Contains(pids, pid)) {
			out[pid] = t
		}
	}
	return out
}

// otherTicks returns how many ticks the processes of after used since
// before (the whole of those that started in between). Processes that
// ended in between are missed (none of knownProcesses' should).
func otherTicks(before, after map[int]uint64) uint64 {
	var n uint64
	for pid, t := range after {
		if b, ok := before[pid]; ok && b <= t {
			n += t - b
		} else {
			n += t // started in the window (a smaller count: pid reused)
		}
	}
	return n
}

func ticks(t uint64) time.Duration { return time.Duration(t) * (time.Second / userHZ) }

// Machine describes where a benchmark ran.
type Machine struct {
	CPU        string `json:"cpu"`           // model name from /proc/cpuinfo
	Cores      int    `json:"cores"`         // logical CPUs
	Kernel     string `json:"kernel"`        // uname -r
	Go         string `json:"go"`            // Go version
	Virtual    bool   `json:"virtual"`       // the CPU reports a hypervisor
	Hostname   string `json:"hostname"`      // for telling runs apart
	ConntrackM int    `json:"conntrack_max"` // net.netfilter.nf_conntrack_max
}

// String is the one-line description printed above a table.
func (m Machine) String() string {
	v := ""
	if m.Virtual {
		v = " (virtual machine)"
	}
	return fmt.Sprintf("%s, %d cores%s, Linux %s, %s", m.CPU, m.Cores, v, m.Kernel, m.Go)
}

// ThisMachine describes the machine the process runs on.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPU, m.Virtual = parseCPUInfo(b)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max"); err == nil {
		m.ConntrackM, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	return m
}

// parseCPUInfo returns the first model name and whether the flags name a
// hypervisor.
func parseCPUInfo(b []byte) (model string, virtual bool) {
	model = "unknown"
	found := false
	for line := range bytes.Lines(b) {
		k, v, ok := strings.Cut(string(line), ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "model name":
			if !found && v != "" {
				model, found = v, true
			}
		case "flags":
			for _, f := range strings.Fields(v) {
				if f == "hypervisor" {
					virtual = true
				}
			}
		}
	}
	return model, virtual
}
