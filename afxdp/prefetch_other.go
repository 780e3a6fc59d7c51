//go:build !amd64 && !arm64

package afxdp

// prefetchRx does nothing where fastnat has no prefetch instruction: the
// worker then waits for each packet's first line in turn.
func prefetchRx(umem []byte, descs []desc, start, n uint32) {}
