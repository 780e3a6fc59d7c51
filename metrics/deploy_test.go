package metrics

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The alert rules and the dashboard fastnat ships.
const (
	alertRules     = "../deploy/prometheus/fastnat-alerts.yml"
	alertRuleTests = "../deploy/prometheus/fastnat-alerts.test.yml"
	dashboard      = "../deploy/grafana/fastnat.json"
)

// promtool returns the path of promtool (Debian package prometheus), or
// skips the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus; scripts/setup.sh installs it)")
	}
	return p
}

// TestAlertRules: the shipped rules load, and every alert fires where its
// test says and nowhere else (promtool test rules).
func TestAlertRules(t *testing.T) {
	pt := promtool(t)
	for _, args := range [][]string{{"check", "rules", alertRules}, {"test", "rules", alertRuleTests}} {
		out, err := exec.Command(pt, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestPromtoolCheckMetrics: a scrape passes promtool check metrics (and
// client_golang's own linter, which needs no promtool).
func TestPromtoolCheckMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(fakeSnapshot))
	problems, err := promlint.NewWithMetricFamilies(gather(t, reg)).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("promlint: %v %+v", err, problems)
	}
	pt := promtool(t)
	cmd := exec.Command(pt, "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrapeText(t, reg))
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

var metricName = regexp.MustCompile(`\b(fastnat_[a-z0-9_]+|process_[a-z0-9_]+|go_[a-z0-9_]+|up)\b`)

// TestDeployedNames: every metric the alert rules and the dashboard query
// is one fastnat exports, so that neither silently shows nothing.
func TestDeployedNames(t *testing.T) {
	exported := map[string]bool{"up": true, "process_cpu_seconds_total": true, "process_resident_memory_bytes": true}
	ch := make(chan *prometheus.Desc, 256)
	go func() { NewCollector(fakeSnapshot).Describe(ch); close(ch) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			exported[m[1]] = true
		}
	}
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, line := range strings.Split(string(rules), "\n") {
		if !strings.Contains(line, "summary:") && !strings.Contains(line, "description:") {
			exprs = append(exprs, line)
		}
	}
	b, err := os.ReadFile(dashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", dashboard, err)
	}
	if len(dash.Panels) == 0 {
		t.Fatalf("%s has no panels", dashboard)
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	used := 0
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			used++
			if !exported[m] {
				t.Errorf("%q queries %s, which fastnat does not export", e, m)
			}
		}
	}
	if used < 20 {
		t.Errorf("only %d metric references found: the test is not reading the files", used)
	}
}

// gather collects reg's metric families.
func gather(t *testing.T, reg *prometheus.Registry) []*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// scrapeText is reg in the text exposition format, as /metrics serves it.
func scrapeText(t *testing.T, reg *prometheus.Registry) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range gather(t, reg) {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}
