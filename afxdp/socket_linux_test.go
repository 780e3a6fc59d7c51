package afxdp

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestDescLayout pins desc to the kernel's struct xdp_desc.
func TestDescLayout(t *testing.T) {
	var d desc
	var k unix.XDPDesc
	if unsafe.Sizeof(d) != unsafe.Sizeof(k) || unsafe.Offsetof(d.Len) != unsafe.Offsetof(k.Len) ||
		unsafe.Offsetof(d.Options) != unsafe.Offsetof(k.Options) {
		t.Fatalf("desc layout differs from struct xdp_desc")
	}
}
