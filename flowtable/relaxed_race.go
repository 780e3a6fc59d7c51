//go:build race

package flowtable

import "sync/atomic"

// Under the race detector the per-packet path's stores are atomic, so
// that the detector checks the protocol (relaxed.go) instead of flagging
// every store a lock-free reader may race.

func store32(p *uint32, v uint32) { atomic.StoreUint32(p, v) }

func store64(p *uint64, v uint64) { atomic.StoreUint64(p, v) }
