package main

import "io"

// cmdDemo is "fastnat demo"; issue 7 implements it.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	return notImplemented("demo", 7, stderr)
}
