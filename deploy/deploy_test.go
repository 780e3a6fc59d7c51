// Package deploy holds what fastnat ships beside the binary — the systemd
// unit, example configurations, Prometheus alert rules, a Grafana
// dashboard — and tests that they stay true: this file checks the unit
// and the configurations; metrics/deploy_test.go the alerts and the
// dashboard.
package deploy

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` rating the unit
// may have (0 safest, 10 exposed).
const maxExposure = 3.0

// TestServiceSecurity rates deploy/fastnat.service as systemd would.
func TestServiceSecurity(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd)")
	}
	out, err := exec.Command(sa, "security", "--offline=yes", "fastnat.service").CombinedOutput()
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
