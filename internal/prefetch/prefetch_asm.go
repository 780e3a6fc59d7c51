//go:build amd64 || arm64

package prefetch

import "sync/atomic"

// Line starts loading the cache line holding *p into every cache level.
//
//go:noescape
func Line(p *uint64)

// Word is Line for an atomic word (an index bucket's control word).
//
//go:noescape
func Word(p *atomic.Uint64)

// Slot starts loading the line holding *hot and the one or two lines the
// 56 bytes from cold span: a flow table slot's hot line and its cold
// entry, which may straddle a line boundary, in one call.
//
//go:noescape
func Slot(hot, cold *uint64)
