package algorithms

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultDenyCacheSize is how many identities a deny cache holds unless WithDenyCache
// says otherwise: about 100 bytes each (a combined check's, about 100 per limit).
const DefaultDenyCacheSize = 10_000

// deniable is what a deny cache holds: a Decision, or a combined check's
// MultiDecision.
type deniable[D any] interface {
	// retryAfter is how long the denial holds; 0 for an admission.
	retryAfter() time.Duration
	// countedDown is the denial dt µs later, as Redis would give it then if nothing
	// else happened to the identity meanwhile.
	countedDown(dt int64) D
}

// denyCache remembers, per identity, the last denial Redis gave and until when it
// holds: the least recently used identity is forgotten first.
type denyCache[D deniable[D]] struct {
	lru *lru.Cache[string, denial[D]]
}

// denial is one denial and the moment it holds from, on the clock of the check: the
// server's µs for AllowAt (virtual), a local monotonic µs for Allow, taken before the
// check was sent, so that it is never later than the server's decision.
type denial[D any] struct {
	d       D
	at      int64
	virtual bool
}

func newDenyCache[D deniable[D]](size int) *denyCache[D] {
	c, _ := lru.New[string, denial[D]](size) // size ≥ 1: WithDenyCache checked it
	return &denyCache[D]{lru: c}
}

// monoStart is the origin of monoMicros.
var monoStart = time.Now()

// monoMicros is the local monotonic clock in µs.
func monoMicros() int64 { return time.Since(monoStart).Microseconds() }

// lookup answers a check of id at now from the cache: the denial that holds at now,
// counted down to now, if there is one.
func (c *denyCache[D]) lookup(id string, now int64, virtual bool) (D, bool) {
	var zero D
	e, ok := c.lru.Get(id)
	if !ok || e.virtual != virtual {
		return zero, false
	}
	dt := now - e.at
	if dt < 0 || dt >= e.d.retryAfter().Microseconds() {
		return zero, false
	}
	return e.d.countedDown(dt), true
}

// add records d, a decision of id that Redis made for a check started at at; an
// admission is not recorded.
func (c *denyCache[D]) add(id string, d D, at int64, virtual bool) {
	if d.retryAfter() <= 0 {
		return
	}
	c.lru.Add(id, denial[D]{d: d, at: at, virtual: virtual})
}

// forget drops id's denial: its state improved (a slot was given back).
func (c *denyCache[D]) forget(id string) { c.lru.Remove(id) }

func (d Decision) retryAfter() time.Duration {
	if d.Allowed {
		return 0
	}
	return d.RetryAfter
}

// countedDown is a denial dt µs later: RetryAfter and ResetAfter shorter by dt (the
// reset never before the retry), the time dt later.
func (d Decision) countedDown(dt int64) Decision {
	step := time.Duration(dt) * time.Microsecond
	d.RetryAfter -= step
	d.ResetAfter = max(d.ResetAfter-step, d.RetryAfter)
	d.TimeMicros += dt
	return d
}
