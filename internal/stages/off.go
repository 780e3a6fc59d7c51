//go:build !fastnat_stages

package stages

// On reports whether the profile is compiled in (build tag fastnat_stages).
const On = false

// Mark starts stage s; without the build tag it does nothing.
func Mark(Stage) {}

// EndRound closes a round (one poll); without the build tag it does
// nothing.
func EndRound(packets int) {}
