package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// ManPage is what a man page has besides the commands.
type ManPage struct {
	Date        string // "2025-01-31": the page's date, from the build
	Version     string // the program's version
	Description string // paragraphs for DESCRIPTION
	Files       string // paragraphs for FILES; "" leaves the section out
	SeeAlso     string // "systemctl(1), ethtool(8)"; "" leaves it out
}

// WriteMan writes the program's man page, section 1, in roff with the man
// macros: every visible command with its synopsis, about and flags.
func (p *Program) WriteMan(w io.Writer, m ManPage) {
	p.link()
	up := strings.ToUpper(p.Name)
	fmt.Fprintf(w, ".TH %s 1 %q %q \"User Commands\"\n", up, m.Date, p.Name+" "+m.Version)
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", roff(p.Name), roff(p.Summary))
	fmt.Fprintln(w, ".SH SYNOPSIS")
	for _, c := range p.All() {
		if c.Hidden || c.Flags == nil || c.parent != nil && c.parent.Hidden {
			continue
		}
		name := p.Name + " " + c.FullName()
		rest := strings.TrimSpace(strings.TrimPrefix(p.usageLine(c), name))
		fmt.Fprintf(w, ".B %s\n", roff(name))
		if rest != "" {
			fmt.Fprintln(w, roff(rest))
		}
		fmt.Fprintln(w, ".br")
	}
	if m.Description != "" {
		fmt.Fprintln(w, ".SH DESCRIPTION")
		for _, para := range paragraphs(m.Description) {
			fmt.Fprintf(w, ".PP\n%s\n", roff(para))
		}
	}
	fmt.Fprintln(w, ".SH COMMANDS")
	for _, c := range p.All() {
		if c.Hidden || c.parent != nil && c.parent.Hidden {
			continue
		}
		fmt.Fprintf(w, ".SS %s\n", roff(p.usageLine(c)))
		fmt.Fprintf(w, "%s.\n", roff(upperFirst(c.Summary)))
		for _, para := range paragraphs(c.About) {
			fmt.Fprintf(w, ".PP\n%s\n", roff(para))
		}
		fs, _ := c.FlagSet()
		for _, f := range flagsOf(fs) {
			fmt.Fprintf(w, ".TP\n.B %s\n", roff(f.withArg()))
			u := f.usage
			if f.def != "" {
				u += " (default " + f.def + ")"
			}
			fmt.Fprintf(w, "%s\n", roff(u))
		}
	}
	if p.Footer != "" {
		fmt.Fprintf(w, ".SH \"EXIT STATUS\"\n%s\n", roff(p.Footer))
	}
	if m.Files != "" {
		fmt.Fprintln(w, ".SH FILES")
		for _, para := range paragraphs(m.Files) {
			fmt.Fprintf(w, ".PP\n%s\n", roff(para))
		}
	}
	if m.SeeAlso != "" {
		fmt.Fprintf(w, ".SH \"SEE ALSO\"\n%s\n", roff(m.SeeAlso))
	}
}

// roff escapes text for a roff line: backslashes, hyphens (which roff
// may render as dashes), and a leading dot or quote that would make the
// line a request. Line breaks become spaces.
func roff(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	s = roffGlyphs.Replace(s)
	s = roffCode.ReplaceAllString(s, `\fB$1\fR`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// roffCode finds `code` spans, set in bold.
var roffCode = regexp.MustCompile("`([^`]+)`")

// roffGlyphs spells the non-ASCII characters fastnat's help uses as roff
// glyphs, so the page renders without preconv.
var roffGlyphs = strings.NewReplacer("—", `\(em`, "–", `\(en`, "→", `\(->`, "≥", `\(>=`, "≤", `\(<=`,
	"×", `\(mu`, "µ", `\(mc`, "…", "...", "’", "'", "“", `\(lq`, "”", `\(rq`)

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
