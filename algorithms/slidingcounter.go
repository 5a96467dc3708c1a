package algorithms

import (
	_ "embed"
	"math"
)

//go:embed lua/sliding_counter.lua
var slidingCounterLua string

// slidingCounter estimates the requests of the last W from two fixed windows: all of
// the current one and the overlapping share of the previous one. Cheap and smooth,
// but an estimate: traffic bunched at the end of the previous window lets up to 2L-1
// through in one W.
type slidingCounter struct {
	p          Policy
	start      int64 // start of the current window, µs
	cur, prev  int64
	hasStarted bool
}

func newSlidingCounter(p Policy, _ options) model { return &slidingCounter{p: p} }

// loadSlidingCounter reads the hash {w, c, p} that sliding_counter.lua writes.
func loadSlidingCounter(p Policy, _ options, c Content) (model, error) {
	f, err := hashFields(SlidingCounter, c)
	if err != nil {
		return nil, err
	}
	m := &slidingCounter{p: p, start: f.int("w", 0, math.MaxInt64), cur: f.int("c", 0, p.Limit),
		prev: f.int("p", 0, p.Limit), hasStarted: true}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// counts are the current and previous window counts as a request at now sees them.
func (m *slidingCounter) counts(now int64) (cur, prev int64) {
	w := m.p.WindowMicros()
	start := now / w * w
	switch {
	case m.hasStarted && m.start == start:
		return m.cur, m.prev
	case m.hasStarted && m.start == start-w:
		return 0, m.cur
	}
	return 0, 0
}

// Allow decides a request at now.
func (m *slidingCounter) Allow(now int64) Decision {
	w, limit := m.p.WindowMicros(), m.p.Limit
	start := now / w * w
	elapsed := now - start
	cur, prev := m.counts(now)
	room := limit*w - prev*(w-elapsed)
	if cur*w < room {
		cur++
		m.start, m.cur, m.prev, m.hasStarted = start, cur, prev, true
		reset := start + 2*w - now
		return decision(true, limit, max(0, cdiv(room, w)-cur), 0, reset, 0, now)
	}
	var retry int64
	if cur < limit {
		retry = w - ((limit-cur)*w-1)/prev - elapsed
	} else {
		retry = (w - elapsed) + w - (limit*w-1)/cur
	}
	reset := start + w - now
	if cur > 0 {
		reset += w
	}
	return decision(false, limit, 0, retry, reset, 0, now)
}

// GiveBack gives nothing back: only the leaky bucket has requests that wait.
func (m *slidingCounter) GiveBack(Decision, int64) bool { return false }

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
