// Command fastnat is the NAT44 dataplane's command-line tool: it runs the
// daemon, validates configuration files, shows and reloads the running
// daemon, runs the benchmark harness and the demo.
//
// Every command is one internal/cli.Command, defined in its own file
// (run.go, check.go, show.go, ...): name, arguments, summary, a paragraph
// about it, and the function that defines its flags and returns what runs
// it. `fastnat help COMMAND`, `fastnat COMMAND -h`, the man page (`fastnat
// man`), the shell completions (`fastnat completion bash|zsh|fish`) and the
// README's synopsis (TestREADMESynopsis) are generated from those
// definitions, so a command or flag added there is documented and
// completed everywhere. A new command goes into program.Commands in
// main.go.
//
// Package main only parses flags and calls packages: the daemon is
// dataplane.Start, the views are package control's. Each command returns
// its exit status, so tests run it through dispatch: 0 success, 1 a
// runtime failure, 2 a usage error or an invalid configuration.
package main
