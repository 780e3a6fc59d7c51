package main

import "io"

// cmdReload is "fastnat reload"; issue 7 implements it.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	return notImplemented("reload", 7, stderr)
}
