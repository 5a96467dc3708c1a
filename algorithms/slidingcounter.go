package algorithms

import _ "embed"

//go:embed lua/sliding_counter.lua
var slidingCounterLua string

var slidingCounterScript = newScript(slidingCounterLua)

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

func newSlidingCounter(p Policy) Model { return &slidingCounter{p: p} }

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
