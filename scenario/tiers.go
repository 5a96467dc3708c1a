package scenario

import (
	"net/http"
	"slices"
	"sync"

	"github.com/ratelab/ratelab/internal/wire"
)

// TierTally counts a policy file's run per client tier and per limit, from what
// each answer's headers say: RateLimit-Policy names the enforced limits that decided
// the request, a 429's RateLimit names the limit that denied it, and the
// ratelimit-shadow metric of Server-Timing says that the rule's shadow limits were
// checked and which of them would have denied. Each simulated client keeps one tier.
// It is safe for concurrent use.
type TierTally struct {
	tierOf map[string]int // identity → index in tiers
	tiers  []tierShard
}

type tierShard struct {
	mu sync.Mutex
	TierCount
}

// TierCount is what the answers of one tier's clients said.
type TierCount struct {
	Tier string
	// Clients is how many simulated clients have the tier.
	Clients int
	// Requests are the answers; Admitted, Denied and Failed split them as the
	// target's classify does.
	Requests, Admitted, Denied, Failed int64
	// ShadowChecked are the answers whose rule's shadow limits were checked (they
	// carried the ratelimit-shadow metric), ShadowServed those of them that were
	// served, and ShadowDenied those a shadow limit would have denied.
	ShadowChecked, ShadowServed, ShadowDenied int64
	// DeniedUnnamed are denials whose answer named no limit (no RateLimit header).
	DeniedUnnamed int64
	// Limits are the limits the answers named, in the order first seen.
	Limits []LimitCount
}

// LimitCount is what the answers said of one limit.
type LimitCount struct {
	Name string
	// Shadow: the limit was named as a shadow limit (in ratelimit-shadow), never in
	// RateLimit-Policy.
	Shadow bool
	// Requests are the answers that listed the limit in RateLimit-Policy, and
	// Admitted those of them that were served.
	Requests, Admitted int64
	// DeniedBy are the 429s whose RateLimit named this limit: the one that denied.
	DeniedBy int64
	// ShadowDenied are the answers whose ratelimit-shadow metric named this limit
	// as the one that would have denied (the request was decided by the enforced
	// limits alone).
	ShadowDenied int64
}

// NewTierTally counts the answers of identities by tier: tierOf[i] indexes tiers
// for identities[i].
func NewTierTally(identities []string, tierOf []int, tiers []string) *TierTally {
	t := &TierTally{tierOf: make(map[string]int, len(identities)), tiers: make([]tierShard, len(tiers))}
	for i, name := range tiers {
		t.tiers[i].Tier = name
	}
	for i, id := range identities {
		t.tierOf[id] = tierOf[i]
		t.tiers[tierOf[i]].Clients++
	}
	return t
}

// count counts one answer to identity, classified as st, by its headers.
func (t *TierTally) count(identity string, st Status, h http.Header) {
	i, ok := t.tierOf[identity]
	if !ok {
		return // a warm-up's
	}
	policies, _ := wire.ParseRateLimitPolicy(h.Values(wire.HeaderRateLimitPolicy))
	var denier string
	if st == Denied {
		if rl, err := wire.ParseRateLimit(h.Values(wire.HeaderRateLimit)); err == nil && len(rl) > 0 {
			denier = rl[0].Name
		}
	}
	shadow, shadowLimit, shadowed := wire.ParseShadowTiming(h.Values(wire.HeaderServerTiming))

	sh := &t.tiers[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := &sh.TierCount
	c.Requests++
	switch st {
	case Allowed:
		c.Admitted++
	case Denied:
		c.Denied++
		if denier == "" {
			c.DeniedUnnamed++
		}
	default:
		c.Failed++
	}
	for _, p := range policies {
		l := c.limit(p.Name, false)
		l.Requests++
		if st == Allowed {
			l.Admitted++
		}
		if p.Name == denier {
			l.DeniedBy++
		}
	}
	if shadowed {
		c.ShadowChecked++
		if st == Allowed {
			c.ShadowServed++
		}
		if shadow == wire.CheckDenied {
			c.ShadowDenied++
			if shadowLimit != "" {
				c.limit(shadowLimit, true).ShadowDenied++
			}
		}
	}
}

// limit is the count of the limit named name, added when first seen.
func (c *TierCount) limit(name string, shadow bool) *LimitCount {
	for i := range c.Limits {
		if c.Limits[i].Name == name && c.Limits[i].Shadow == shadow {
			return &c.Limits[i]
		}
	}
	c.Limits = append(c.Limits, LimitCount{Name: name, Shadow: shadow})
	return &c.Limits[len(c.Limits)-1]
}

// Counts are the counts so far, a copy, one per tier in the order given.
func (t *TierTally) Counts() []TierCount {
	out := make([]TierCount, len(t.tiers))
	for i := range t.tiers {
		sh := &t.tiers[i]
		sh.mu.Lock()
		out[i] = sh.TierCount
		out[i].Limits = slices.Clone(sh.Limits)
		sh.mu.Unlock()
	}
	return out
}
