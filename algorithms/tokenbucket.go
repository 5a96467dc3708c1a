package algorithms

import (
	_ "embed"
	"math"
)

//go:embed lua/token_bucket.lua
var tokenBucketLua string

// tokenBucket holds up to B tokens, refilled at L per W; a request takes one. A full
// bucket lets B through at once, then L per W: B+L in one window at worst.
type tokenBucket struct {
	p      Policy
	tokens int64 // in units of 1/W token
	at     int64 // time of tokens, µs
	seen   bool
}

func newTokenBucket(p Policy, _ options) model { return &tokenBucket{p: p} }

// loadTokenBucket reads the hash {t, ts} that token_bucket.lua writes.
func loadTokenBucket(p Policy, _ options, c Content) (model, error) {
	f, err := hashFields(TokenBucket, c)
	if err != nil {
		return nil, err
	}
	m := &tokenBucket{p: p, tokens: f.int("t", 0, p.EffectiveBurst()*p.WindowMicros()),
		at: f.int("ts", 0, math.MaxInt64), seen: true}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// tokensAt is the bucket's content at now, refilled since the last request.
func (m *tokenBucket) tokensAt(now int64) (tokens, capacity int64) {
	capacity = m.p.EffectiveBurst() * m.p.WindowMicros()
	if !m.seen {
		return capacity, capacity
	}
	tokens = m.tokens
	if elapsed := now - m.at; elapsed > 0 {
		if elapsed >= cdiv(capacity-tokens, m.p.Limit) {
			tokens = capacity
		} else {
			tokens += elapsed * m.p.Limit
		}
	}
	return tokens, capacity
}

// Allow decides a request at now.
func (m *tokenBucket) Allow(now int64) Decision {
	unit, limit := m.p.WindowMicros(), m.p.Limit
	tokens, capacity := m.tokensAt(now)
	if tokens >= unit {
		tokens -= unit
		m.tokens, m.at, m.seen = tokens, now, true
		return decision(true, limit, tokens/unit, 0, cdiv(capacity-tokens, limit), 0, now)
	}
	return decision(false, limit, 0, cdiv(unit-tokens, limit), cdiv(capacity-tokens, limit), 0, now)
}

// GiveBack gives nothing back: only the leaky bucket has requests that wait.
func (m *tokenBucket) GiveBack(Decision, int64) bool { return false }

func (m *tokenBucket) capacity() int64 { return m.p.EffectiveBurst() }

func (m *tokenBucket) peek(now int64) peek {
	unit, limit := m.p.WindowMicros(), m.p.Limit
	tokens, capacity := m.tokensAt(now)
	return peek{remaining: tokens / unit, usedNum: capacity - tokens, usedDen: unit, reset: cdiv(capacity-tokens, limit)}
}
