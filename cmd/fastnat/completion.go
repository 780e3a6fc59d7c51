package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/fastnat/fastnat/internal/cli"
)

var completionCommand = &cli.Command{
	Name: "completion", Args: "bash|zsh|fish", MinArgs: 1, MaxArgs: 1, Words: cli.Shells,
	Summary: "print the shell completion script for bash, zsh or fish",
	About: "The script asks fastnat itself for the candidates (commands, subcommands, flags, " +
		"a flag's values, file names), so it always matches the installed binary. Install it with " +
		"`fastnat completion bash > /usr/share/bash-completion/completions/fastnat`, " +
		"`fastnat completion zsh > /usr/share/zsh/vendor-completions/_fastnat` or " +
		"`fastnat completion fish > /usr/share/fish/vendor_completions.d/fastnat.fish`; the Debian package does.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		return func(args []string, stdout, stderr io.Writer) int {
			s, err := program.CompletionScript(args[0])
			if err != nil {
				return usageError(stderr, "completion", "%v", err)
			}
			fmt.Fprint(stdout, s)
			return exitOK
		}
	},
}

// completeCommand is the hook the completion scripts call.
var completeCommand = &cli.Command{
	Name: cli.CompleteCommand, Hidden: true, RawArgs: true,
	Summary: "print the completions of a command line (for the completion scripts)",
	Flags: func(fs *flag.FlagSet) cli.Run {
		return func(args []string, stdout, stderr io.Writer) int {
			for _, c := range program.Complete(args) {
				fmt.Fprintln(stdout, c)
			}
			return exitOK
		}
	},
}

var manCommand = &cli.Command{
	Name:    "man",
	Summary: "print fastnat's man page (roff; man -l - reads it)",
	About:   "`fastnat man | man -l -` shows it; the Debian package installs it as fastnat(1).",
	Flags: func(fs *flag.FlagSet) cli.Run {
		return func(args []string, stdout, stderr io.Writer) int {
			program.WriteMan(stdout, manPage())
			return exitOK
		}
	},
}

// manPage is the man page's text beyond the commands.
func manPage() cli.ManPage {
	v := buildVersion()
	return cli.ManPage{
		Version: v.Version,
		Date:    v.Date(),
		Description: "fastnat translates IPv4 addresses like a firewall's nat outbound (source NAT from pools of " +
			"public addresses) and nat server (static destination NAT), with an FTP ALG that recognises FTP on any " +
			"port a [[port_mapping]] names. Its dataplane runs one poll-mode worker per NIC queue on AF_XDP sockets, " +
			"with one lock-free flow table shared by all workers.\n\n" +
			"`fastnat run` is the daemon; `fastnat check` validates a configuration file and prints the effective " +
			"rules; `fastnat show` and `fastnat reload` talk to the running daemon over its control socket; " +
			"`fastnat bench` and `fastnat demo` measure and demonstrate it on this machine.\n\n" +
			"Flags take one dash or two (-c, --json); a flag's value may follow it or an equals sign.",
		Files: "/etc/fastnat/fastnat.toml: the configuration file `run`, `doctor`, `show`, `clear`, `reload`, `events`, `lookup` and `explain` read by default (`-c` names another).\n\n" +
			"/run/fastnat/fastnat.sock: the control socket of the packaged configuration ([control] socket).\n\n" +
			"/usr/share/doc/fastnat/examples/: example configurations.",
		SeeAlso: "ethtool(8), ip(8), systemctl(1), nft(8)",
	}
}
