//go:build fastnat_stages && (amd64 || arm64)

package stages

// ticks reads the CPU's cycle counter.
func ticks() uint64
