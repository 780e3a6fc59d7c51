package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fastnat/fastnat/internal/testnet"
)

// DUT is a device under test: what turns the router namespace of a fresh
// topology into the NAT (or plain router) that the generator's traffic
// crosses. Every case gets its own topology, so Start never sees a DUT's
// leftovers.
type DUT struct {
	// Name labels the DUT in reports ("kernel", "fastnat", "none").
	Name string
	// Source is the source address the sink expects on delivered frames:
	// the NAT's public address, or the inside host's address for a DUT
	// that does not translate. Frames from any other source are counted
	// as untranslated, not delivered.
	Source netip.Addr
	// Start sets the DUT up on t, using env, and returns once it forwards.
	Start func(ctx context.Context, t *testnet.Topology, env DUTEnv) (*RunningDUT, error)
}

// DUTEnv is what a DUT's Start may use.
type DUTEnv struct {
	// CPU is the CPU the DUT's packet work should run on; -1 means any.
	CPU int
	// Flows is the number of flows of the case (for table sizes).
	Flows int
}

// RunningDUT is a started DUT.
type RunningDUT struct {
	// PID is the DUT's process, whose CPU time is reported besides the
	// machine's; 0 for the kernel.
	PID int
	// Stop stops the DUT (the topology's Close removes the rest).
	Stop func() error
	// Output returns the DUT's log for error messages; may be nil.
	Output func() string
	// Check reports a DUT that died during the case; may be nil.
	Check func() error
}

// DUT names.
const (
	DUTKernel  = "kernel"
	DUTFastnat = "fastnat"
	DUTNone    = "none"
)

// vethKernelNAT is the kernel DUT's ruleset: the case's nat outbound of the
// inside network behind the public address, with testnet's stateful
// forward chain, and nothing else (no FTP helper, no DNAT), as in
// fastnatConfig.
var vethKernelNAT = testnet.KernelNATConfig{
	Outbound: []testnet.Outbound{{Inside: testnet.InsideNet, Pool: testnet.PublicAddr}},
}

// KernelDUT is the Linux kernel as the NAT, the setup a user would pick
// instead of fastnat: nftables with conntrack (vethKernelNAT), ip_forward
// on, and the router's receive processing steered to the DUT's CPU with
// RPS.
func KernelDUT() DUT {
	return DUT{Name: DUTKernel, Source: testnet.PublicAddr,
		Start: func(ctx context.Context, t *testnet.Topology, env DUTEnv) (*RunningDUT, error) {
			if err := t.KernelNAT(ctx, vethKernelNAT); err != nil {
				return nil, err
			}
			if err := steerRPS(ctx, t, env.CPU); err != nil {
				return nil, err
			}
			return &RunningDUT{Stop: func() error { return nil }}, nil
		}}
}

// ForwardDUT is the kernel forwarding without NAT or conntrack: the
// ceiling of what the veth topology carries, for calibrating the harness.
func ForwardDUT() DUT {
	return DUT{Name: DUTNone, Source: testnet.ServerAddr,
		Start: func(ctx context.Context, t *testnet.Topology, env DUTEnv) (*RunningDUT, error) {
			if err := t.SetForwarding(ctx, true); err != nil {
				return nil, err
			}
			if err := steerRPS(ctx, t, env.CPU); err != nil {
				return nil, err
			}
			return &RunningDUT{Stop: func() error { return nil }}, nil
		}}
}

// steerRPS makes the router's kernel process what arrives on its inside
// link on cpu (receive packet steering), instead of on the CPU that sent
// it: on veth the sender's CPU would otherwise run the whole forwarding
// path inside the generator's system call, and the DUT would get no CPU
// of its own. cpu < 0 leaves RPS off.
func steerRPS(ctx context.Context, t *testnet.Topology, cpu int) error {
	if cpu < 0 {
		return nil
	}
	mask := fmt.Sprintf("%x", uint64(1)<<cpu)
	script := fmt.Sprintf("for q in /sys/class/net/%s/queues/rx-*/rps_cpus; do echo %s > $q; done", testnet.RouterInsideLink, mask)
	if _, err := testnet.Run(ctx, t.Router, "sh", "-c", script); err != nil {
		return fmt.Errorf("rps on %s: %w", testnet.RouterInsideLink, err)
	}
	return nil
}

// fastnatReady is the line `fastnat run` logs once its workers run.
const fastnatReady = "fastnat running"

// fastnatStartTimeout bounds how long FastnatDUT waits for fastnatReady.
const fastnatStartTimeout = 15 * time.Second

// FastnatDUT is fastnat as the NAT: `binary run -c FILE` in the router
// namespace, ip_forward off, with the configuration fastnatConfig writes:
// the same rules as KernelDUT, one worker pinned to the DUT's CPU,
// adaptive polling (measured: the same rates as busy polling here).
func FastnatDUT(binary string) DUT {
	return DUT{Name: DUTFastnat, Source: testnet.PublicAddr,
		Start: func(ctx context.Context, t *testnet.Topology, env DUTEnv) (*RunningDUT, error) {
			if binary == "" {
				return nil, fmt.Errorf("fastnat dut: %w: no fastnat binary given", ErrNoDUT)
			}
			if _, err := os.Stat(binary); err != nil {
				return nil, fmt.Errorf("fastnat dut: %w: %w", ErrNoDUT, err)
			}
			path := filepath.Join(t.Dir, "fastnat.toml")
			conf := fastnatConfig(filepath.Join(t.Dir, "fastnat.sock"), env)
			if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
				return nil, fmt.Errorf("fastnat dut: %w", err)
			}
			p, err := t.Start(t.Router, binary, "run", "-c", path)
			if err != nil {
				return nil, fmt.Errorf("fastnat dut: %w", err)
			}
			deadline := time.NewTimer(fastnatStartTimeout)
			defer deadline.Stop()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for !strings.Contains(p.Output(), fastnatReady) {
				select {
				case <-p.Done():
					return nil, fmt.Errorf("fastnat dut: %w: `fastnat run` exited: %s", ErrNoDUT, tail(p.Output(), 2048))
				case <-deadline.C:
					p.Stop()
					return nil, fmt.Errorf("fastnat dut: %w: no %q within %v: %s", ErrNoDUT, fastnatReady, fastnatStartTimeout, tail(p.Output(), 2048))
				case <-ctx.Done():
					p.Stop()
					return nil, ctx.Err()
				case <-tick.C:
				}
			}
			check := func() error {
				if exited, err := p.Exited(); exited {
					return fmt.Errorf("`fastnat run` exited during the case (%v): %s", err, tail(p.Output(), 2048))
				}
				return nil
			}
			return &RunningDUT{PID: p.Pid(), Stop: p.Stop, Output: p.Output, Check: check}, nil
		}}
}

// fastnatConfig is fastnat's configuration for the benchmark's router:
// its links as inside and outside, the rules of vethKernelNAT (nat
// outbound of the inside network behind the public address; no FTP ALG,
// no nat server), one worker on env.CPU, its control socket at socket.
func fastnatConfig(socket string, env DUTEnv) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	p("# written by fastnat bench veth")
	p("[dataplane]")
	p("workers = 1")
	if env.CPU >= 0 {
		p("cpus = [%d]", env.CPU)
	}
	p("poll = \"adaptive\" # the default: spins under load, sleeps when idle")
	p("")
	p("[[interface]]")
	p("name = %q", testnet.RouterOutsideLink)
	p("role = \"outside\"")
	p("")
	p("[[interface]]")
	p("name = %q", testnet.RouterInsideLink)
	p("role = \"inside\"")
	p("")
	p("[flows]")
	p("max = %d", max(1<<16, 2*env.Flows))
	p("")
	p("[[nat.outbound]]")
	p("inside = [%q]", testnet.InsideNet.String())
	p("pool = [%q]", testnet.PublicAddr.String())
	p("ports = \"1024-65535\"")
	p("mapping = \"endpoint-independent\"")
	p("")
	p("[alg.ftp]")
	p("enabled = false")
	p("")
	p("[control]")
	p("socket = %q", socket)
	return b.String()
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
