package hugepage

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// region is one mapping: the 2 MiB-aligned part of a larger anonymous
// mapping (the rest is unmapped at once), so that every huge page of it
// can be backed.
type region struct {
	mu   sync.Mutex
	mem  []byte // nil once freed
	size int
}

// mapRegion maps size bytes (rounded up to Size) aligned to Size and
// advises huge pages.
func mapRegion(size int) (*region, error) {
	size = (size + Size - 1) &^ (Size - 1)
	raw, err := unix.Mmap(-1, 0, size+Size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("hugepage: mmap %d bytes: %w", size, err)
	}
	base := uintptr(unsafe.Pointer(&raw[0]))
	skip := int((Size - base%Size) % Size)
	// Return the unaligned head and the tail beyond size to the kernel.
	if skip > 0 {
		unix.Munmap(raw[:skip])
	}
	if tail := raw[skip+size:]; len(tail) > 0 {
		unix.Munmap(tail)
	}
	mem := unsafe.Slice(&raw[skip], size)
	// EINVAL: THP is compiled out or "never"; ordinary pages serve.
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	// Populate now (see the package doc). EINVAL, a kernel before 5.14:
	// pages fault in on first touch, as without the advice.
	_ = unix.Madvise(mem, unix.MADV_POPULATE_WRITE)
	return &region{mem: mem, size: size}, nil
}

func sliceOf[T any](r *region, n int) []T {
	return unsafe.Slice((*T)(unsafe.Pointer(&r.mem[0])), n)
}

func (r *region) free() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// huge sums AnonHugePages over the smaps entries of the region's
// addresses.
func (r *region) huge() int64 {
	r.mu.Lock()
	if r.mem == nil {
		r.mu.Unlock()
		return 0
	}
	lo := uint64(uintptr(unsafe.Pointer(&r.mem[0])))
	hi := lo + uint64(r.size)
	r.mu.Unlock()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if a, b, ok := vmaRange(line); ok {
			in = a < hi && b > lo
			continue
		}
		if in && bytes.HasPrefix(line, []byte("AnonHugePages:")) {
			f := bytes.Fields(line[len("AnonHugePages:"):])
			if len(f) > 0 {
				if kb, err := strconv.ParseInt(string(f[0]), 10, 64); err == nil {
					total += kb << 10
				}
			}
		}
	}
	return total
}

// vmaRange parses the "start-end perms ..." header of an smaps entry.
func vmaRange(line []byte) (lo, hi uint64, ok bool) {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return 0, 0, false
	}
	a, b, found := bytes.Cut(line[:sp], []byte("-"))
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseUint(string(a), 16, 64)
	hi, err2 := strconv.ParseUint(string(b), 16, 64)
	return lo, hi, err1 == nil && err2 == nil
}
