package algorithms

import (
	_ "embed"
	"math"
)

//go:embed lua/leaky_bucket.lua
var leakyBucketLua string

// leakyBucket is a queue of at most B requests that drains at L per W. It shapes:
// each admitted request is told to wait (Delay) until those queued ahead of it have
// left, so the output is smooth at L/W. A request is admitted when there is room in
// the queue and its wait would be at most the max delay; with the default max delay
// it admits what the token bucket admits.
//
// A request that has been admitted but has not yet left (its client gave up while it
// waited) can be given back. The queue is a level, not a list of requests, so it
// counts the requests of each busy period (since the queue was last empty): request
// seq of the period that began at since. A request's departure is exact as long as
// no request was given back after it was admitted; GiveBack returns a slot only when
// the level proves the request is still waiting (see GiveBack).
type leakyBucket struct {
	p        Policy
	maxDelay int64 // µs, at most cdiv((B−1)·W, L)
	level    int64 // in units of 1/W request
	at       int64 // time of level, µs
	since    int64 // when the current busy period began, µs
	n        int64 // requests admitted in the current busy period
}

func newLeakyBucket(p Policy, o options) model {
	return &leakyBucket{p: p, maxDelay: o.leakyMaxDelay(p)}
}

// loadLeakyBucket reads the hash {l, ts, b, n} that leaky_bucket.lua writes. b and n
// may be missing, as in state written before give-backs existed; the script reads
// them as 0 too.
func loadLeakyBucket(p Policy, o options, c Content) (model, error) {
	f, err := hashFields(LeakyBucket, c)
	if err != nil {
		return nil, err
	}
	m := &leakyBucket{p: p, maxDelay: o.leakyMaxDelay(p), level: f.int("l", 0, p.EffectiveBurst()*p.WindowMicros()),
		at: f.int("ts", 0, math.MaxInt64), since: f.optInt("b", 0, math.MaxInt64), n: f.optInt("n", 0, 1<<53)}
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

// ceiling is the highest level at which a request is still admitted: room for one
// more in the queue, and a wait of at most maxDelay.
func (m *leakyBucket) ceiling() int64 {
	return min((m.p.EffectiveBurst()-1)*m.p.WindowMicros(), m.maxDelay*m.p.Limit)
}

// Allow decides a request at now.
func (m *leakyBucket) Allow(now int64) Decision {
	unit, limit, ceiling := m.p.WindowMicros(), m.p.Limit, m.ceiling()
	level := m.levelAt(now)
	if level <= ceiling {
		if level == 0 {
			m.since, m.n = now, 0
		}
		delay := cdiv(level, limit)
		remaining := (ceiling - level) / unit
		d := decision(true, limit, remaining, 0, cdiv(level+unit, limit), delay, now)
		d.since, d.seq = m.since, m.n
		m.level, m.at, m.n = level+unit, now, m.n+1
		return d
	}
	return decision(false, limit, 0, cdiv(level-ceiling, limit), cdiv(level, limit), 0, now)
}

// GiveBack returns the slot of the admitted request d at now, when d has not yet
// left the queue, and reports whether it did. It is exact: the level afterwards is
// the level the queue would have had if d had never been admitted. It refuses (and
// changes nothing) when d was denied or did not wait, when now is not before d's
// departure (d's time plus its Delay), when d belongs to an earlier busy period, and
// when the level cannot prove that d is still waiting: the level is at least one
// unit for d and one for each request admitted after it only while d has not begun
// to leave. The last test can refuse a request that is in fact waiting, when a
// request admitted after it was given back first; it never returns a slot that is
// not there. Each Decision must be given back at most once.
func (m *leakyBucket) GiveBack(d Decision, now int64) bool {
	unit := m.p.WindowMicros()
	if !d.Allowed || d.Delay <= 0 || now < d.TimeMicros || now >= d.TimeMicros+d.Delay.Microseconds() ||
		d.since != m.since || d.seq < 0 || d.seq >= m.n || m.n-d.seq > m.p.EffectiveBurst() {
		return false
	}
	level := m.levelAt(now)
	if level < (m.n-d.seq)*unit {
		return false
	}
	m.level, m.at = level-unit, now
	return true
}

func (m *leakyBucket) capacity() int64 { return m.p.EffectiveBurst() }

func (m *leakyBucket) peek(now int64) peek {
	unit, limit, ceiling := m.p.WindowMicros(), m.p.Limit, m.ceiling()
	level := m.levelAt(now)
	pk := peek{usedNum: level, usedDen: unit, reset: cdiv(level, limit)}
	if level <= ceiling {
		pk.remaining = (ceiling-level)/unit + 1
		pk.delay = cdiv(level, limit)
	}
	return pk
}
