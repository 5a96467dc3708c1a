package algorithms

import (
	"encoding/json"
	"fmt"
	"time"
)

// JSON forms. Durations are written as whole microseconds in fields named *_us (the
// unit of every script), never as Go's nanosecond Durations, so a reader in any
// language sees the same numbers the limiter computed with.

type policyJSON struct {
	Limit    int64  `json:"limit"`
	Window   string `json:"window"`
	WindowUs int64  `json:"window_us"`
	Burst    int64  `json:"burst"`
}

// MarshalJSON writes {"limit":10,"window":"1s","window_us":1000000,"burst":20}; burst is
// always the effective burst.
func (p Policy) MarshalJSON() ([]byte, error) {
	return json.Marshal(policyJSON{Limit: p.Limit, Window: FormatWindow(p.Window), WindowUs: p.WindowMicros(), Burst: p.EffectiveBurst()})
}

// UnmarshalJSON reads what MarshalJSON writes (window_us, or window as a duration) and validates it.
func (p *Policy) UnmarshalJSON(b []byte) error {
	var v policyJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	q := Policy{Limit: v.Limit, Window: micros(v.WindowUs), Burst: v.Burst}
	if v.WindowUs == 0 && v.Window != "" {
		w, err := time.ParseDuration(v.Window)
		if err != nil {
			return fmt.Errorf("%w: window %q is not a duration", ErrInvalidPolicy, v.Window)
		}
		q.Window = w
	}
	if err := q.Validate(); err != nil {
		return err
	}
	if q.Burst == q.Limit {
		q.Burst = 0
	}
	*p = q
	return nil
}

type decisionJSON struct {
	Allowed      bool  `json:"allowed"`
	Limit        int64 `json:"limit"`
	Remaining    int64 `json:"remaining"`
	RetryAfterUs int64 `json:"retry_after_us"`
	ResetAfterUs int64 `json:"reset_after_us"`
	DelayUs      int64 `json:"delay_us"`
	TimeMicros   int64 `json:"time_us"`
}

// MarshalJSON writes the decision with durations in microseconds:
// allowed, limit, remaining, retry_after_us, reset_after_us, delay_us, time_us.
func (d Decision) MarshalJSON() ([]byte, error) {
	return json.Marshal(decisionJSON{d.Allowed, d.Limit, d.Remaining, d.RetryAfter.Microseconds(),
		d.ResetAfter.Microseconds(), d.Delay.Microseconds(), d.TimeMicros})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var v decisionJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = decision(v.Allowed, v.Limit, v.Remaining, v.RetryAfterUs, v.ResetAfterUs, v.DelayUs, v.TimeMicros)
	return nil
}

type stateJSON struct {
	Algorithm    string  `json:"algorithm"`
	Policy       Policy  `json:"policy"`
	TimeMicros   int64   `json:"time_us"`
	Capacity     int64   `json:"capacity"`
	Used         float64 `json:"used"`
	Remaining    int64   `json:"remaining"`
	RetryAfterUs int64   `json:"retry_after_us"`
	NextFreeUs   int64   `json:"next_free_us"`
	ResetAfterUs int64   `json:"reset_after_us"`
	DelayUs      int64   `json:"delay_us"`
	Current      int64   `json:"current,omitempty"`
	Previous     int64   `json:"previous,omitempty"`
}

// MarshalJSON writes the state with durations in microseconds: retry_after_us,
// next_free_us, reset_after_us, delay_us.
func (s State) MarshalJSON() ([]byte, error) {
	return json.Marshal(stateJSON{s.Algorithm, s.Policy, s.TimeMicros, s.Capacity, s.Used, s.Remaining,
		s.RetryAfter.Microseconds(), s.NextFree.Microseconds(), s.ResetAfter.Microseconds(), s.Delay.Microseconds(),
		s.Current, s.Previous})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *State) UnmarshalJSON(b []byte) error {
	var v stateJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = State{Algorithm: v.Algorithm, Policy: v.Policy, TimeMicros: v.TimeMicros, Capacity: v.Capacity, Used: v.Used,
		Remaining: v.Remaining, RetryAfter: micros(v.RetryAfterUs), NextFree: micros(v.NextFreeUs),
		ResetAfter: micros(v.ResetAfterUs), Delay: micros(v.DelayUs), Current: v.Current, Previous: v.Previous}
	return nil
}
