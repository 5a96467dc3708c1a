package algorithms

import (
	"errors"
	"fmt"
	"time"
)

// DefaultMaxIdentities is how many identities a Local holds state for unless
// WithMaxIdentities says otherwise.
const DefaultMaxIdentities = 100_000

// MaxDelayCap caps the leaky bucket's default max delay: unless WithMaxDelay says
// otherwise, a request is denied rather than told to wait longer than this.
const MaxDelayCap = 30 * time.Second

// ErrInvalidOption is wrapped by the error for an Option value out of range.
var ErrInvalidOption = errors.New("invalid option")

// Option tunes a limiter or a model beyond its Policy. Options that do not apply to
// an algorithm or a kind of limiter are ignored by it.
type Option func(*options)

// options are the settings the Options make; the zero value is every default.
type options struct {
	maxDelay    time.Duration
	hasMaxDelay bool
	maxIDs      int
	err         error
}

// WithMaxDelay sets the leaky bucket's ceiling on queue wait: a request that would
// have to wait longer than d before it leaves the queue is denied (and consumes
// nothing), with a RetryAfter of when it would fit. d is rounded down to the
// microsecond; 0 admits only requests that need not wait at all. Without this option
// the ceiling is the bucket's drain time B·W/L, capped at MaxDelayCap; the queue
// itself never makes a request wait more than (B−1)·W/L, so the default only ever
// binds through the cap. The other algorithms ignore it.
func WithMaxDelay(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.err = fmt.Errorf("%w: max delay is %s; it must be at least 0", ErrInvalidOption, d)
			return
		}
		o.maxDelay, o.hasMaxDelay = d, true
	}
}

// WithMaxIdentities bounds how many identities a Local holds state for (default
// DefaultMaxIdentities). When a new identity comes and the bound is reached, the
// identity used least recently is forgotten (see Local). Redis limiters and models
// ignore it.
func WithMaxIdentities(n int) Option {
	return func(o *options) {
		if n < 1 {
			o.err = fmt.Errorf("%w: max identities is %d; it must be at least 1", ErrInvalidOption, n)
			return
		}
		o.maxIDs = n
	}
}

func applyOptions(opts []Option) (options, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
		if o.err != nil {
			return options{}, o.err
		}
	}
	return o, nil
}

// maxIdentities is the bound of a Local.
func (o options) maxIdentities() int {
	if o.maxIDs == 0 {
		return DefaultMaxIdentities
	}
	return o.maxIDs
}

// leakyMaxDelay is the leaky bucket's max delay under p in µs, at most the longest
// wait the queue itself allows, cdiv((B−1)·W, L): a larger one changes nothing, and
// the bound keeps maxDelay·L below 2^53 for the script.
func (o options) leakyMaxDelay(p Policy) int64 {
	w, limit, burst := p.WindowMicros(), p.Limit, p.EffectiveBurst()
	d := min(cdiv(burst*w, limit), MaxDelayCap.Microseconds())
	if o.hasMaxDelay {
		d = o.maxDelay.Microseconds()
	}
	return min(d, cdiv((burst-1)*w, limit))
}
