package algorithms

import "time"

// A combined check's deny cache (WithDenyCache on NewMultiRedis). Once Redis has
// denied an identity's combined check with RetryAfter R, the wait after which every
// limit admits, the limiter denies that identity's further checks itself until R has
// passed. That is exact, no verdict changes: each limit's state only improves with
// time, other nodes can only consume (their admissions consume from every limit, a
// combined denial from none), so the limit that denied, DeniedBy, still denies until
// its own wait, R, is over; R counts from before the check was sent, so the local
// window never outlasts the server's. Combined checks never give a slot back (a
// client that leaves while a leaky bucket among the limits holds it is not given
// back), so nothing else improves state early but keys deleted behind the limiter's
// back (flush, a Redis restart without persistence). Still, a caller that may one day
// give back a leaky bucket's slot from another node should leave the deny cache off
// for sets with a leaky bucket, as productapi does.
//
// The fields of a local answer are those of Redis's denial counted down, as Redis
// would give them if nothing else had happened to the identity meanwhile (another
// node's admissions could only make the wait longer): DeniedBy, RetryAfter and the
// denying limits' Decisions exactly so, while a limit's own wait lasts; a limit whose
// own wait is over admits, with Remaining at least 1. An admitting limit's Remaining
// stays what Redis said, a lower bound (time may have added to it), and so does its
// ResetAfter (the limit's reset had it admitted the request, which depends on state
// the cache does not hold). The headers a server derives (RateLimit-Policy, and
// RateLimit and Retry-After, which name DeniedBy) are exactly Redis's.

func (m MultiDecision) retryAfter() time.Duration {
	if m.Allowed {
		return 0
	}
	return m.RetryAfter
}

// countedDown is a combined denial dt µs later; the Limits are a copy.
func (m MultiDecision) countedDown(dt int64) MultiDecision {
	step := time.Duration(dt) * time.Microsecond
	ds := make([]Decision, len(m.Limits))
	for i, d := range m.Limits {
		switch {
		case !d.Allowed && step < d.RetryAfter:
			d = d.countedDown(dt)
		case !d.Allowed:
			// Its own wait is over: alone, it admits now.
			d.Allowed, d.RetryAfter = true, 0
			d.Remaining = max(d.Remaining, 1)
			d.ResetAfter = max(d.ResetAfter-step, 0)
			d.TimeMicros += dt
		default:
			d.TimeMicros += dt
		}
		ds[i] = d
	}
	m.Limits = ds
	m.RetryAfter -= step
	m.TimeMicros += dt
	return m
}

// Stats counts the limiter's checks answered locally, its script calls to Redis and,
// with batching, its round trips.
func (m *MultiRedis) Stats() Stats {
	s := Stats{Local: m.local.Load(), RedisCalls: m.calls.Load()}
	if m.batch != nil {
		s.RoundTrips = m.batch.roundTrips.Load()
	}
	return s
}
