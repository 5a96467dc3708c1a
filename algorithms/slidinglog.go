package algorithms

import (
	_ "embed"
	"sort"
)

//go:embed lua/sliding_log.lua
var slidingLogLua string

var slidingLogScript = newScript(slidingLogLua)

// slidingLog keeps the time of every admitted request of the last W and admits while
// fewer than L are in (now-W, now]: exact, at the cost of memory in L.
type slidingLog struct {
	p     Policy
	times []int64 // admitted times, ascending
}

func newSlidingLog(p Policy) Model { return &slidingLog{p: p} }

// live is the admissions still in (now-W, now]: without those at or before now-W,
// as ZREMRANGEBYSCORE -inf now-W removes them.
func (m *slidingLog) live(now int64) []int64 {
	w := m.p.WindowMicros()
	return m.times[sort.Search(len(m.times), func(i int) bool { return m.times[i] > now-w }):]
}

func (m *slidingLog) Allow(now int64) Decision {
	w := m.p.WindowMicros()
	m.times = m.live(now)
	count := int64(len(m.times))
	if count < m.p.Limit {
		at := sort.Search(len(m.times), func(i int) bool { return m.times[i] > now })
		m.times = append(m.times, 0)
		copy(m.times[at+1:], m.times[at:])
		m.times[at] = now
		return decision(true, m.p.Limit, m.p.Limit-count-1, 0, w, 0, now)
	}
	frees := m.times[count-m.p.Limit]
	newest := m.times[count-1]
	return decision(false, m.p.Limit, 0, frees+w-now, newest+w-now, 0, now)
}
