package main

import "io"

// cmdBench is "fastnat bench"; issue 7 implements it.
func cmdBench(args []string, stdout, stderr io.Writer) int {
	return notImplemented("bench", 7, stderr)
}
