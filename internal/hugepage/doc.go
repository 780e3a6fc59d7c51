// Package hugepage allocates large pointer-free arrays outside the Go
// heap, backed by transparent huge pages where the kernel has them, for
// the flow table: a random session lookup in a table of a gigabyte costs
// a TLB miss per cache line with 4 KiB pages and almost none with 2 MiB
// pages, and the garbage collector never needs to see memory that holds
// no pointers.
//
// Alloc maps anonymous memory with mmap, aligned to 2 MiB, and asks for
// huge pages with madvise(MADV_HUGEPAGE), which works whether the
// system's THP setting is "always" or "madvise"; with "never", or on a
// system that refuses the advice, the memory is ordinary pages and
// everything else is the same. The mapping is then populated
// (madvise(MADV_POPULATE_WRITE), Linux 5.14 and later), as DPDK has its
// memory at hand before the first packet: the owner's first writes do
// not each fault in and zero a page (for the flow table, its first
// sessions' creation), its allocation does. Where the kernel lacks the
// advice, pages fault in on first touch as before; that is not an error.
// (A table larger than the memory at hand meets that now, at its
// allocation, rather than when it fills.) Arrays smaller than one huge
// page, and
// every array on systems other than Linux, come from the Go heap
// (make), where Free does nothing. Huge reports how much of an array the
// kernel actually backs with huge pages (/proc/self/smaps,
// AnonHugePages), which the benchmarks print.
//
// Lifetime: an Array's memory is the caller's until Free, which unmaps
// it; after Free every slice of it is dangling and touching it faults.
// The owner (flowtable.Table) frees its arrays in Close, once nothing
// reads them any more, and registers a cleanup so that a table dropped
// without Close is unmapped when the garbage collector finds it
// unreachable; nat.NAT's endpoint maps are unmapped by such a cleanup
// alone.
//
// This package is, with afxdp, where fastnat uses unsafe and
// golang.org/x/sys/unix (STYLE: only afxdp does): turning mapped bytes
// into a []T needs unsafe.Slice, and mmap, madvise and munmap need unix.
// It is kept to that one job so that the flow table itself stays free of
// both; T must hold no pointers, which Alloc checks, because the garbage
// collector does not scan mapped memory.
package hugepage
