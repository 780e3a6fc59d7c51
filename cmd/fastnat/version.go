package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/fastnat/fastnat/internal/cli"
	"github.com/fastnat/fastnat/internal/version"
)

var versionCommand = &cli.Command{
	Name:    "version",
	Summary: "print the version, commit and Go toolchain of this build",
	About: "A release is stamped at link time (-ldflags \"-X github.com/fastnat/fastnat/internal/version.Version=v1.2.3\", " +
		"as scripts/package-deb does); any other build prints what Go recorded: the version from the " +
		"repository's tag or a pseudo-version with the commit, and the commit's date.",
	Flags: func(fs *flag.FlagSet) cli.Run {
		return func(args []string, stdout, stderr io.Writer) int {
			fmt.Fprintln(stdout, "fastnat", version.Get())
			return exitOK
		}
	},
}

// buildVersion is the build's version information.
func buildVersion() version.Info { return version.Get() }
