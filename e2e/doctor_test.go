package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/doctor"
	"github.com/fastnat/fastnat/internal/testnet"
)

// runDoctor runs `fastnat doctor --json` in the router namespace with the
// configuration text and returns its exit status and report.
func runDoctor(t *testing.T, topo *testnet.Topology, cfgText string) (int, doctor.Report) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "fastnat.toml")
	if err := os.WriteFile(cfg, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", topo.Router, fastnatBinary(t), "doctor", "--json", "-c", cfg)
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r doctor.Report
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("doctor output: %v\n%s", err, out)
	}
	return code, r
}

// doctorConfig is a configuration for testnet's router; extra goes into
// [dataplane].
func doctorConfig(dataplane string) string {
	return fmt.Sprintf("[dataplane]\n%s\n[[interface]]\nname = %q\nrole = \"outside\"\n\n[[interface]]\nname = %q\nrole = \"inside\"\n\n"+
		"[[nat.outbound]]\ninside = [%q]\npool = [%q]\n", dataplane, testnet.RouterOutsideLink, testnet.RouterInsideLink,
		testnet.InsideNet, testnet.PublicAddr)
}

// expectFindings checks the severity of each (check, interface) of r.
func expectFindings(t *testing.T, r doctor.Report, want map[[2]string]doctor.Severity) {
	t.Helper()
	for k, sev := range want {
		fs := r.Find(k[0], k[1])
		worst := doctor.OK
		for _, f := range fs {
			worst = max(worst, f.Severity)
		}
		if len(fs) == 0 || worst != sev {
			t.Errorf("%s %s: %v, want %v", k[0], k[1], fs, sev)
		}
	}
	if t.Failed() {
		var b strings.Builder
		r.WriteText(&b)
		t.Log(b.String())
	}
}

// TestDoctor runs `fastnat doctor` against a router namespace set up
// right (two queues on each veth, checksum offload off on the peers, the
// configuration matching) and one set up wrong, as the README's topology
// once was: offload left on, more workers than queues, a jumbo MTU, GRO
// with generic XDP, a VLAN with tag stripping, a CPU that does not exist.
func TestDoctor(t *testing.T) {
	requireFastnat(t)
	t.Run("right", func(t *testing.T) {
		topo := testnet.MustNew(t, testnet.Options{Queues: 2})
		code, r := runDoctor(t, topo, doctorConfig(`xdp_mode = "native"`))
		if code != 0 || r.Worst() == doctor.Fail {
			t.Errorf("doctor exited %d on a router set up right", code)
		}
		out, in := testnet.RouterOutsideLink, testnet.RouterInsideLink
		expectFindings(t, r, map[[2]string]doctor.Severity{
			{"queues", out}: doctor.OK, {"queues", in}: doctor.OK,
			{"mtu", out}: doctor.OK, {"mtu", in}: doctor.OK,
			{"offloads", out}: doctor.OK, {"offloads", in}: doctor.OK,
			{"checksum", out}: doctor.OK, {"checksum", in}: doctor.OK,
			{"xdp", out}:    doctor.Info, // veth: native XDP, no zero copy
			{"irq", out}:    doctor.Info, // veth: no interrupts
			{"memlock", ""}: doctor.OK,
		})
		if f := r.Find("checksum", out); len(f) == 1 && !strings.Contains(f[0].Message, topo.Client) {
			t.Errorf("the peer's namespace is not named: %q", f[0].Message)
		}
	})
	t.Run("wrong", func(t *testing.T) {
		topo := testnet.MustNew(t, testnet.Options{Queues: 2, KeepOffload: true})
		testnet.MustRun(t, topo.Router, "ip", "link", "set", testnet.RouterOutsideLink, "mtu", "4000")
		testnet.MustRun(t, topo.Router, "ethtool", "-K", testnet.RouterOutsideLink, "gro", "on")
		// A VLAN on the inside, where the kernel has 802.1Q.
		_, vlanErr := testnet.Run(testContext(t), topo.Router, "ip", "link", "add", "link", testnet.RouterInsideLink, "name", "inside.10", "type", "vlan", "id", "10")
		code, r := runDoctor(t, topo, doctorConfig("workers = 4\ncpus = [4000, 4001]\nxdp_mode = \"generic\""))
		if code != 1 {
			t.Errorf("doctor exited %d on a router set up wrong, want 1", code)
		}
		out, in := testnet.RouterOutsideLink, testnet.RouterInsideLink
		want := map[[2]string]doctor.Severity{
			{"queues", out}:   doctor.Warn, // 4 workers asked, 2 queues
			{"cpus", ""}:      doctor.Fail, // CPU 4000
			{"checksum", out}: doctor.Fail, {"checksum", in}: doctor.Fail,
			{"mtu", out}: doctor.Fail, {"mtu", in}: doctor.OK,
			{"offloads", out}: doctor.Warn, // GRO in generic mode
			{"xdp", out}:      doctor.Warn, // generic mode copies
		}
		if vlanErr == nil {
			want[[2]string{"offloads", in}] = doctor.Warn // rxvlan with a VLAN
		} else {
			t.Logf("no VLAN check: %v", vlanErr)
		}
		expectFindings(t, r, want)
		for _, f := range r.Find("checksum", out) {
			if want := fmt.Sprintf("ip netns exec %s ethtool -K %s tx off", topo.Client, testnet.NodeLink); f.Fix != want {
				t.Errorf("checksum fix %q, want %q", f.Fix, want)
			}
		}
		for _, f := range r.Find("queues", out) {
			if f.Severity == doctor.Warn && !strings.Contains(f.Message, "workers = 4 but outside has 2 queues: fastnat runs 2 workers") {
				t.Errorf("queues: %q", f.Message)
			}
		}
	})
}
