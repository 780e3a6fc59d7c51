package afxdp

import (
	"errors"
	"testing"
)

// TestDeviceXDPFeatures: the kernel reports veth as a native-XDP driver
// without zero copy, and a worker on it runs in copy mode.
func TestDeviceXDPFeatures(t *testing.T) {
	pp := newPortPair(t, ModeNative)
	var f XDPFeatures
	var err error
	pp.ns.do(t, func() error { f, err = DeviceXDPFeatures("x0"); return nil })
	if errors.Is(err, ErrNoFeatures) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if f&XDPBasic == 0 || f&XDPRedirect == 0 || f&XDPZeroCopy != 0 {
		t.Errorf("veth features %#x: want basic and redirect, no zero copy", uint64(f))
	}
	pp.ns.do(t, func() error { _, err = DeviceXDPFeatures("nope0"); return nil })
	if !errors.Is(err, ErrNoInterface) {
		t.Errorf("missing interface: %v", err)
	}
	if pp.wrx.ZeroCopy() || pp.wtx.ZeroCopy() {
		t.Error("a worker on veth reports zero copy")
	}
}
