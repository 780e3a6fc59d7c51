package main

import "io"

// cmdShow is "fastnat show"; issue 7 implements it.
func cmdShow(args []string, stdout, stderr io.Writer) int {
	return notImplemented("show", 7, stderr)
}
