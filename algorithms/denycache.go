package algorithms

import (
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultDenyCacheSize is how many identities a deny cache holds unless WithDenyCache
// says otherwise: about 100 bytes each.
const DefaultDenyCacheSize = 10_000

// denyCache remembers, per identity, the last denial Redis gave and until when it
// holds: the least recently used identity is forgotten first.
type denyCache struct {
	lru *lru.Cache[string, denial]
}

// denial is one Decision with Allowed false and the moment it holds from, on the clock
// of the check: the server's µs for AllowAt (virtual), a local monotonic µs for Allow,
// taken before the check was sent, so that it is never later than the server's
// decision.
type denial struct {
	d       Decision
	at      int64
	virtual bool
}

func newDenyCache(size int) *denyCache {
	c, _ := lru.New[string, denial](size) // size ≥ 1: WithDenyCache checked it
	return &denyCache{lru: c}
}

// monoStart is the origin of monoMicros.
var monoStart = time.Now()

// monoMicros is the local monotonic clock in µs.
func monoMicros() int64 { return time.Since(monoStart).Microseconds() }

// lookup answers a check of id at now from the cache: the denial that holds at now,
// counted down to now, if there is one.
func (c *denyCache) lookup(id string, now int64, virtual bool) (Decision, bool) {
	e, ok := c.lru.Get(id)
	if !ok || e.virtual != virtual {
		return Decision{}, false
	}
	dt := now - e.at
	if dt < 0 || dt >= e.d.RetryAfter.Microseconds() {
		return Decision{}, false
	}
	d := e.d
	step := time.Duration(dt) * time.Microsecond
	d.RetryAfter -= step
	d.ResetAfter = max(d.ResetAfter-step, d.RetryAfter)
	d.TimeMicros += dt
	return d, true
}

// add records d, a decision of id that Redis made for a check started at at.
func (c *denyCache) add(id string, d Decision, at int64, virtual bool) {
	if d.Allowed || d.RetryAfter <= 0 {
		return
	}
	c.lru.Add(id, denial{d: d, at: at, virtual: virtual})
}

// forget drops id's denial: its state improved (a slot was given back).
func (c *denyCache) forget(id string) { c.lru.Remove(id) }
