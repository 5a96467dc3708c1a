package algorithms

import (
	_ "embed"
	"math"
)

//go:embed lua/leaky_bucket.lua
var leakyBucketLua string

// leakyBucket is a queue of at most B requests that drains at L per W. It admits what
// the token bucket admits, but shapes: each admitted request is told to wait (Delay)
// until those queued ahead of it have left, so the output is smooth at L/W.
type leakyBucket struct {
	p     Policy
	level int64 // in units of 1/W request
	at    int64 // time of level, µs
}

func newLeakyBucket(p Policy) model { return &leakyBucket{p: p} }

// loadLeakyBucket reads the hash {l, ts} that leaky_bucket.lua writes.
func loadLeakyBucket(p Policy, c Content) (model, error) {
	f, err := hashFields(LeakyBucket, c)
	if err != nil {
		return nil, err
	}
	m := &leakyBucket{p: p, level: f.int("l", 0, p.EffectiveBurst()*p.WindowMicros()),
		at: f.int("ts", 0, math.MaxInt64)}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// levelAt is the queue's level at now, drained since the last request.
func (m *leakyBucket) levelAt(now int64) int64 {
	level := m.level
	if elapsed := now - m.at; elapsed > 0 && level > 0 {
		if elapsed >= cdiv(level, m.p.Limit) {
			return 0
		}
		level -= elapsed * m.p.Limit
	}
	return level
}

// Allow decides a request at now.
func (m *leakyBucket) Allow(now int64) Decision {
	unit, limit, burst := m.p.WindowMicros(), m.p.Limit, m.p.EffectiveBurst()
	level := m.levelAt(now)
	if level <= (burst-1)*unit {
		delay := cdiv(level, limit)
		level += unit
		m.level, m.at = level, now
		return decision(true, limit, (burst*unit-level)/unit, 0, cdiv(level, limit), delay, now)
	}
	return decision(false, limit, 0, cdiv(level-(burst-1)*unit, limit), cdiv(level, limit), 0, now)
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
