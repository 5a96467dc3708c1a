package algorithms

import "time"

// cdiv is ceil(a/b) for a >= 0, b > 0, as the scripts' cdiv computes it.
func cdiv(a, b int64) int64 { return (a + b - 1) / b }

// micros turns a count of microseconds into a Duration.
func micros(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// decision builds a Decision from the values every script returns.
func decision(allowed bool, limit, remaining, retryUs, resetUs, delayUs, now int64) Decision {
	return Decision{
		Allowed:    allowed,
		Limit:      limit,
		Remaining:  remaining,
		RetryAfter: micros(retryUs),
		ResetAfter: micros(resetUs),
		Delay:      micros(delayUs),
		TimeMicros: now,
	}
}
