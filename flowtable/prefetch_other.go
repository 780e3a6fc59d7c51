//go:build !amd64 && !arm64

package flowtable

import "sync/atomic"

// The portable fallback loads the lines: a load holds up retirement where
// a prefetch would not, but the misses of the loop still overlap.

func prefetchBuckets(b []bucket, idx []uint32) {
	for _, i := range idx {
		b[i].ctrl[0].Load()
	}
}

func prefetchHots(h []hot, idx []uint32) {
	for _, i := range idx {
		atomic.LoadUint64(&h[i].meta)
	}
}
