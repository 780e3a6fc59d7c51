package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit statuses of a Program: commands return their own, cli uses these
// for help and usage errors.
const (
	ExitOK    = 0
	ExitUsage = 2
)

// Run runs a command with its positional arguments (flags are parsed
// already) and returns the exit status.
type Run func(args []string, stdout, stderr io.Writer) int

// Command is one command, defined once; see the package documentation.
type Command struct {
	Name string // one word: "run"; a subcommand's name is its own word
	// Args is the synopsis of the positional arguments, "" for none:
	// "stats|sessions|mappings", "[FILE]".
	Args    string
	Summary string // one line, no final period
	// About is what help and the man page print below the usage:
	// paragraphs separated by blank lines; may be empty.
	About string
	// MinArgs and MaxArgs bound the number of positional arguments
	// (MaxArgs -1: no bound); the zero values refuse any.
	MinArgs, MaxArgs int
	// Words are the completions of the first positional argument.
	Words []string
	// Hidden commands run but are not listed (the completion hook).
	Hidden bool
	// RawArgs hands every argument to the command unparsed, flags
	// included (the completion hook gets a command line to complete).
	RawArgs bool
	// Flags defines the command's flags on fs and returns the function
	// that runs it once fs is parsed; nil for a command that only groups
	// Subs.
	Flags func(fs *flag.FlagSet) Run
	// Subs are the subcommands: "bench pipeline".
	Subs []*Command

	parent *Command
}

// Program is a command-line program: a list of commands.
type Program struct {
	Name     string // the executable: "fastnat"
	Summary  string // one line
	Commands []*Command
	// Footer is printed after the command list and in the man page's
	// EXIT STATUS section.
	Footer string
}

// FullName is the command's name with its parents': "bench veth".
func (c *Command) FullName() string {
	if c.parent != nil {
		return c.parent.FullName() + " " + c.Name
	}
	return c.Name
}

// link sets every command's parent.
func (p *Program) link() {
	var walk func(parent *Command, cs []*Command)
	walk = func(parent *Command, cs []*Command) {
		for _, c := range cs {
			c.parent = parent
			walk(c, c.Subs)
		}
	}
	walk(nil, p.Commands)
}

// Find returns the command the words name ("bench", "veth"), or nil.
func (p *Program) Find(words ...string) *Command {
	p.link()
	cs := p.Commands
	var c *Command
	for _, w := range words {
		c = nil
		for _, x := range cs {
			if x.Name == w {
				c = x
			}
		}
		if c == nil {
			return nil
		}
		cs = c.Subs
	}
	return c
}

// All lists every command, subcommands after their parent, in order.
func (p *Program) All() []*Command {
	p.link()
	var out []*Command
	var walk func(cs []*Command)
	walk = func(cs []*Command) {
		for _, c := range cs {
			out = append(out, c)
			walk(c.Subs)
		}
	}
	walk(p.Commands)
	return out
}

// FlagSet returns a new flag set with c's flags defined and the function
// that runs c; Run is nil for a command that only groups subcommands.
func (c *Command) FlagSet() (*flag.FlagSet, Run) {
	fs := flag.NewFlagSet(c.FullName(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var run Run
	if c.Flags != nil {
		run = c.Flags(fs)
	}
	return fs, run
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// Exec runs the command args name and returns the exit status: help for
// -h (0), a usage error for an unknown command, a bad flag or a missing
// subcommand (2), else the command's own.
func (p *Program) Exec(args []string, stdout, stderr io.Writer) int {
	p.link()
	if len(args) == 0 {
		p.WriteUsage(stderr)
		return ExitUsage
	}
	if isHelp(args[0]) {
		p.WriteUsage(stdout)
		return ExitOK
	}
	cs := p.Commands
	var c *Command
	for {
		var next *Command
		for _, x := range cs {
			if x.Name == args[0] {
				next = x
			}
		}
		if next == nil {
			if c == nil {
				fmt.Fprintf(stderr, "%s: unknown command %q\n\n", p.Name, args[0])
				p.WriteUsage(stderr)
				return ExitUsage
			}
			return p.UsageError(stderr, c, "unknown subcommand %q", args[0])
		}
		c, args = next, args[1:]
		if len(c.Subs) == 0 {
			break
		}
		if len(args) == 0 || isHelp(args[0]) {
			if len(args) > 0 {
				p.WriteHelp(stdout, c)
				return ExitOK
			}
			return p.UsageError(stderr, c, "missing subcommand")
		}
		cs = c.Subs
	}
	fs, run := c.FlagSet()
	if c.RawArgs {
		return run(args, stdout, stderr)
	}
	pos, err := ParseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		p.WriteHelp(stdout, c)
		return ExitOK
	}
	if err != nil {
		return p.UsageError(stderr, c, "%v", err)
	}
	switch {
	case len(pos) < c.MinArgs:
		return p.UsageError(stderr, c, "missing argument")
	case c.MaxArgs >= 0 && len(pos) > c.MaxArgs:
		return p.UsageError(stderr, c, "unexpected argument %q", pos[c.MaxArgs])
	}
	return run(pos, stdout, stderr)
}

// UsageError prints "PROG COMMAND: message", the command's usage line and
// where its help is, and returns ExitUsage.
func (p *Program) UsageError(w io.Writer, c *Command, format string, args ...any) int {
	fmt.Fprintf(w, "%s %s: %s\n", p.Name, c.FullName(), fmt.Sprintf(format, args...))
	fmt.Fprintf(w, "usage: %s\n", p.usageLine(c))
	if len(c.Subs) > 0 {
		fmt.Fprintf(w, "(%s help %s lists them)\n", p.Name, c.FullName())
	} else {
		fmt.Fprintf(w, "(%s help %s describes every flag)\n", p.Name, c.FullName())
	}
	return ExitUsage
}

// usageLine is "PROG NAME ARGS [flags]".
func (p *Program) usageLine(c *Command) string {
	parts := []string{p.Name, c.FullName()}
	if len(c.Subs) > 0 {
		names := make([]string, 0, len(c.Subs))
		for _, s := range c.Subs {
			if !s.Hidden {
				names = append(names, s.Name)
			}
		}
		parts = append(parts, strings.Join(names, "|"), "...")
	}
	if c.Args != "" {
		parts = append(parts, c.Args)
	}
	if fs, _ := c.FlagSet(); hasFlags(fs) {
		parts = append(parts, "[flags]")
	}
	return strings.Join(parts, " ")
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// ParseInterleaved parses fs over args, allowing flags after positional
// arguments ("show sessions --app ftp"), and returns the positionals.
// Everything after "--" is positional.
func ParseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
