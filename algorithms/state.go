package algorithms

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrBadState means a limiter key's content is not what its algorithm's script writes:
// a missing or unknown field, a value that is not an integer, or one out of range.
var ErrBadState = errors.New("limiter state is not as ratelab writes it")

// Content is the raw content of a limiter key as Redis holds it: a hash for most
// algorithms, a sorted set of admitted times for the sliding log, a string for GCRA.
type Content struct {
	// String is the key's value, for a string.
	String *string
	// Hash is the key's fields and values, for a hash.
	Hash map[string]string
	// ZSet is the key's members, for a sorted set.
	ZSet []ZMember
}

// kind names what c holds, for messages.
func (c Content) kind() string {
	switch {
	case c.String != nil:
		return "a string"
	case c.ZSet != nil:
		return "a sorted set"
	case c.Hash != nil:
		return "a hash"
	}
	return "empty"
}

// ZMember is one member of a sorted set and its score.
type ZMember struct {
	Member string  `json:"member"`
	Score  float64 `json:"score"`
}

// State is one identity's limiter state at one moment, decoded from its key: what a
// request at that moment would meet. It is computed with the same integer arithmetic
// as the algorithm's model, without changing the state, so that it matches the
// Decision the algorithm would give at the same moment: a request now is admitted
// exactly when Remaining > 0, Remaining then drops by one, and a denied request is
// told RetryAfter and ResetAfter. Its JSON form, written by MarshalJSON in json.go,
// gives durations in whole microseconds (retry_after_us, next_free_us, reset_after_us,
// delay_us) and leaves out current and previous when they are 0.
type State struct {
	// Algorithm is the algorithm's name.
	Algorithm string
	// Policy is the policy decoded from the key name.
	Policy Policy
	// TimeMicros is the moment the state is decoded at, microseconds since the Unix epoch.
	TimeMicros int64
	// Capacity is Remaining when the state is fresh: the limit L for the window
	// algorithms, the burst B for token bucket, leaky bucket and GCRA.
	Capacity int64
	// Used is how much of Capacity is taken, in requests: the window's count (fixed
	// window), the admissions in the last W (sliding log), the weighted estimate
	// (sliding counter), B minus the tokens (token bucket), the queue (leaky bucket),
	// how far the TAT is ahead of now in emission intervals (GCRA).
	Used float64
	// Remaining is how many requests would be admitted now, one after another.
	Remaining int64
	// RetryAfter is how long until a request is admitted again; 0 when Remaining > 0.
	RetryAfter time.Duration
	// NextFree is how long until Remaining grows by one; 0 when Remaining is Capacity.
	NextFree time.Duration
	// ResetAfter is how long until the state is fresh again, as if never used.
	ResetAfter time.Duration
	// Delay is how long a request admitted now would wait before it is served
	// (leaky bucket); 0 for the other algorithms.
	Delay time.Duration
	// Current and Previous are the sliding counter's two window counts; 0 otherwise.
	Current  int64
	Previous int64
}

// Fresh reports whether the state is as if the identity had never made a request.
func (s State) Fresh() bool { return s.ResetAfter == 0 }

// peek is what a model's state means at one moment, without a request.
type peek struct {
	remaining int64
	// used is usedNum/usedDen requests, kept as a fraction so Used is exact up to float64.
	usedNum, usedDen int64
	reset            int64 // µs until fresh
	delay            int64 // µs an admitted request would wait
}

// DecodeState loads the model of algorithm under policy p from a key's raw content
// and returns the state it means at now (microseconds since the epoch: use the
// Redis server's TIME). Content that the algorithm's script could not have written
// wraps ErrBadState. opts are the limiter's options (WithMaxDelay changes what a
// leaky bucket admits); a key's name does not record them.
func DecodeState(algorithm string, p Policy, c Content, now int64, opts ...Option) (State, error) {
	if _, err := lookup(algorithm, p); err != nil {
		return State{}, err
	}
	o, err := applyOptions(opts)
	if err != nil {
		return State{}, err
	}
	m, err := loadModel(algorithm, p, o, c)
	if err != nil {
		return State{}, fmt.Errorf("%s %s: %w", algorithm, p, err)
	}
	// A TAT this far ahead would overflow the arithmetic; the script never writes one
	// more than B·W ahead of its own time.
	if g, ok := m.(*gcra); ok && g.tat-now > (1<<62)/p.Limit {
		return State{}, fmt.Errorf("%s %s: %w: tat=%d is too far ahead of now (%d)", algorithm, p, ErrBadState, g.tat, now)
	}
	pk := m.peek(now)
	s := State{
		Algorithm:  algorithm,
		Policy:     p,
		TimeMicros: now,
		Capacity:   m.capacity(),
		Used:       float64(pk.usedNum) / float64(pk.usedDen),
		Remaining:  pk.remaining,
		ResetAfter: micros(pk.reset),
		Delay:      micros(pk.delay),
	}
	if sc, ok := m.(*slidingCounter); ok {
		s.Current, s.Previous = sc.counts(now)
	}
	if pk.remaining < s.Capacity && pk.reset > 0 {
		next := nextFree(m, now, pk.remaining, pk.reset)
		s.NextFree = micros(next)
		if pk.remaining == 0 {
			s.RetryAfter = s.NextFree
		}
	}
	return s, nil
}

// nextFree finds the first moment after now at which more requests would be
// admitted than now. Remaining never falls while no request comes, and the state is
// fresh at reset, so a binary search over the model's own peek finds it exactly.
func nextFree(m model, now, remaining, reset int64) int64 {
	lo, hi := int64(0), reset // peek at now+lo admits remaining; at now+hi, more
	if m.peek(now+hi).remaining <= remaining {
		return reset
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if m.peek(now+mid).remaining > remaining {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// loadModel reads the model of algorithm under p back from a key's raw content.
func loadModel(algorithm string, p Policy, o options, c Content) (model, error) {
	return specs[algorithm].load(p, o, c)
}

// hashFields is the reader of a hash algorithm's content, or an error if c is not a hash.
func hashFields(algorithm string, c Content) (*fields, error) {
	if c.Hash == nil {
		return nil, fmt.Errorf("%w: %s state is a hash, this is %s", ErrBadState, algorithm, c.kind())
	}
	return &fields{hash: c.Hash}, nil
}

// fields reads a hash's integer fields, remembering the first problem.
type fields struct {
	hash map[string]string
	seen int
	err  error
}

func (f *fields) int(name string, lo, hi int64) int64 {
	if f.err != nil {
		return 0
	}
	s, ok := f.hash[name]
	if !ok {
		f.err = fmt.Errorf("%w: the field %q is missing", ErrBadState, name)
		return 0
	}
	f.seen++
	v, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		f.err = fmt.Errorf("%w: %s=%q is not an integer", ErrBadState, name, truncate(s, 40))
	case v < lo || v > hi:
		f.err = fmt.Errorf("%w: %s=%d is outside %d..%d", ErrBadState, name, v, lo, hi)
	}
	return v
}

// optInt is int for a field that may be missing, as 0.
func (f *fields) optInt(name string, lo, hi int64) int64 {
	if _, ok := f.hash[name]; !ok {
		return 0
	}
	return f.int(name, lo, hi)
}

func (f *fields) check() error {
	if f.err != nil {
		return f.err
	}
	if len(f.hash) != f.seen {
		var extra []string
		for k := range f.hash {
			extra = append(extra, k)
		}
		sort.Strings(extra)
		return fmt.Errorf("%w: unexpected fields among %s", ErrBadState, strings.Join(extra, ", "))
	}
	return nil
}
