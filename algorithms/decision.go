package algorithms

import "time"

// Decision is what a limiter answers for one request. Its JSON form, written by
// MarshalJSON in json.go, gives durations in whole microseconds:
// {"allowed":true,"limit":10,"remaining":9,"retry_after_us":0,"reset_after_us":100000,"delay_us":0,"time_us":...}.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the policy's limit per window.
	Limit int64
	// Remaining is how many more requests would be allowed right now; never negative.
	Remaining int64
	// RetryAfter is how long a denied request should wait before a retry succeeds,
	// rounded up to the microsecond; never 0 when denied, 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the identity's state is back to fresh.
	ResetAfter time.Duration
	// Delay is how long an admitted request must wait before it is served (leaky bucket); 0 otherwise.
	Delay time.Duration
	// TimeMicros is the server time of the decision, microseconds since the Unix epoch.
	TimeMicros int64

	// since and seq say which request of the leaky bucket's queue an admitted
	// request is (the busy period that began at since, µs, and its place in it), so
	// that it can be given back; 0 otherwise. Not part of the JSON form.
	since, seq int64
}
