package main

import "io"

// cmdRun is "fastnat run"; issue 6 implements it.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	return notImplemented("run", 6, stderr)
}
