// Command fastnat is the NAT44 dataplane's command-line tool: it runs the
// daemon, validates configuration files, shows the running state, runs the
// benchmark harness and the demo.
//
// Usage:
//
//	fastnat run -c FILE          run the dataplane (root)
//	fastnat check -c FILE        validate FILE and print the effective rules
//	fastnat show stats|sessions|expectations|mappings [--json]
//	fastnat bench ...            benchmark harness
//	fastnat demo                 three-namespace FTP demo on this machine
//	fastnat reload               make the running daemon re-read its file
//	fastnat version | help
//
// main.go only dispatches: each subcommand lives in its own file
// (check.go, run.go, ...) as a function from arguments and output streams
// to an exit status, so that tests call it directly. Exit status 0 means
// success, 1 a runtime failure, 2 a usage or configuration error.
package main
