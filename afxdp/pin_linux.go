package afxdp

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// PinCPU locks the calling goroutine to its OS thread and that thread to
// cpu, for a worker's poll loop. The goroutine keeps the thread until it
// exits.
func PinCPU(cpu int) error {
	if cpu < 0 || cpu >= 1024 {
		return fmt.Errorf("cpu %d: %w", cpu, ErrInvalidOptions)
	}
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	return nil
}
