package algorithms

import (
	"cmp"
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
	// batch, batchInFlight and batchSize are WithBatching's.
	batch                    bool
	batchInFlight, batchSize int
	// batchPipelined sends batches as pipelines even on a standalone server (tests
	// and benchmarks compare the two ways).
	batchPipelined bool
	// denyCache is WithDenyCache's size; 0 means no deny cache.
	denyCache int
	err       error
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

// WithBatching makes a Redis limiter send the checks that arrive while its round
// trips are in flight together: on a standalone server in one call of a batch script
// that decides them one after the other with each algorithm's own script text (a
// check that fails there gets its own error), on a cluster in one pipeline per round
// trip (one part per master), with at most maxInFlight round trips in flight and at most maxSize checks in
// one; 0 means DefaultBatchInFlight and DefaultBatchSize. A check that finds a round
// trip free goes at once: batching adds no wait to a lone check. Each check keeps its
// own context. Give a limiter no more round trips in flight than its client's pool
// has connections (per master), so that no check waits for a connection. The
// limiter's client must pipeline (*redis.Client, *redis.ClusterClient,
// redis.UniversalClient). Models and Locals ignore it.
func WithBatching(maxInFlight, maxSize int) Option {
	return func(o *options) {
		if maxInFlight < 0 || maxSize < 0 {
			o.err = fmt.Errorf("%w: batching of %d round trips of %d checks; both must be at least 1 (0 for the default)", ErrInvalidOption, maxInFlight, maxSize)
			return
		}
		o.batch = true
		o.batchInFlight = cmp.Or(maxInFlight, DefaultBatchInFlight)
		o.batchSize = cmp.Or(maxSize, DefaultBatchSize)
	}
}

// WithDenyCache gives a Redis limiter a local deny cache of up to size identities
// (0 means DefaultDenyCacheSize): once Redis has denied an identity with "retry after
// R", the limiter denies that identity's further checks itself until R has passed,
// without a round trip, with the Decision Redis would have given (RetryAfter and
// ResetAfter counted down). See Redis for why this is exact. Models and Locals
// ignore it.
func WithDenyCache(size int) Option {
	return func(o *options) {
		if size < 0 {
			o.err = fmt.Errorf("%w: deny cache of %d identities; it must be at least 1 (0 for the default)", ErrInvalidOption, size)
			return
		}
		o.denyCache = cmp.Or(size, DefaultDenyCacheSize)
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
