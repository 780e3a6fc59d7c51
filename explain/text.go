package explain

import (
	"fmt"
	"io"
	"strings"
)

// textWidth is the width WriteText wraps its lines to.
const textWidth = 96

// WriteText writes the report for a reader: one labelled line per finding,
// the suggested mapping as a table to paste.
func (r *Report) WriteText(w io.Writer) {
	line := func(label, format string, a ...any) {
		for i, l := range wrap(fmt.Sprintf(format, a...), textWidth-13) {
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(w, "%-12s %s\n", label, l)
		}
	}
	c := r.Connection
	how := ""
	if c.Inferred {
		how = " (its source is in no inside network)"
		if c.From == "inside" {
			how = " (its source is in an inside network)"
		}
	}
	ttl := ""
	if c.TTL != DefaultTTL {
		ttl = fmt.Sprintf(" with TTL %d", c.TTL)
	}
	line("connection", "%s %s -> %s, arriving %s%s%s", c.Protocol, c.Src, c.Dst, c.From, ttl, how)
	if r.Verdict != "translated" {
		if r.Verdict == "answered" {
			line("verdict", "answered by the NAT itself, not forwarded")
		} else {
			line("verdict", "dropped (%s): %s", r.Verdict, r.Why)
		}
		if a := r.Answer; a != nil {
			from := ""
			if a.From.IsValid() {
				from = " from " + a.From.String()
			}
			line("answer", "%s%s: %s", a.Kind, from, a.Why)
		}
		line("ftp alg", "not inspected: %s", r.ALG.Why)
		return
	}
	for _, rule := range r.Rules {
		where := ""
		if w := rule.Where(); w != "" {
			where = " (" + w + ")"
		}
		line("nat rule", "%s%s: %s", rule.Name(), where, rule.Text)
	}
	if t := r.Translated; t != nil {
		src := t.Src.String()
		if t.Src.Port() == 0 && r.SourcePorts != "" {
			src = t.Src.Addr().String() + ":<a port of " + r.SourcePorts + ">"
		}
		note := ""
		if r.SourcePorts != "" && t.Src.Port() != 0 {
			note = fmt.Sprintf(" (the source port is kept when free; else one of %s)", r.SourcePorts)
		}
		line("translated", "%s %s -> %s%s", c.Protocol, src, t.Dst, note)
	}
	if a := r.Application; a != nil {
		switch {
		case a.By != nil:
			where := ""
			if w := a.By.Where(); w != "" {
				where = " (" + w + ")"
			}
			line("application", "%s, by %s%s: %s, on the %s port %d", a.Name, a.By.Name(), where, a.By.Text, a.On, a.Port)
		case a.Default != "":
			line("application", "%s, by the built-in default %s, on the %s port %d", a.Name, a.Default, a.On, a.Port)
		default:
			line("application", "%s: no port mapping or default matches %d/%s as it arrives, nor %d/%s after translation",
				a.Name, c.Dst.Port(), c.Protocol, r.Translated.Dst.Port(), c.Protocol)
		}
	}
	if r.ALG.Inspected {
		line("ftp alg", "inspected: %s", r.ALG.Why)
	} else {
		line("ftp alg", "not inspected: %s", r.ALG.Why)
	}
	if s := r.Suggestion; s != nil {
		line("suggestion", "%s (Comware: %s):", s.Why, s.Comware)
		fmt.Fprintln(w)
		for _, l := range strings.Split(strings.TrimSuffix(s.TOML(), "\n"), "\n") {
			fmt.Fprintf(w, "%-12s %s\n", "", l)
		}
	}
}

// wrap breaks s into lines of at most n bytes at spaces (a longer word
// keeps a line of its own).
func wrap(s string, n int) []string {
	var lines []string
	for len(s) > n {
		i := strings.LastIndexByte(s[:n+1], ' ')
		if i <= 0 {
			if i = strings.IndexByte(s, ' '); i < 0 {
				break
			}
		}
		lines = append(lines, s[:i])
		s = s[i+1:]
	}
	return append(lines, s)
}
