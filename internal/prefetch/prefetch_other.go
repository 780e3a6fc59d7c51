//go:build !amd64 && !arm64

package prefetch

import "sync/atomic"

// Line does nothing on this architecture.
func Line(p *uint64) {}

// Word does nothing on this architecture.
func Word(p *atomic.Uint64) {}

// Slot does nothing on this architecture.
func Slot(hot, cold *uint64) {}
