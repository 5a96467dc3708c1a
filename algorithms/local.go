package algorithms

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Local is a Limiter that keeps state in this process only, as a limiter without
// Redis would: behind a load balancer over N nodes, each node's Local lets a client
// through up to N times. It runs the same models the scripts are tested against.
//
// A Local holds state for at most WithMaxIdentities identities (DefaultMaxIdentities
// unless set), so a flood of identities cannot grow it without bound. When a new
// identity comes and the bound is reached, the identity used least recently is
// forgotten, and Evictions counts it if its state was not yet fresh. Forgetting is the
// price of the bound: for every algorithm, a forgotten identity starts fresh, as if it
// had never made a request, so it may be let through sooner than its limit allows.
// State that is back to fresh costs nothing to forget; it is also dropped on its own,
// oldest first, as requests come.
type Local struct {
	spec   *spec
	policy Policy
	opts   options
	now    func() time.Time

	mu     sync.Mutex
	states *simplelru.LRU[string, *localState]
	// evicted are the identities whose state was evicted, not yet fresh, in the
	// microsecond evictedAt: see localState.afterEviction.
	evicted   map[string]struct{}
	evictedAt int64
	evictions atomic.Int64
}

// pruneBatch is how many idle (fresh) states one decision drops at most, oldest
// first: enough to keep up with one new identity per decision, while no single call
// pays for many.
const pruneBatch = 4

type localState struct {
	model   model
	expires int64 // µs; from then on the state is fresh again and can be dropped
	created int64 // µs
	// afterEviction records that the state was created in the very microsecond in
	// which the same identity's live state was evicted: a leaky bucket's busy period
	// that began then could be confused with the forgotten state's, so such a state
	// gives back nothing admitted in a busy period that began at created.
	afterEviction bool
}

// NewLocal returns an in-memory limiter; now is its clock (time.Now when nil). opts
// may bound the identities it holds (WithMaxIdentities) and tune the algorithm
// (WithMaxDelay).
func NewLocal(algorithm string, p Policy, now func() time.Time, opts ...Option) (*Local, error) {
	s, err := lookup(algorithm, p)
	if err != nil {
		return nil, err
	}
	o, err := applyOptions(opts)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	states, err := simplelru.NewLRU[string, *localState](o.maxIdentities(), nil)
	if err != nil {
		return nil, err
	}
	return &Local{spec: s, policy: p, opts: o, now: now, states: states,
		evicted: map[string]struct{}{}, evictedAt: math.MinInt64}, nil
}

// Algorithm is the algorithm's name.
func (l *Local) Algorithm() string { return l.spec.name }

// Policy is the policy the limiter enforces.
func (l *Local) Policy() Policy { return l.policy }

// Allow decides one request of identity at the limiter's clock.
func (l *Local) Allow(_ context.Context, identity string) (Decision, error) {
	id, err := NormalizeIdentity(identity)
	if err != nil {
		return Decision{}, err
	}
	now := l.now().UnixMicro()
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.states.Get(id)
	if !ok || st.expires <= now {
		if !ok && l.states.Len() >= l.opts.maxIdentities() {
			l.evictOldest(now)
		}
		_, again := l.evicted[id]
		st = &localState{model: l.spec.model(l.policy, l.opts), created: now, afterEviction: again && l.evictedAt == now}
		l.states.Add(id, st)
	}
	d := st.model.Allow(now)
	st.expires = now + d.ResetAfter.Microseconds()
	l.prune(now)
	return d, nil
}

// GiveBack returns the slot of d, a request of identity that this limiter admitted
// with a Delay, at the limiter's clock, as Redis.GiveBack does. An identity whose
// state was forgotten since gives nothing back.
func (l *Local) GiveBack(_ context.Context, identity string, d Decision) (bool, error) {
	id, err := NormalizeIdentity(identity)
	if err != nil {
		return false, err
	}
	now := l.now().UnixMicro()
	l.mu.Lock()
	defer l.mu.Unlock()
	st, ok := l.states.Peek(id)
	if !ok || st.expires <= now || (st.afterEviction && d.since == st.created) {
		return false, nil
	}
	// expires stays: the state is fresh no later than before, and may be kept longer.
	return st.model.GiveBack(d, now), nil
}

// evictOldest forgets the identity used least recently, to make room for a new one.
func (l *Local) evictOldest(now int64) {
	id, st, ok := l.states.RemoveOldest()
	if !ok || st.expires <= now {
		return
	}
	l.evictions.Add(1)
	if l.evictedAt != now {
		clear(l.evicted)
		l.evictedAt = now
	}
	l.evicted[id] = struct{}{}
}

// prune drops up to pruneBatch states that are back to fresh, oldest first. It stops
// at the first state that is not: the order is by last use, not by expiry, so a fresh
// state may wait behind an older live one, at most until that one is fresh too.
func (l *Local) prune(now int64) {
	for i := 0; i < pruneBatch; i++ {
		_, st, ok := l.states.GetOldest()
		if !ok || st.expires > now {
			return
		}
		l.states.RemoveOldest()
	}
}

// Len is how many identities the limiter holds state for.
func (l *Local) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.states.Len()
}

// Evictions is how many identities the limiter has forgotten while their state was
// not yet fresh, to stay within its bound (WithMaxIdentities). Each one started
// fresh on its next request. It is safe to call at any time, from any goroutine.
func (l *Local) Evictions() int64 { return l.evictions.Load() }
