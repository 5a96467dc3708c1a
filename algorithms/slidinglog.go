package algorithms

import (
	_ "embed"
	"fmt"
	"sort"
)

//go:embed lua/sliding_log.lua
var slidingLogLua string

// slidingLog keeps the time of every admitted request of the last W and admits while
// fewer than L are in (now-W, now]: exact, at the cost of memory in L.
type slidingLog struct {
	p     Policy
	times []int64 // admitted times, ascending
}

func newSlidingLog(p Policy, _ options) model { return &slidingLog{p: p} }

// loadSlidingLog reads the sorted set of admitted times that sliding_log.lua writes.
func loadSlidingLog(p Policy, _ options, c Content) (model, error) {
	if c.ZSet == nil {
		return nil, fmt.Errorf("%w: sliding-log state is a sorted set, this is %s", ErrBadState, c.kind())
	}
	m := &slidingLog{p: p, times: make([]int64, 0, len(c.ZSet))}
	for _, e := range c.ZSet {
		t := int64(e.Score)
		if e.Score < 0 || e.Score >= 1<<53 || float64(t) != e.Score {
			return nil, fmt.Errorf("%w: the score %v of %q is not a time in microseconds", ErrBadState, e.Score, truncate(e.Member, 40))
		}
		m.times = append(m.times, t)
	}
	sort.Slice(m.times, func(i, j int) bool { return m.times[i] < m.times[j] })
	return m, nil
}

// live is the admissions still in (now-W, now]: without those at or before now-W,
// as ZREMRANGEBYSCORE -inf now-W removes them.
func (m *slidingLog) live(now int64) []int64 {
	w := m.p.WindowMicros()
	return m.times[sort.Search(len(m.times), func(i int) bool { return m.times[i] > now-w }):]
}

// Allow decides a request at now.
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

// GiveBack gives nothing back: only the leaky bucket has requests that wait.
func (m *slidingLog) GiveBack(Decision, int64) bool { return false }

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
