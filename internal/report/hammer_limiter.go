package report

import "strconv"

// LimiterCalls is what the in-process nodes' Redis limiters did over one run: the
// checks their deny caches answered, the script calls they sent to Redis and, when
// batching, the round trips those took.
type LimiterCalls struct {
	LocalAnswers int64 `json:"local_answers"`
	RedisCalls   int64 `json:"redis_calls"`
	// RoundTrips is 0 without batching (each call is its own round trip).
	RoundTrips int64 `json:"round_trips"`
	// RedisCallsPerRequest is RedisCalls over the requests decided (allowed + denied).
	RedisCallsPerRequest float64 `json:"redis_calls_per_request"`
	// RedisCallsPerDenied is the calls beyond one per admitted request, over the
	// denied requests: what a denial cost in calls to Redis.
	RedisCallsPerDenied float64 `json:"redis_calls_per_denied"`
}

// limiterGrid is each algorithm's limiter calls; nil when no run counted any.
func limiterGrid(h *Hammer) *grid {
	g := &grid{headers: []string{"algorithm", "answered locally", "Redis calls", "round trips", "calls/request", "calls/denied"}, firstNumeric: 1}
	for _, a := range h.Algorithms {
		l := a.Limiter
		if l == nil {
			continue
		}
		trips := "-"
		if l.RoundTrips > 0 {
			trips = count(l.RoundTrips)
		}
		g.rows = append(g.rows, []string{a.Label(), count(l.LocalAnswers), count(l.RedisCalls), trips,
			strconv.FormatFloat(l.RedisCallsPerRequest, 'f', 3, 64), strconv.FormatFloat(l.RedisCallsPerDenied, 'f', 3, 64)})
	}
	if len(g.rows) == 0 {
		return nil
	}
	return g
}
