package prefetch

import (
	"sync/atomic"
	"testing"
)

// TestLineChangesNothing: a prefetch (Line, Word, Slot) leaves memory as
// it was, and one of a word of the heap, of the stack and past a slice's
// last element (still inside its array) does not fault.
func TestLineChangesNothing(t *testing.T) {
	a := make([]uint64, 64)
	for i := range a {
		a[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	var local uint64 = 42
	Line(&local)
	for i := range a {
		Line(&a[i])
	}
	Line(&a[:8:64][7])
	var w atomic.Uint64
	Word(&w)
	Slot(&a[0], &a[56]) // the cold entry's 56 bytes: a[56:63]
	for i := range a {
		if a[i] != uint64(i)*0x9e3779b97f4a7c15 {
			t.Fatalf("word %d changed", i)
		}
	}
	if local != 42 || w.Load() != 0 {
		t.Fatal("stack word changed")
	}
}

// TestLineAllocates nothing: it is called on the per-session path.
func TestLineAllocatesNothing(t *testing.T) {
	a := make([]uint64, 8)
	if n := testing.AllocsPerRun(100, func() { Line(&a[3]) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
