package bench

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling thread has used (getrusage
// RUSAGE_THREAD, user and system): what a measurement on a shared
// machine reads beside the wall clock, since the time other processes
// hold the CPU is not in it. The caller locks its goroutine to the
// thread (runtime.LockOSThread) across the two readings.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux ≥ 2.6.26
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
