package algorithms

import _ "embed"

//go:embed lua/token_bucket.lua
var tokenBucketLua string

var tokenBucketScript = newScript(tokenBucketLua)

// tokenBucket holds up to B tokens, refilled at L per W; a request takes one. A full
// bucket lets B through at once, then L per W: B+L in one window at worst.
type tokenBucket struct {
	p      Policy
	tokens int64 // in units of 1/W token
	at     int64 // time of tokens, µs
	seen   bool
}

func newTokenBucket(p Policy) Model { return &tokenBucket{p: p} }

func (m *tokenBucket) Allow(now int64) Decision {
	unit, limit := m.p.WindowMicros(), m.p.Limit
	capacity := m.p.EffectiveBurst() * unit
	tokens := capacity
	if m.seen {
		tokens = m.tokens
		if elapsed := now - m.at; elapsed > 0 {
			if elapsed >= cdiv(capacity-tokens, limit) {
				tokens = capacity
			} else {
				tokens += elapsed * limit
			}
		}
	}
	if tokens >= unit {
		tokens -= unit
		m.tokens, m.at, m.seen = tokens, now, true
		return decision(true, limit, tokens/unit, 0, cdiv(capacity-tokens, limit), 0, now)
	}
	return decision(false, limit, 0, cdiv(unit-tokens, limit), cdiv(capacity-tokens, limit), 0, now)
}
