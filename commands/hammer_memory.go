package commands

import "github.com/ratelab/ratelab/internal/redisconn"

// embeddedMemoryLimit is the Go memory limit at which a run on the embedded Redis is
// collected. The embedded Redis (miniredis) runs in hammer's own heap and makes a
// fresh Lua state for every script call, about 250 MB/s of garbage at the default
// 1000 rps: with collections off up to hammerMemoryLimit, the default run peaked at
// 850 MB resident. At this limit it collects two or three times a second, its live
// heap is 20–40 MB, it peaks near 125 MB, and its late sends measured no worse
// (docs/hammer.md, "The embedded Redis's memory").
const embeddedMemoryLimit = 128 << 20

// heapCeiling is the memory at which a run's paused collector still collects:
// hammerMemoryLimit, or embeddedMemoryLimit when the embedded Redis shares the heap
// (it runs in a child process of its own unless HammerOptions.EmbeddedRedisCommand is empty).
func heapCeiling(conn *redisconn.Conn) int64 {
	if conn != nil && conn.Embedded && !conn.ChildProcess {
		return embeddedMemoryLimit
	}
	return hammerMemoryLimit
}
