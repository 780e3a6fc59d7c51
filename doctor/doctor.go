package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/fastnat/fastnat/config"
)

// Severity grades a finding.
type Severity uint8

// Severities, mildest first.
const (
	OK   Severity = iota // as it should be
	Info                 // worth knowing; nothing to fix
	Warn                 // costs performance, or breaks in some setups
	Fail                 // fastnat will not start, or traffic breaks
)

var severityNames = [...]string{OK: "ok", Info: "info", Warn: "warn", Fail: "FAIL"}

func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "invalid"
}

// MarshalText writes the severity's name in JSON: ok, info, warn, fail.
func (s Severity) MarshalText() ([]byte, error) { return []byte(strings.ToLower(s.String())), nil }

// UnmarshalText reads what MarshalText wrote.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if strings.EqualFold(n, string(b)) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q", b)
}

// Finding is one thing the doctor found.
type Finding struct {
	Check     string   `json:"check"` // "queues", "rss", "mtu", ...
	Interface string   `json:"interface,omitempty"`
	Severity  Severity `json:"severity"`
	Message   string   `json:"message"`
	// Fix is the command (or configuration change) that fixes it.
	Fix string `json:"fix,omitempty"`
}

// Report is everything the doctor found for one configuration.
type Report struct {
	Config   string    `json:"config"`
	Kernel   string    `json:"kernel"`
	Findings []Finding `json:"findings"`
}

// Worst is the most severe finding's severity.
func (r *Report) Worst() Severity {
	w := OK
	for _, f := range r.Findings {
		w = max(w, f.Severity)
	}
	return w
}

// Count is the number of findings of severity s.
func (r *Report) Count(s Severity) int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == s {
			n++
		}
	}
	return n
}

// Find returns the findings of check (and interface, unless "").
func (r *Report) Find(check, iface string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Check == check && (iface == "" || f.Interface == iface) {
			out = append(out, f)
		}
	}
	return out
}

// Examine checks the host sys for running cfg.
func Examine(cfg *config.Config, sys System) *Report {
	d := &doctor{cfg: cfg, sys: sys, r: &Report{Config: cfg.File}}
	d.r.Kernel = strings.TrimSpace(d.read("/proc/sys/kernel/osrelease"))
	d.gather()
	for _, check := range []func(){
		d.checkRoot, d.checkKernel, d.checkInterfaces, d.checkQueues, d.checkCPUs, d.checkRSS, d.checkMTU,
		d.checkOffloads, d.checkXDP, d.checkChecksum, d.checkIRQBalance, d.checkIRQs, d.checkNUMA, d.checkMemlock, d.checkForwarding, d.checkUnit,
	} {
		check()
	}
	return d.r
}

// doctor is one examination.
type doctor struct {
	cfg    *config.Config
	sys    System
	r      *Report
	ifaces []*ifaceFacts
	// queues is the queue of each worker, as the daemon would choose.
	queues []int
}

func (d *doctor) add(check, iface string, s Severity, fix string, format string, args ...any) {
	d.r.Findings = append(d.r.Findings, Finding{Check: check, Interface: iface, Severity: s, Message: fmt.Sprintf(format, args...), Fix: fix})
}

// read returns a file's contents, "" if it cannot be read.
func (d *doctor) read(path string) string {
	b, err := d.sys.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// WriteText writes the report for a terminal: one line per finding, its
// fix below it, and a summary.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "fastnat doctor: %s on Linux %s\n\n", r.Config, r.Kernel)
	for _, f := range r.Findings {
		where := f.Check
		if f.Interface != "" {
			where += " " + f.Interface
		}
		fmt.Fprintf(w, "%-4s  %-18s %s\n", f.Severity, where, f.Message)
		if f.Fix != "" {
			for i, line := range strings.Split(f.Fix, "\n") {
				lead := "fix:"
				if i > 0 {
					lead = "    "
				}
				fmt.Fprintf(w, "%-24s %s %s\n", "", lead, line)
			}
		}
	}
	fmt.Fprintf(w, "\n%d failed, %d warnings, %d notes, %d ok\n", r.Count(Fail), r.Count(Warn), r.Count(Info), r.Count(OK))
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
