package productapi

import (
	"sync"

	"github.com/ratelab/ratelab/algorithms"
)

// multiOptions are the options of one combined limiter of a policy file: the node's
// limiter options, batching with Limits.Batch, and the deny cache with
// Limits.DenyCache unless a leaky bucket is among the limits. Combined checks give
// nothing back today, but a leaky bucket's give-back, from any node, would improve
// its state, which no other node's cache would know: as for a single leaky bucket,
// its sets go without.
func (l Limits) multiOptions(opts []algorithms.Option, limits []algorithms.NamedLimit) []algorithms.Option {
	opts = append([]algorithms.Option(nil), opts...)
	if l.Batch {
		opts = append(opts, algorithms.WithBatching(0, 0))
	}
	if l.DenyCache {
		for _, nl := range limits {
			if nl.Algorithm == algorithms.LeakyBucket {
				return opts
			}
		}
		opts = append(opts, algorithms.WithDenyCache(0))
	}
	return opts
}

// policyStats keeps what the combined limiters of replaced policy files did, so that
// the node's counters never go back at a reload. Checks that finish on the replaced
// file after the swap are not counted.
type policyStats struct {
	mu      sync.Mutex
	retired algorithms.Stats
}

// counted is what a combined limiter that counts its checks has.
type counted interface{ Stats() algorithms.Stats }

// sum adds the stats of the set's combined limiters to s.
func (set *policySet) sum(s algorithms.Stats) algorithms.Stats {
	for _, rc := range set.rules {
		for _, l := range []MultiLimiter{rc.enforce, rc.shadow} {
			if c, ok := l.(counted); ok {
				t := c.Stats()
				s.Local, s.RedisCalls, s.RoundTrips = s.Local+t.Local, s.RedisCalls+t.RedisCalls, s.RoundTrips+t.RoundTrips
			}
		}
	}
	return s
}

// swap puts set in force and keeps the counts of the set it replaces.
func (p *Policies) swap(set *policySet) {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	if old := p.cur.Swap(set); old != nil {
		p.stats.retired = old.sum(p.stats.retired)
	}
}

// Stats counts what the policy files' combined limiters did since the node started:
// checks answered by their deny caches, script calls to Redis, round trips.
func (p *Policies) Stats() algorithms.Stats {
	p.stats.mu.Lock()
	defer p.stats.mu.Unlock()
	return p.cur.Load().sum(p.stats.retired)
}
