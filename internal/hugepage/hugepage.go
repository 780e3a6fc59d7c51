package hugepage

import (
	"errors"
	"fmt"
	"reflect"
)

// Size is the huge page size the allocator aligns to (x86-64 and arm64
// with 4 KiB base pages: 2 MiB).
const Size = 2 << 20

// ErrPointers refuses a type that holds pointers: mapped memory is not
// scanned by the garbage collector.
var ErrPointers = errors.New("hugepage: element type holds pointers")

// Array is n elements of T, mapped or from the heap.
type Array[T any] struct {
	S      []T     // the elements, zeroed
	region *region // nil: from the heap
}

// Alloc returns an array of n zeroed elements of T. It fails only if T
// holds pointers or the kernel refuses the mapping; a refused huge-page
// advice is not an error.
func Alloc[T any](n int) (Array[T], error) {
	typ := reflect.TypeFor[T]()
	if hasPointers(typ) {
		return Array[T]{}, fmt.Errorf("%v: %w", typ, ErrPointers)
	}
	bytes := uint64(n) * uint64(typ.Size())
	if n == 0 || bytes < Size {
		return Array[T]{S: make([]T, n)}, nil
	}
	r, err := mapRegion(int(bytes))
	if err != nil {
		return Array[T]{}, err
	}
	if r == nil {
		return Array[T]{S: make([]T, n)}, nil
	}
	return Array[T]{S: sliceOf[T](r, n), region: r}, nil
}

// Free unmaps a mapped array; the heap's are left to the garbage
// collector. Free of a freed or zero Array does nothing.
func (a *Array[T]) Free() {
	if a.region != nil {
		a.region.free()
	}
	a.S, a.region = nil, nil
}

// Mapped reports whether the array is mapped memory rather than heap.
func (a *Array[T]) Mapped() bool { return a.region != nil }

// Bytes is the memory the array holds: its mapping, or its elements.
func (a *Array[T]) Bytes() int64 {
	if a.region != nil {
		return int64(a.region.size)
	}
	return int64(len(a.S)) * int64(reflect.TypeFor[T]().Size())
}

// Huge reports how many bytes of the array the kernel backs with huge
// pages right now (0 for a heap array or where the kernel does not say).
func (a *Array[T]) Huge() int64 {
	if a.region == nil {
		return 0
	}
	return a.region.huge()
}

// Freer returns a function that unmaps the array, for a cleanup that
// must not hold the array's owner: it captures only the mapping.
func (a *Array[T]) Freer() func() {
	r := a.region
	return func() {
		if r != nil {
			r.free()
		}
	}
}

// hasPointers reports whether a value of type t holds a pointer the
// garbage collector would have to see.
func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return false
	case reflect.Array:
		return t.Len() > 0 && hasPointers(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointers(t.Field(i).Type) {
				return true
			}
		}
		return false
	}
	return true
}
