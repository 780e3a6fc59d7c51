// Package prefetch starts loading one cache line without waiting for it:
// the slow path's way of overlapping the misses of a session creation
// (the endpoint map slots, the new slot's lines, the reply key's index
// bucket), which would otherwise each stall the creation in turn. Line
// is a PREFETCHT0 on amd64 and a PRFM PLDL1KEEP on arm64 (small assembly
// stubs: Go has no prefetch intrinsic), and does nothing elsewhere. A
// prefetch never faults and is not a memory access in Go's memory model,
// so it may name a word another goroutine writes.
package prefetch
