package algorithms

import _ "embed"

//go:embed lua/fixed_window.lua
var fixedWindowLua string

var fixedWindowScript = newScript(fixedWindowLua)

// fixedWindow counts requests in epoch-aligned windows of length W and admits while
// the count is below L. Two full windows back to back let 2L through in one W.
type fixedWindow struct {
	p     Policy
	start int64 // start of the counted window, µs; meaningful when count > 0
	count int64
}

func newFixedWindow(p Policy) Model { return &fixedWindow{p: p} }

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
