package hugepage

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

type line struct {
	a [7]uint64
	b atomic.Uint64
}

func TestAllocLarge(t *testing.T) {
	const n = 3 * Size / 64 // 6 MiB of 64-byte lines
	a, err := Alloc[line](n)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Free()
	if len(a.S) != n {
		t.Fatalf("len %d, want %d", len(a.S), n)
	}
	if runtime.GOOS == "linux" && !a.Mapped() {
		t.Fatal("a 6 MiB array should be mapped on Linux")
	}
	for i := range a.S {
		if a.S[i].a[3] != 0 {
			t.Fatalf("element %d not zero", i)
		}
		a.S[i].a[3] = uint64(i)
		a.S[i].b.Store(uint64(i))
	}
	for i := range a.S {
		if a.S[i].a[3] != uint64(i) || a.S[i].b.Load() != uint64(i) {
			t.Fatalf("element %d lost its value", i)
		}
	}
	if a.Bytes() < int64(n*64) {
		t.Fatalf("Bytes %d below the elements' %d", a.Bytes(), n*64)
	}
	// Huge pages are the kernel's choice; Huge must only be sane.
	if h := a.Huge(); h < 0 || h > a.Bytes() {
		t.Fatalf("Huge %d not within 0..%d", h, a.Bytes())
	}
	t.Logf("%d of %d bytes on huge pages", a.Huge(), a.Bytes())
	a.Free()
	a.Free() // twice is harmless
	if a.S != nil || a.Huge() != 0 {
		t.Fatal("Free left the slice")
	}
}

func TestAllocSmallIsHeap(t *testing.T) {
	a, err := Alloc[line](100)
	if err != nil {
		t.Fatal(err)
	}
	if a.Mapped() || len(a.S) != 100 || a.Bytes() != 6400 || a.Huge() != 0 {
		t.Fatalf("small array: mapped %v len %d bytes %d huge %d", a.Mapped(), len(a.S), a.Bytes(), a.Huge())
	}
	a.Free()
}

func TestAllocRefusesPointers(t *testing.T) {
	type bad struct {
		n int
		p *int
	}
	for name, f := range map[string]func() error{
		"struct": func() error { _, err := Alloc[bad](1 << 20); return err },
		"slice":  func() error { _, err := Alloc[[]byte](1 << 20); return err },
		"string": func() error { _, err := Alloc[[2]string](1 << 20); return err },
	} {
		if err := f(); !errors.Is(err, ErrPointers) {
			t.Errorf("%s: err %v, want ErrPointers", name, err)
		}
	}
}

func TestFreerUnmaps(t *testing.T) {
	a, err := Alloc[line](Size / 32)
	if err != nil {
		t.Fatal(err)
	}
	f := a.Freer()
	f()
	f()
	a.S = nil // the slice dangles now; a.Free must not unmap twice
	a.Free()
}
