// Package cli runs a command-line program whose commands are each defined
// once, as a Command: its name, positional arguments, summary, a
// paragraph about it, and a function that defines its flags on a
// flag.FlagSet and returns what runs it. Everything an operator reads or a
// shell completes is generated from those definitions, so a new command or
// flag is covered the moment it is defined:
//
//   - `PROG help COMMAND` and `PROG COMMAND -h` print one help format for
//     every command: usage, about, and every flag with its value name and
//     default (exit 0);
//   - Program.WriteUsage lists the commands; WriteSynopsis is the compact
//     form a README shows (every flag, in brackets, with its default);
//   - WriteMan writes a man page (roff, section 1);
//   - Complete answers a shell's completion request and
//     CompletionScript is the small bash, zsh or fish script that asks it
//     (`PROG __complete WORDS...`), so completions never go stale.
//
// Flags are the standard library's, so both -name and --name work; help
// shows one-letter flags with one dash and the others with two. A flag
// value that is out of range is refused while parsing, with the flag's
// name and what is allowed (IntVar, DurationVar, FloatVar, IntListVar,
// StringListVar, ChoiceVar); the command then exits 2 with its usage line.
// Flags may follow positional arguments ("show sessions --json").
//
// Why not a CLI library: cobra would bring completions and man pages, but
// with pflag's syntax (-abc as three flags, long flags only with two
// dashes), which would break every documented -flag invocation, and three
// dependencies; what fastnat needs on top of the flag package is this
// small package.
package cli
