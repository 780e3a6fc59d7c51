//go:build fastnat_stages && !amd64 && !arm64

package stages

import "time"

var epoch = time.Now()

// ticks reads the monotonic clock in nanoseconds.
func ticks() uint64 { return uint64(time.Since(epoch)) }
