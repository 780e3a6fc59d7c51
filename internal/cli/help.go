package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// width is where help text wraps.
const width = 79

// flagInfo is one flag as help, the man page and completion show it.
type flagInfo struct {
	name    string // without dashes
	arg     string // value name, "" for a boolean flag
	usage   string
	def     string // "" when there is nothing to show
	choices []string
}

// display is the flag as help writes it: "-c", "--json".
func (f flagInfo) display() string {
	if len(f.name) == 1 {
		return "-" + f.name
	}
	return "--" + f.name
}

// withArg is "--flows LIST", "--json".
func (f flagInfo) withArg() string {
	if f.arg == "" {
		return f.display()
	}
	return f.display() + " " + f.arg
}

// takesFile reports whether the flag's value is a path.
func (f flagInfo) takesFile() bool {
	switch f.arg {
	case "FILE", "PATH", "DIR":
		return true
	}
	return false
}

// placeholder is implemented by flag values that name their argument.
type placeholder interface{ Placeholder() string }

// chooser is implemented by flag values with a fixed set of words.
type chooser interface{ Choices() []string }

// boolFlag is the flag package's test for a flag without a value.
type boolFlag interface{ IsBoolFlag() bool }

// flagsOf lists fs's flags in name order.
func flagsOf(fs *flag.FlagSet) []flagInfo {
	var out []flagInfo
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if p, ok := f.Value.(placeholder); ok && !strings.Contains(f.Usage, "`") {
			arg = p.Placeholder()
		}
		switch arg {
		case "int", "uint", "int64", "uint64":
			arg = "N"
		case "float":
			arg = "NUMBER"
		case "value":
			arg = "VALUE"
		}
		arg = strings.ToUpper(arg)
		def := f.DefValue
		if b, ok := f.Value.(boolFlag); ok && b.IsBoolFlag() {
			arg = ""
			if def == "false" {
				def = ""
			}
		}
		fi := flagInfo{name: f.Name, arg: arg, usage: usage, def: def}
		if c, ok := f.Value.(chooser); ok {
			fi.choices = c.Choices()
		}
		out = append(out, fi)
	})
	return out
}

// visible lists the commands help lists.
func visible(cs []*Command) []*Command {
	var out []*Command
	for _, c := range cs {
		if !c.Hidden {
			out = append(out, c)
		}
	}
	return out
}

// WriteUsage writes the program's command list.
func (p *Program) WriteUsage(w io.Writer) {
	p.link()
	fmt.Fprintf(w, "%s — %s\n\nUsage:\n", p.Name, p.Summary)
	for _, c := range visible(p.Commands) {
		fmt.Fprintf(w, "  %s\n      %s\n", p.usageLine(c), wrap(c.Summary, width-6, "      "))
	}
	fmt.Fprintf(w, "\n%s help COMMAND (or %s COMMAND -h) describes a command and every flag.\n", p.Name, p.Name)
	if p.Footer != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(p.Footer, width, ""))
	}
}

// writeRow writes "indent left  right", right wrapped with a hanging
// indent, or on the next line when left is wider than col.
func writeRow(w io.Writer, indent, left, right string, col int) {
	hang := strings.Repeat(" ", len(indent)+col+2)
	if len(left) > col {
		fmt.Fprintf(w, "%s%s\n%s%s\n", indent, left, hang, wrap(right, width-len(hang), hang))
		return
	}
	fmt.Fprintf(w, "%s%-*s  %s\n", indent, col, left, wrap(right, width-len(hang), hang))
}

// wrap breaks s into lines of at most n characters (a longer word stays
// whole), the lines after the first prefixed by indent.
func wrap(s string, n int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		switch {
		case i == 0:
		case line+1+len(word) > n:
			b.WriteString("\n" + indent)
			line = 0
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}

// paragraphs splits text at blank lines.
func paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// WriteHelp writes c's help: summary, usage, about, subcommands and every
// flag with its default.
func (p *Program) WriteHelp(w io.Writer, c *Command) {
	p.link()
	fmt.Fprintf(w, "%s %s: %s\n\nusage: %s\n", p.Name, c.FullName(), c.Summary, p.usageLine(c))
	for _, para := range paragraphs(c.About) {
		fmt.Fprintf(w, "\n%s\n", wrap(para, width, ""))
	}
	if subs := visible(c.Subs); len(subs) > 0 {
		fmt.Fprintln(w, "\ncommands:")
		n := 0
		for _, s := range subs {
			n = max(n, len(s.Name))
		}
		for _, s := range subs {
			writeRow(w, "  ", s.Name, s.Summary, n)
		}
		fmt.Fprintf(w, "\n%s help %s COMMAND describes each.\n", p.Name, c.FullName())
	}
	fs, _ := c.FlagSet()
	flags := flagsOf(fs)
	if len(flags) == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	n := 0
	for _, f := range flags {
		n = max(n, len(f.withArg()))
	}
	n = min(n, 24)
	for _, f := range flags {
		u := f.usage
		if f.def != "" {
			u += " (default " + f.def + ")"
		}
		writeRow(w, "  ", f.withArg(), u, n)
	}
}

// synopsis is the command with every flag in brackets, a flag's default
// in place of its value name where it has one: "fastnat bench veth
// [--duration 5s] [--json FILE] ...".
func (p *Program) synopsis(c *Command) []string {
	words := []string{p.Name, c.FullName()}
	if c.Args != "" {
		words = append(words, c.Args)
	}
	fs, _ := c.FlagSet()
	for _, f := range flagsOf(fs) {
		switch {
		case f.arg == "":
			words = append(words, "["+f.display()+"]")
		case f.def != "":
			words = append(words, "["+f.display()+" "+f.def+"]")
		default:
			words = append(words, "["+f.withArg()+"]")
		}
	}
	return words
}

// WriteSynopsis writes every runnable command's synopsis and summary, the
// compact reference a README shows.
func (p *Program) WriteSynopsis(w io.Writer) {
	for _, c := range p.All() {
		if c.Hidden || c.Flags == nil || c.parent != nil && c.parent.Hidden {
			continue
		}
		words := p.synopsis(c)
		lead := len(words[0]) + 1 + len(words[1]) + 1
		fmt.Fprintf(w, "%s %s\n", words[0], wrapWords(words[1:], width-2, strings.Repeat(" ", lead)))
		fmt.Fprintf(w, "    %s\n", wrap(c.Summary, width-4, "    "))
	}
}

// wrapWords joins words with spaces into lines of at most n characters,
// continuation lines prefixed by indent.
func wrapWords(words []string, n int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range words {
		if i > 0 && line+1+len(word) > n {
			b.WriteString("\n" + indent)
			line = len(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}
