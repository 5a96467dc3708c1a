package algorithms

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bounds on a Policy. They keep every product the scripts compute (limit×window,
// burst×window, in microseconds) below 2^53, where Lua's doubles stop being exact
// integers, so the Lua scripts and the Go models agree to the microsecond.
const (
	MaxLimit  = 1_000_000
	MaxBurst  = 1_000_000
	MinWindow = time.Millisecond
	MaxWindow = 24 * time.Hour
	// maxUnits bounds limit×window and burst×window in microseconds.
	maxUnits = 1 << 52
)

// Policy is a rate limit: Limit requests per Window, with a Burst where the
// algorithm has one (token bucket, leaky bucket, GCRA). Burst 0 means Limit.
// Its JSON form, written by MarshalJSON in json.go, is
// {"limit":10,"window":"1s","window_us":1000000,"burst":20}, burst always written out.
type Policy struct {
	// Limit is L, the requests admitted per Window.
	Limit int64
	// Window is W, a whole number of microseconds.
	Window time.Duration
	// Burst is B, where the algorithm has one; 0 means Limit (see EffectiveBurst).
	Burst int64
}

// ErrInvalidPolicy is wrapped by every error Validate returns.
var ErrInvalidPolicy = errors.New("invalid policy")

// Validate reports whether p is usable, with an error that says which value to change.
func (p Policy) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidPolicy, fmt.Sprintf(format, args...))
	}
	switch {
	case p.Limit < 1:
		return bad("limit is %d; it must be at least 1", p.Limit)
	case p.Limit > MaxLimit:
		return bad("limit is %d; it must be at most %d", p.Limit, MaxLimit)
	case p.Window <= 0:
		return bad("window is %s; it must be positive (e.g. 1s)", p.Window)
	case p.Window < MinWindow:
		return bad("window is %s; it must be at least %s", p.Window, MinWindow)
	case p.Window > MaxWindow:
		return bad("window is %s; it must be at most %s", p.Window, MaxWindow)
	case p.Window%time.Microsecond != 0:
		return bad("window is %s; it must be a whole number of microseconds", p.Window)
	case p.Burst < 0:
		return bad("burst is %d; it must be at least 1 (or 0 for the limit)", p.Burst)
	case p.Burst > MaxBurst:
		return bad("burst is %d; it must be at most %d", p.Burst, MaxBurst)
	}
	w := p.WindowMicros()
	if p.Limit*w > maxUnits || p.EffectiveBurst()*w > maxUnits {
		return bad("%d per %s (burst %d) is too fine-grained to count exactly; use a smaller limit, burst or window",
			p.Limit, FormatWindow(p.Window), p.EffectiveBurst())
	}
	return nil
}

// EffectiveBurst is Burst, or Limit when Burst is 0.
func (p Policy) EffectiveBurst() int64 {
	if p.Burst == 0 {
		return p.Limit
	}
	return p.Burst
}

// WindowMicros is the window in microseconds, the unit of every script.
func (p Policy) WindowMicros() int64 { return p.Window.Microseconds() }

// String encodes the policy for a key name: "10r1s", or "10r1s-b20" when the burst
// differs from the limit. ParsePolicy reads it back.
func (p Policy) String() string {
	s := strconv.FormatInt(p.Limit, 10) + "r" + FormatWindow(p.Window)
	if b := p.EffectiveBurst(); b != p.Limit {
		s += "-b" + strconv.FormatInt(b, 10)
	}
	return s
}

// Describe is the policy in words: "10/1s" or "10/1s burst 20".
func (p Policy) Describe() string {
	s := fmt.Sprintf("%d/%s", p.Limit, FormatWindow(p.Window))
	if b := p.EffectiveBurst(); b != p.Limit {
		s += fmt.Sprintf(" burst %d", b)
	}
	return s
}

// ParsePolicy reads the encoding that Policy.String writes.
func ParsePolicy(s string) (Policy, error) {
	limit, rest, ok := strings.Cut(s, "r")
	if !ok {
		return Policy{}, fmt.Errorf("%w: %q is not of the form 10r1s or 10r1s-b20", ErrInvalidPolicy, s)
	}
	window, burst, hasBurst := strings.Cut(rest, "-b")
	var p Policy
	var err error
	if p.Limit, err = strconv.ParseInt(limit, 10, 64); err != nil {
		return Policy{}, fmt.Errorf("%w: limit %q in %q is not a number", ErrInvalidPolicy, limit, s)
	}
	if p.Window, err = time.ParseDuration(window); err != nil {
		return Policy{}, fmt.Errorf("%w: window %q in %q is not a duration", ErrInvalidPolicy, window, s)
	}
	if hasBurst {
		if p.Burst, err = strconv.ParseInt(burst, 10, 64); err != nil {
			return Policy{}, fmt.Errorf("%w: burst %q in %q is not a number", ErrInvalidPolicy, burst, s)
		}
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	if p.Burst == p.Limit {
		p.Burst = 0
	}
	return p, nil
}

// FormatWindow writes d in the largest unit that divides it exactly: 1h, 90s, 250ms, 1500us.
func FormatWindow(d time.Duration) string {
	units := []struct {
		suffix string
		size   time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}}
	for _, u := range units {
		if d >= u.size && d%u.size == 0 {
			return strconv.FormatInt(int64(d/u.size), 10) + u.suffix
		}
	}
	return d.String()
}
