package scenario

import (
	"runtime/debug"
	"sync"
)

// collectionsPaused counts the PauseCollections under way, so that runs at once
// (tests) pause the collector once and the last one restores it.
var collectionsPaused struct {
	sync.Mutex
	n              int
	percent, limit int64
}

// PauseCollections turns the garbage collector off, with heapCeiling (or a lower
// GOMEMLIMIT) as the heap at which it still collects, and returns what restores the
// settings before it. The generator's own collections delay sends on a small machine
// (stopping the world waits for every processor, and marking takes one of two CPUs),
// so a run sends with none, and collects before it instead.
func PauseCollections(heapCeiling int64) (restore func()) {
	p := &collectionsPaused
	p.Lock()
	defer p.Unlock()
	if p.n == 0 {
		p.percent = int64(debug.SetGCPercent(-1))
		p.limit = debug.SetMemoryLimit(min(debug.SetMemoryLimit(-1), heapCeiling))
	}
	p.n++
	return func() {
		p.Lock()
		defer p.Unlock()
		if p.n--; p.n == 0 {
			debug.SetGCPercent(int(p.percent))
			debug.SetMemoryLimit(p.limit)
		}
	}
}
