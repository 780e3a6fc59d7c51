// Package deploy holds what fastnat ships beside the binary — the systemd
// unit, example configurations, Prometheus alert rules, a Grafana
// dashboard — and tests that they stay true: this file checks the unit
// and the configurations; metrics/deploy_test.go the alerts and the
// dashboard.
package deploy

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fastnat/fastnat/config"
	"github.com/fastnat/fastnat/doctor"
)

// maxExposure is the highest `systemd-analyze security` rating the unit
// may have (0 safest, 10 exposed).
const maxExposure = 3.0

// TestServiceSecurity rates deploy/fastnat.service as systemd would, as
// shipped and with the drop-in ip-allow.conf applied.
func TestServiceSecurity(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	unit, err := os.ReadFile("fastnat.service")
	if err != nil {
		t.Fatal(err)
	}
	dropin, err := os.ReadFile("ip-allow.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		text string
	}{
		{"shipped", string(unit)},
		// systemd-analyze --offline reads no drop-ins: the drop-in's
		// [Service] lines, appended, extend the unit's as a drop-in does.
		{"with ip-allow.conf", string(unit) + "\n" + string(dropin)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "fastnat.service"), []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(sa, "security", "--offline=yes", "fastnat.service")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("systemd-analyze security: %v\n%s", err, out)
			}
			m := regexp.MustCompile(`Overall exposure level for fastnat\.service: ([0-9.]+)`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("no exposure level in:\n%s", out)
			}
			level, _ := strconv.ParseFloat(string(m[1]), 64)
			if level > maxExposure {
				t.Fatalf("exposure %.1f, want at most %.1f:\n%s", level, maxExposure, out)
			}
			t.Logf("systemd-analyze security: %.1f", level)
		})
	}
}

// TestServiceIPFilter checks what docs/deploy.md promises of the
// service's own IP sockets: the shipped unit does not filter them (the
// event log's collectors and Prometheus are elsewhere), the drop-in
// ip-allow.conf denies all but localhost and the listed addresses, and
// the guide and the package name the drop-in where the package installs it.
func TestServiceIPFilter(t *testing.T) {
	unit := readFile(t, "fastnat.service")
	if m := regexp.MustCompile(`(?m)^IPAddress(Deny|Allow)=.*$`).FindString(unit); m != "" {
		t.Errorf("fastnat.service has %q: collectors and Prometheus on other hosts would be refused", m)
	}
	dropin := readFile(t, "ip-allow.conf")
	lines := regexp.MustCompile(`(?m)^IPAddress(Deny|Allow)=.*$`).FindAllString(dropin, -1)
	if len(lines) < 3 || lines[0] != "IPAddressDeny=any" || lines[1] != "IPAddressAllow=localhost" {
		t.Errorf("ip-allow.conf: %q, want IPAddressDeny=any, IPAddressAllow=localhost, then the collectors", lines)
	}
	if !strings.HasPrefix(dropin[strings.Index(dropin, "\n[")+1:], "[Service]\n") {
		t.Error("ip-allow.conf has no [Service] section")
	}
	guide := readFile(t, "../docs/deploy.md")
	for _, l := range lines {
		if !strings.Contains(guide, "\n"+l+"\n") {
			t.Errorf("docs/deploy.md does not show the drop-in's line %s", l)
		}
	}
	const installed = "/usr/share/fastnat/systemd/ip-allow.conf"
	for _, f := range []string{"../docs/deploy.md", "../scripts/package-deb", "../scripts/test-deb", "../doctor/unit.go"} {
		if !strings.Contains(readFile(t, f), installed) {
			t.Errorf("%s does not name %s", f, installed)
		}
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServiceUnit checks what the daemon relies on in the unit.
func TestServiceUnit(t *testing.T) {
	b, err := os.ReadFile("fastnat.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	for _, want := range []string{
		"\nType=notify\n", "\nNotifyAccess=main\n", "\nWatchdogSec=",
		"\nExecReload=/usr/bin/fastnat reload -c /etc/fastnat/fastnat.toml\n",
		"\nExecStart=/usr/bin/fastnat run -c /etc/fastnat/fastnat.toml\n",
		"\nProtectSystem=strict\n", "\nRuntimeDirectory=fastnat\n", "\nLimitMEMLOCK=infinity\n",
		"\nSystemCallFilter=@system-service bpf\n", "AF_XDP",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("fastnat.service lacks %q", strings.TrimSpace(want))
		}
	}
	if regexp.MustCompile(`(?m)^(CapabilityBoundingSet|AmbientCapabilities)=.*CAP_SYS_ADMIN`).MatchString(unit) {
		t.Error("fastnat.service grants CAP_SYS_ADMIN, which kernels since 5.8 do not need for XDP")
	}
}

// TestContainerfile checks the container recipe as far as this machine
// can without a container engine: every file it copies exists, it builds
// with scripts/build (which package-deb uses, so scripts/test-deb tests
// the build step), and the capabilities its run line documents are the
// unit's.
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile("../Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	cf := string(b)
	for _, line := range strings.Split(cf, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--from") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			if src == "." {
				continue
			}
			if _, err := os.Stat("../" + src); err != nil {
				t.Errorf("Containerfile copies %s: %v", src, err)
			}
		}
	}
	if !strings.Contains(cf, "RUN scripts/build ") {
		t.Error("the Containerfile does not build with scripts/build")
	}
	unit, err := os.ReadFile("fastnat.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapabilityBoundingSet=(.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("no CapabilityBoundingSet in the unit")
	}
	var caps []string
	for _, c := range strings.Fields(string(m[1])) {
		caps = append(caps, strings.TrimPrefix(c, "CAP_"))
	}
	if want := "--cap-add " + strings.Join(caps, ","); !strings.Contains(cf, want) {
		t.Errorf("the Containerfile's run line lacks %q (the unit's capabilities)", want)
	}
}

// TestCarrierExample checks that examples/carrier-pool.toml shows what a
// carrier needs of issue 13 — a deterministic rule, a port-block rule,
// IPFIX and syslog exporters — and that the IPAddressAllow= lines its
// comment gives for the unit's drop-in let every collector through.
func TestCarrierExample(t *testing.T) {
	const file = "../examples/carrier-pool.toml"
	text := readFile(t, file)
	cfg, err := config.Parse(file, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var deterministic, blocks bool
	for _, r := range cfg.NAT.Outbound {
		deterministic = deterministic || r.Mapping == config.Deterministic
		blocks = blocks || r.BlockSize > 0
	}
	if !deterministic || !blocks || len(cfg.Logging.IPFIX) == 0 || len(cfg.Logging.Syslog) == 0 {
		t.Fatalf("carrier-pool.toml: deterministic rule %v, port blocks %v, %d IPFIX and %d syslog exporters; want all",
			deterministic, blocks, len(cfg.Logging.IPFIX), len(cfg.Logging.Syslog))
	}
	var dropin strings.Builder
	dropin.WriteString("[Service]\n")
	for _, l := range regexp.MustCompile(`(?m)^#   (IPAddress(Deny|Allow)=.*)$`).FindAllStringSubmatch(text, -1) {
		dropin.WriteString(l[1] + "\n")
	}
	f, err := doctor.ParseIPFilter(dropin.String())
	if err != nil || !f.Filters() {
		t.Fatalf("the drop-in lines in carrier-pool.toml's comment: %v\n%s", err, dropin.String())
	}
	for _, x := range cfg.Logging.IPFIX {
		if !f.Allows(x.Collector.Addr()) {
			t.Errorf("the comment's IPAddressAllow= lines refuse the IPFIX collector %s", x.Collector)
		}
	}
	for _, s := range cfg.Logging.Syslog {
		if ap, err := netip.ParseAddrPort(s.Address); err == nil && !f.Allows(ap.Addr()) {
			t.Errorf("the comment's IPAddressAllow= lines refuse the syslog receiver %s", s.Address)
		}
	}
}
