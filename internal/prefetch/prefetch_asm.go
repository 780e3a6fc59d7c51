//go:build amd64 || arm64

package prefetch

// Line starts loading the cache line holding *p into every cache level.
//
//go:noescape
func Line(p *uint64)

// Line32 is Line for a 32-bit word.
//
//go:noescape
func Line32(p *uint32)
