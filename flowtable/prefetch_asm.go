//go:build amd64 || arm64

package flowtable

// prefetchBuckets and prefetchHots start loading the 64-byte lines
// b[idx[i]] (h[idx[i]]) into the caches without waiting for them (one
// call per burst: an assembly function does not inline, so the loop is
// in it). Every index must be below the slice's length: a prefetch never
// faults, but the line would be useless.
//
//go:noescape
func prefetchBuckets(b []bucket, idx []uint32)

//go:noescape
func prefetchHots(h []hot, idx []uint32)

//go:noescape
func prefetchLines(base []byte, idx []uint32)
