package algorithms

import (
	_ "embed"
	"fmt"
	"math"
	"strings"
)

//go:embed lua/gcra.lua
var gcraLua string

// gcra keeps one number per identity, the theoretical arrival time (TAT) of the next
// request if requests came exactly every T = W/L. A request is admitted when it comes
// no more than (B-1)T before its TAT. It makes the token bucket's decisions in less state.
type gcra struct {
	p    Policy
	tat  int64 // whole microseconds of TAT
	frac int64 // the rest of TAT, in 1/L microseconds: 0 <= frac < L
	seen bool
}

func newGCRA(p Policy, _ options) model { return &gcra{p: p} }

// loadGCRA reads the string "<tat>" or "<tat> <f>" that gcra.lua writes.
func loadGCRA(p Policy, _ options, c Content) (model, error) {
	if c.String == nil {
		return nil, fmt.Errorf("%w: gcra state is a string, \"<tat>\" or \"<tat> <f>\", this is %s", ErrBadState, c.kind())
	}
	tat, frac, hasFrac := strings.Cut(*c.String, " ")
	f := fields{hash: map[string]string{"tat": tat}}
	if hasFrac {
		f.hash["f"] = frac
	}
	m := &gcra{p: p, tat: f.int("tat", 0, math.MaxInt64), seen: true}
	if hasFrac {
		m.frac = f.int("f", 1, p.Limit-1)
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// diffAt is how far TAT is ahead of now, in 1/L µs; 0 when TAT has passed.
func (m *gcra) diffAt(now int64) int64 {
	if m.seen && m.tat >= now {
		return (m.tat-now)*m.p.Limit + m.frac
	}
	return 0
}

// Allow decides a request at now.
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

// GiveBack gives nothing back: only the leaky bucket has requests that wait.
func (m *gcra) GiveBack(Decision, int64) bool { return false }

func (m *gcra) capacity() int64 { return m.p.EffectiveBurst() }

func (m *gcra) peek(now int64) peek {
	w, limit := m.p.WindowMicros(), m.p.Limit
	diff := m.diffAt(now)
	return peek{remaining: max(0, m.p.EffectiveBurst()*w-diff) / w, usedNum: diff, usedDen: w, reset: cdiv(diff, limit)}
}
