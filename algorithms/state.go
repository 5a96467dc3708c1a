package algorithms

import (
	"errors"
	"fmt"
	"math"
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
// told RetryAfter and ResetAfter. Its JSON form is in algorithms/json.go.
type State struct {
	// Algorithm is the algorithm's name.
	Algorithm string `json:"algorithm"`
	// Policy is the policy decoded from the key name.
	Policy Policy `json:"policy"`
	// TimeMicros is the moment the state is decoded at, microseconds since the Unix epoch.
	TimeMicros int64 `json:"time_us"`
	// Capacity is Remaining when the state is fresh: the limit L for the window
	// algorithms, the burst B for token bucket, leaky bucket and GCRA.
	Capacity int64 `json:"capacity"`
	// Used is how much of Capacity is taken, in requests: the window's count (fixed
	// window), the admissions in the last W (sliding log), the weighted estimate
	// (sliding counter), B minus the tokens (token bucket), the queue (leaky bucket),
	// how far the TAT is ahead of now in emission intervals (GCRA).
	Used float64 `json:"used"`
	// Remaining is how many requests would be admitted now, one after another.
	Remaining int64 `json:"remaining"`
	// RetryAfter is how long until a request is admitted again; 0 when Remaining > 0.
	RetryAfter time.Duration `json:"retry_after"`
	// NextFree is how long until Remaining grows by one; 0 when Remaining is Capacity.
	NextFree time.Duration `json:"next_free"`
	// ResetAfter is how long until the state is fresh again, as if never used.
	ResetAfter time.Duration `json:"reset_after"`
	// Delay is how long a request admitted now would wait before it is served
	// (leaky bucket); 0 for the other algorithms.
	Delay time.Duration `json:"delay"`
	// Current and Previous are the sliding counter's two window counts; 0 otherwise.
	Current  int64 `json:"current,omitempty"`
	Previous int64 `json:"previous,omitempty"`
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

// peeker is a model that can say what its state means at now without changing it.
type peeker interface {
	peek(now int64) peek
	capacity() int64
}

// DecodeState loads the model of algorithm under policy p from a key's raw content
// and returns the state it means at now (microseconds since the epoch: use the
// Redis server's TIME). Content that the algorithm's script could not have written
// wraps ErrBadState.
func DecodeState(algorithm string, p Policy, c Content, now int64) (State, error) {
	if _, err := lookup(algorithm, p); err != nil {
		return State{}, err
	}
	m, err := loadModel(algorithm, p, c)
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
func nextFree(m peeker, now, remaining, reset int64) int64 {
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

func loadModel(algorithm string, p Policy, c Content) (peeker, error) {
	if algorithm == SlidingLog {
		if c.ZSet == nil {
			return nil, fmt.Errorf("%w: sliding-log state is a sorted set, this is %s", ErrBadState, c.kind())
		}
		return loadSlidingLog(p, c.ZSet)
	}
	if algorithm == GCRA {
		if c.String == nil {
			return nil, fmt.Errorf("%w: gcra state is a string, \"<tat>\" or \"<tat> <f>\", this is %s", ErrBadState, c.kind())
		}
		return loadGCRA(p, *c.String)
	}
	if c.Hash == nil {
		return nil, fmt.Errorf("%w: %s state is a hash, this is %s", ErrBadState, algorithm, c.kind())
	}
	f := fields{hash: c.Hash}
	var m peeker
	switch algorithm {
	case FixedWindow:
		m = &fixedWindow{p: p, start: f.int("w", 0, math.MaxInt64), count: f.int("n", 1, p.Limit)}
	case SlidingCounter:
		m = &slidingCounter{p: p, start: f.int("w", 0, math.MaxInt64), cur: f.int("c", 0, p.Limit),
			prev: f.int("p", 0, p.Limit), hasStarted: true}
	case TokenBucket:
		m = &tokenBucket{p: p, tokens: f.int("t", 0, p.EffectiveBurst()*p.WindowMicros()),
			at: f.int("ts", 0, math.MaxInt64), seen: true}
	case LeakyBucket:
		m = &leakyBucket{p: p, level: f.int("l", 0, p.EffectiveBurst()*p.WindowMicros()),
			at: f.int("ts", 0, math.MaxInt64)}
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
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

// loadGCRA reads "<tat>" or "<tat> <f>", as gcra.lua writes it.
func loadGCRA(p Policy, s string) (*gcra, error) {
	tat, frac, hasFrac := strings.Cut(s, " ")
	f := fields{hash: map[string]string{"tat": tat}}
	if hasFrac {
		f.hash["f"] = frac
	}
	m := &gcra{p: p, tat: f.int("tat", 0, math.MaxInt64), seen: true}
	if hasFrac {
		m.frac = f.int("f", 1, p.Limit-1)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
}

func loadSlidingLog(p Policy, z []ZMember) (*slidingLog, error) {
	m := &slidingLog{p: p, times: make([]int64, 0, len(z))}
	for _, e := range z {
		t := int64(e.Score)
		if e.Score < 0 || e.Score >= 1<<53 || float64(t) != e.Score {
			return nil, fmt.Errorf("%w: the score %v of %q is not a time in microseconds", ErrBadState, e.Score, truncate(e.Member, 40))
		}
		m.times = append(m.times, t)
	}
	sort.Slice(m.times, func(i, j int) bool { return m.times[i] < m.times[j] })
	return m, nil
}

func (m *fixedWindow) capacity() int64 { return m.p.Limit }

func (m *fixedWindow) peek(now int64) peek {
	w := m.p.WindowMicros()
	start := now / w * w
	if m.start != start || m.count == 0 {
		return peek{remaining: m.p.Limit, usedDen: 1}
	}
	return peek{remaining: max(0, m.p.Limit-m.count), usedNum: m.count, usedDen: 1, reset: start + w - now}
}

func (m *slidingLog) capacity() int64 { return m.p.Limit }

func (m *slidingLog) peek(now int64) peek {
	w := m.p.WindowMicros()
	times := m.live(now)
	count := int64(len(times))
	if count == 0 {
		return peek{remaining: m.p.Limit, usedDen: 1}
	}
	return peek{remaining: max(0, m.p.Limit-count), usedNum: count, usedDen: 1, reset: times[count-1] + w - now}
}

func (m *slidingCounter) capacity() int64 { return m.p.Limit }

func (m *slidingCounter) peek(now int64) peek {
	w, limit := m.p.WindowMicros(), m.p.Limit
	start := now / w * w
	elapsed := now - start
	cur, prev := m.counts(now)
	room := limit*w - prev*(w-elapsed)
	pk := peek{remaining: max(0, cdiv(max(0, room), w)-cur), usedNum: prev*(w-elapsed) + cur*w, usedDen: w}
	switch {
	case cur > 0:
		pk.reset = start + 2*w - now
	case prev > 0:
		pk.reset = start + w - now
	}
	return pk
}

func (m *tokenBucket) capacity() int64 { return m.p.EffectiveBurst() }

func (m *tokenBucket) peek(now int64) peek {
	unit, limit := m.p.WindowMicros(), m.p.Limit
	tokens, capacity := m.tokensAt(now)
	return peek{remaining: tokens / unit, usedNum: capacity - tokens, usedDen: unit, reset: cdiv(capacity-tokens, limit)}
}

func (m *leakyBucket) capacity() int64 { return m.p.EffectiveBurst() }

func (m *leakyBucket) peek(now int64) peek {
	unit, limit, burst := m.p.WindowMicros(), m.p.Limit, m.p.EffectiveBurst()
	level := m.levelAt(now)
	pk := peek{remaining: max(0, burst*unit-level) / unit, usedNum: level, usedDen: unit, reset: cdiv(level, limit)}
	if pk.remaining > 0 {
		pk.delay = cdiv(level, limit)
	}
	return pk
}

func (m *gcra) capacity() int64 { return m.p.EffectiveBurst() }

func (m *gcra) peek(now int64) peek {
	w, limit := m.p.WindowMicros(), m.p.Limit
	diff := m.diffAt(now)
	return peek{remaining: max(0, m.p.EffectiveBurst()*w-diff) / w, usedNum: diff, usedDen: w, reset: cdiv(diff, limit)}
}
