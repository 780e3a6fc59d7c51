//go:build !amd64 && !arm64

package prefetch

// Line does nothing on this architecture.
func Line(p *uint64) {}

// Line32 does nothing on this architecture.
func Line32(p *uint32) {}
