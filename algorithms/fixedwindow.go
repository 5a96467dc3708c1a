package algorithms

import (
	_ "embed"
	"math"
)

//go:embed lua/fixed_window.lua
var fixedWindowLua string

// fixedWindow counts requests in epoch-aligned windows of length W and admits while
// the count is below L. Two full windows back to back let 2L through in one W.
type fixedWindow struct {
	p     Policy
	start int64 // start of the counted window, µs; meaningful when count > 0
	count int64
}

func newFixedWindow(p Policy, _ options) model { return &fixedWindow{p: p} }

// loadFixedWindow reads the hash {w, n} that fixed_window.lua writes.
func loadFixedWindow(p Policy, _ options, c Content) (model, error) {
	f, err := hashFields(FixedWindow, c)
	if err != nil {
		return nil, err
	}
	m := &fixedWindow{p: p, start: f.int("w", 0, math.MaxInt64), count: f.int("n", 1, p.Limit)}
	if err := f.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// Allow decides a request at now.
func (m *fixedWindow) Allow(now int64) Decision {
	w := m.p.WindowMicros()
	start := now / w * w
	if m.start != start {
		m.count = 0
	}
	reset := start + w - now
	if m.count < m.p.Limit {
		m.start, m.count = start, m.count+1
		return decision(true, m.p.Limit, m.p.Limit-m.count, 0, reset, 0, now)
	}
	return decision(false, m.p.Limit, 0, reset, reset, 0, now)
}

// GiveBack gives nothing back: only the leaky bucket has requests that wait.
func (m *fixedWindow) GiveBack(Decision, int64) bool { return false }

func (m *fixedWindow) capacity() int64 { return m.p.Limit }

func (m *fixedWindow) peek(now int64) peek {
	w := m.p.WindowMicros()
	start := now / w * w
	if m.start != start || m.count == 0 {
		return peek{remaining: m.p.Limit, usedDen: 1}
	}
	return peek{remaining: max(0, m.p.Limit-m.count), usedNum: m.count, usedDen: 1, reset: start + w - now}
}
