package scenario

import (
	"runtime/debug"
	"testing"
)

func TestPauseCollectionsNestsAndRestores(t *testing.T) {
	gcPercent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }
	before, limit := gcPercent(), debug.SetMemoryLimit(-1)
	outer := PauseCollections(1 << 30)
	inner := PauseCollections(1 << 30)
	if gcPercent() != -1 || debug.SetMemoryLimit(-1) > 1<<30 {
		t.Fatalf("while paused: GOGC %d, memory limit %d", gcPercent(), debug.SetMemoryLimit(-1))
	}
	outer() // another call is still under way: still paused
	if gcPercent() != -1 {
		t.Fatalf("one of two calls ended and GOGC is %d", gcPercent())
	}
	inner()
	if gcPercent() != before || debug.SetMemoryLimit(-1) != limit {
		t.Fatalf("after: GOGC %d, memory limit %d; want %d, %d", gcPercent(), debug.SetMemoryLimit(-1), before, limit)
	}
}
