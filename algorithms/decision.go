package algorithms

import "time"

// Decision is what a limiter answers for one request. Its JSON form (durations in
// microseconds) is in json.go.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool `json:"allowed"`
	// Limit is the policy's limit per window.
	Limit int64 `json:"limit"`
	// Remaining is how many more requests would be allowed right now; never negative.
	Remaining int64 `json:"remaining"`
	// RetryAfter is how long a denied request should wait before a retry succeeds,
	// rounded up to the microsecond; never 0 when denied, 0 when allowed.
	RetryAfter time.Duration `json:"retry_after"`
	// ResetAfter is how long until the identity's state is back to fresh.
	ResetAfter time.Duration `json:"reset_after"`
	// Delay is how long an admitted request must wait before it is served (leaky bucket); 0 otherwise.
	Delay time.Duration `json:"delay"`
	// TimeMicros is the server time of the decision, microseconds since the Unix epoch.
	TimeMicros int64 `json:"time_us"`
}

// Time is the server time of the decision.
func (d Decision) Time() time.Time { return time.UnixMicro(d.TimeMicros) }
