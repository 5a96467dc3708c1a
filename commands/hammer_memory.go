package commands

import (
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/scenario"
)

// pauseCollections turns the collector off while the runs send (scenario.PauseCollections
// up to hammerMemoryLimit), unless the embedded Redis runs in this process. miniredis
// makes a fresh Lua state for every script call, about 250 MB/s of garbage at the
// default 1000 rps, and with collections off the default run peaked at 850 MB. Hammer
// runs it in a child process (HammerOptions.EmbeddedRedisCommand); where it runs in
// process (tests, callers that set no command) the collector stays on as configured:
// a fixed memory limit with it off would collect without end once the live heap nears
// the limit (docs/hammer.md, "The embedded Redis: memory").
func pauseCollections(conn *redisconn.Conn) (restore func()) {
	if conn != nil && conn.Embedded && !conn.ChildProcess {
		return func() {}
	}
	return scenario.PauseCollections(hammerMemoryLimit)
}
