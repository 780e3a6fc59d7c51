//go:build amd64 || arm64

package afxdp

// prefetchRx starts loading the first 64-byte line of the packets that n
// rx descriptors, from slot start on (wrapping at len(descs), a power of
// two), point at in umem, without waiting for them: one call per burst,
// because an assembly function does not inline.
//
// Why: the kernel copied those packets into the UMEM on the CPU that ran
// the interface's receive (on veth, the sender's CPU), so a worker on
// another CPU misses on every packet's first line; Parse took them one at
// a time, a quarter of a microsecond each here. Prefetched together, the
// misses of a burst overlap. A descriptor's address is the kernel's and
// may be past umem's end only if the kernel is broken: a prefetch never
// faults.
//
//go:noescape
func prefetchRx(umem []byte, descs []desc, start, n uint32)
