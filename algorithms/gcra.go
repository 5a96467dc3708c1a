package algorithms

import _ "embed"

//go:embed lua/gcra.lua
var gcraLua string

var gcraScript = newScript(gcraLua)

// gcra keeps one number per identity, the theoretical arrival time (TAT) of the next
// request if requests came exactly every T = W/L. A request is admitted when it comes
// no more than (B-1)T before its TAT. It makes the token bucket's decisions in less state.
type gcra struct {
	p    Policy
	tat  int64 // whole microseconds of TAT
	frac int64 // the rest of TAT, in 1/L microseconds: 0 <= frac < L
	seen bool
}

func newGCRA(p Policy) Model { return &gcra{p: p} }

// diffAt is how far TAT is ahead of now, in 1/L µs; 0 when TAT has passed.
func (m *gcra) diffAt(now int64) int64 {
	if m.seen && m.tat >= now {
		return (m.tat-now)*m.p.Limit + m.frac
	}
	return 0
}

func (m *gcra) Allow(now int64) Decision {
	w, limit := m.p.WindowMicros(), m.p.Limit
	diff := m.diffAt(now)
	tau := (m.p.EffectiveBurst() - 1) * w
	if diff <= tau {
		next := diff + w
		m.tat, m.frac, m.seen = now+next/limit, next%limit, true
		return decision(true, limit, (m.p.EffectiveBurst()*w-next)/w, 0, cdiv(next, limit), 0, now)
	}
	return decision(false, limit, 0, cdiv(diff-tau, limit), cdiv(diff, limit), 0, now)
}
