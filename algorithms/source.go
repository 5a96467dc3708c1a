package algorithms

// ScriptSource is the exact Lua text the named algorithm sends to Redis (the shared
// prelude followed by the algorithm's script), or "" for an unknown name. Its SHA-1 is
// the one EVALSHA uses, so tools outside Go (redis-cli SCRIPT LOAD, redis-benchmark
// EVALSHA) can run the very script ratelab runs.
func ScriptSource(name string) string {
	body, ok := map[string]string{
		FixedWindow:    fixedWindowLua,
		SlidingLog:     slidingLogLua,
		SlidingCounter: slidingCounterLua,
		TokenBucket:    tokenBucketLua,
		LeakyBucket:    leakyBucketLua,
		GCRA:           gcraLua,
	}[name]
	if !ok {
		return ""
	}
	return prelude + body
}
