package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fastnat/fastnat/internal/cli"
)

// program is fastnat's command line: every command is one cli.Command,
// defined in its own file; help, the man page, the completions and the
// README's synopsis are generated from these definitions.
var program = &cli.Program{
	Name:    "fastnat",
	Summary: "a NAT44 dataplane on AF_XDP with an FTP ALG driven by port mappings",
	Footer:  "Exit status: 0 success, 1 failure, 2 a usage error or an invalid configuration.",
}

// init lists the commands; the list refers to program (help does), so it
// cannot be program's initializer.
func init() {
	program.Commands = []*cli.Command{
		runCommand, checkCommand, doctorCommand, showCommand, clearCommand, reloadCommand, eventsCommand, lookupCommand, explainCommand,
		benchCommand, demoCommand, versionCommand, helpCommand,
		completionCommand, manCommand, completeCommand,
	}
	for _, c := range program.Commands {
		if !c.Hidden && c != helpCommand {
			helpCommand.Words = append(helpCommand.Words, c.Name)
		}
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitOK      = cli.ExitOK
	exitFailure = 1
	exitUsage   = cli.ExitUsage // bad arguments or an invalid configuration
)

// defaultConfig is the configuration file of the daemon and the clients.
const defaultConfig = "/etc/fastnat/fastnat.toml"

// dispatch runs the command args name and returns the exit status.
func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-version" || args[0] == "--version") {
		args = append([]string{"version"}, args[1:]...)
	}
	return program.Exec(args, stdout, stderr)
}

// usageError reports a usage error of the command name ("show", "bench
// veth") with its usage line and returns exitUsage.
func usageError(stderr io.Writer, name string, format string, args ...any) int {
	return program.UsageError(stderr, program.Find(strings.Fields(name)...), format, args...)
}

var helpCommand = &cli.Command{
	Name: "help", Args: "[COMMAND [SUBCOMMAND]]", MaxArgs: 2,
	Summary: "print the list of commands, or a command's help with every flag and its default",
	Flags: func(fs *flag.FlagSet) cli.Run {
		return func(args []string, stdout, stderr io.Writer) int {
			if len(args) == 0 {
				program.WriteUsage(stdout)
				return exitOK
			}
			c := program.Find(args...)
			if c == nil {
				fmt.Fprintf(stderr, "fastnat help: unknown command %q\n", strings.Join(args, " "))
				return exitUsage
			}
			program.WriteHelp(stdout, c)
			return exitOK
		}
	},
}

// joinInts formats a list of small integers as "0,1,2".
func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
