package commands

import (
	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
)

// maxChecksInFlight is a node's bound on checks in flight. Unbatched, each check holds
// a pool connection, so the bound is the pool; batched, checks queue in the limiter
// and share at most algorithms.DefaultBatchInFlight connections, so a pool's worth of
// batches may be in flight.
func maxChecksInFlight(conn *redisconn.Conn, batch bool) int {
	if batch {
		return conn.PoolSize() * algorithms.DefaultBatchSize
	}
	return conn.PoolSize()
}

// nodesLimiterStats sums what the nodes' Redis limiters of algorithm name did so far.
func nodesLimiterStats(nodes []*productapi.Node, name string) algorithms.Stats {
	var s algorithms.Stats
	for _, n := range nodes {
		t := n.LimiterStats()[name]
		s.Local, s.RedisCalls, s.RoundTrips = s.Local+t.Local, s.RedisCalls+t.RedisCalls, s.RoundTrips+t.RoundTrips
	}
	return s
}

// limiterDelta is what the limiters did between base and now.
func limiterDelta(now, base algorithms.Stats) algorithms.Stats {
	return algorithms.Stats{Local: now.Local - base.Local, RedisCalls: now.RedisCalls - base.RedisCalls, RoundTrips: now.RoundTrips - base.RoundTrips}
}

// limiterCalls is the report's view of a run's limiter stats: nil when no Redis
// limiter ran in process (--store local, --target).
func limiterCalls(r hammerRun) *report.LimiterCalls {
	s := r.limiter
	if s.RedisCalls == 0 && s.Local == 0 {
		return nil
	}
	requests := r.res.Allowed + r.res.Denied
	// Every admitted request took one call; the rest of the calls were the denied ones'.
	deniedCalls := max(0, s.RedisCalls-r.res.Allowed)
	return &report.LimiterCalls{
		LocalAnswers: s.Local, RedisCalls: s.RedisCalls, RoundTrips: s.RoundTrips,
		RedisCallsPerRequest: ratio(s.RedisCalls, requests),
		RedisCallsPerDenied:  ratio(deniedCalls, r.res.Denied),
	}
}
