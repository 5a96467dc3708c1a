package simulate

import (
	"cmp"
	"slices"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// Limits decides requests by a policy file in virtual time, as ratelab serve does
// with the file: each request goes to the first rule that matches its method, route
// and tier; the rule's enforced limits decide it together (algorithms.MultiModel,
// the composition the combined Lua script makes: admitted only if every limit
// admits, a denial consumes nothing), and its shadow limits, composed the same way,
// count what they would have denied without denying. State is per rule and
// identity, as the rule's keys in Redis are; figures are per rule and tier.
type Limits struct {
	file *policy.Policy
	// OnDecision, when set, sees every checked request: its rule's index, the
	// identity, and the decisions of the enforced and the shadow limits (nil when
	// the rule has none of that kind).
	OnDecision func(rule int, identity string, t int64, enforced, shadow *algorithms.MultiDecision)
	// Span is the time (µs) over which a client's rate is judged; 0 for the time
	// from the first request to the last. It is never less than a limit's window.
	Span      int64
	rules     []ruleState
	rows      map[rowKey]*row
	sent      int64
	first     int64
	last      int64
	unmatched int64
	// unidentified are requests without an identity serve accepts (an api-key
	// identity without a key, a client that is no identity): serve answers them 401
	// or 400 before any limit.
	unidentified int64
}

type ruleState struct {
	enforced, shadowed []algorithms.NamedLimit
	clients            map[string]*ruleClient
}

// ruleClient is one identity's state under one rule.
type ruleClient struct {
	enforce, shadow *algorithms.MultiModel
}

type rowKey struct {
	rule int
	tier string
}

// row counts one rule's requests of one tier.
type row struct {
	requests, allowed, denied, shadowDenied int64
	// deniedBy and shadowBy count the denials of each enforced and shadow limit.
	deniedBy, shadowBy []int64
	clients            map[string]*rowClient
	order              []string
}

type rowClient struct {
	requests, denied int64
	// peaks are the admitted requests' peaks for each enforced limit's window.
	peaks []scenario.PeakTracker
}

// NewLimits makes a simulation of file.
func NewLimits(file *policy.Policy) (*Limits, error) {
	l := &Limits{file: file, rows: map[rowKey]*row{}}
	for i := range file.Rules {
		r := &file.Rules[i]
		rs := ruleState{enforced: r.Enforced(), shadowed: r.Shadowed(), clients: map[string]*ruleClient{}}
		for _, group := range [][]algorithms.NamedLimit{rs.enforced, rs.shadowed} {
			if len(group) > 0 {
				if _, err := algorithms.NewMultiModel(group); err != nil {
					return nil, err
				}
			}
		}
		l.rules = append(l.rules, rs)
	}
	return l, nil
}

// Identity is who a request is to the file, normalised as serve does: the trace's
// client with identity ip (or a header, which a trace carries as its client field),
// the hashed API key with identity api-key; "" when it has none that serve would
// accept (it answers 401 or 400 before any limit).
func (l *Limits) Identity(r trace.Request) string {
	id := r.Client
	if l.file.Identity.Kind == policy.IdentityAPIKey {
		if r.Key == "" {
			return ""
		}
		id = trace.KeyIdentity(r.Key)
	}
	id, err := algorithms.NormalizeIdentity(id)
	if err != nil {
		return ""
	}
	return id
}

// Tier is a request's tier: its API key's through the file's tiers, else the
// trace's tier field, else the file's default ("" when the file has no tiers).
func (l *Limits) Tier(r trace.Request) string {
	switch {
	case l.file.Tiers == nil:
		return ""
	case r.Key != "":
		return l.file.Tiers.Of(r.Key)
	case r.Tier != "":
		return r.Tier
	}
	return l.file.Tiers.Default
}

// Add decides one request (its time not before the last one's).
func (l *Limits) Add(r trace.Request) {
	if l.sent == 0 {
		l.first = r.Time
	}
	l.sent++
	l.last = r.Time
	tier := l.Tier(r)
	i := l.file.MatchIndex(r.Method, r.Route, tier)
	if i < 0 {
		l.unmatched++
		return
	}
	rule := &l.file.Rules[i]
	rs := &l.rules[i]
	if rule.Unlimited {
		rw := l.row(i, tier)
		rw.requests++
		rw.allowed++
		return
	}
	id := l.Identity(r)
	if id == "" {
		l.unidentified++
		return
	}
	rw := l.row(i, tier)
	rw.requests++
	rc := rs.clients[id]
	if rc == nil {
		rc = &ruleClient{}
		// Checked in NewLimits.
		if len(rs.enforced) > 0 {
			rc.enforce, _ = algorithms.NewMultiModel(rs.enforced)
		}
		if len(rs.shadowed) > 0 {
			rc.shadow, _ = algorithms.NewMultiModel(rs.shadowed)
		}
		rs.clients[id] = rc
	}
	c := rw.clients[id]
	if c == nil {
		c = &rowClient{peaks: make([]scenario.PeakTracker, len(rs.enforced))}
		rw.clients[id] = c
		rw.order = append(rw.order, id)
	}
	c.requests++
	var enforced, shadow *algorithms.MultiDecision
	allowed := true
	if rc.enforce != nil {
		d := rc.enforce.Allow(r.Time)
		enforced, allowed = &d, d.Allowed
		if !d.Allowed {
			rw.deniedBy[d.DeniedBy]++
		}
	}
	if rc.shadow != nil {
		d := rc.shadow.Allow(r.Time)
		shadow = &d
		if !d.Allowed {
			rw.shadowDenied++
			rw.shadowBy[d.DeniedBy]++
		}
	}
	if allowed {
		rw.allowed++
		for k, lim := range rs.enforced {
			w := lim.Policy.WindowMicros()
			c.peaks[k].Add(r.Time, w, scenario.TenthOf(w))
		}
	} else {
		rw.denied++
		c.denied++
	}
	if l.OnDecision != nil {
		l.OnDecision(i, id, r.Time, enforced, shadow)
	}
}

func (l *Limits) row(rule int, tier string) *row {
	k := rowKey{rule, tier}
	rw := l.rows[k]
	if rw == nil {
		rs := &l.rules[rule]
		rw = &row{deniedBy: make([]int64, len(rs.enforced)), shadowBy: make([]int64, len(rs.shadowed)), clients: map[string]*rowClient{}}
		l.rows[k] = rw
	}
	return rw
}

// LimitsResult is what a policy file's simulation found.
type LimitsResult struct {
	// Requests are every request read; Unmatched those no rule matched (not limited);
	// Unidentified those without an identity serve accepts (an api-key identity
	// without a key, a client that is not a valid identity: serve answers 401 or 400).
	Requests, Unmatched, Unidentified int64
	// Clients are the identities that reached a limited rule.
	Clients     int
	First, Last int64
	// Rules are the rules' figures by tier, in the file's order, tiers sorted.
	Rules []RuleResult
}

// RuleResult is one rule's figures for one tier.
type RuleResult struct {
	// Rule is the rule's index in the file.
	Rule int
	Tier string
	// Requests are the rule's requests of the tier; Allowed and Denied what the
	// enforced limits decided (an unlimited rule admits all); ShadowDenied those a
	// shadow limit would have denied.
	Requests, Allowed, Denied, ShadowDenied int64
	Clients                                 int
	// DeniedBy are the denials of each enforced limit (Rule.Enforced's order), and
	// ShadowBy the would-be denials of each shadow limit (Rule.Shadowed's order).
	DeniedBy, ShadowBy []int64
	// WellBehavedRefused and AbuseAdmitted are Result's who-paid figures against the
	// rule's enforced limits: refused clients whose rate over the span was within
	// every limit (and their denials); clients over some limit's rate that got more
	// than its L in some window of it (and the most they got over an L). Nil for a
	// rule without enforced limits.
	WellBehavedRefused, AbuseAdmitted *Who
}

// Result sums up the simulation so far.
func (l *Limits) Result() LimitsResult {
	res := LimitsResult{Requests: l.sent, Unmatched: l.unmatched, Unidentified: l.unidentified, First: l.first, Last: l.last}
	keys := make([]rowKey, 0, len(l.rows))
	for k := range l.rows {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rowKey) int {
		return cmp.Or(cmp.Compare(a.rule, b.rule), cmp.Compare(a.tier, b.tier))
	})
	span := max(l.last-l.first, l.Span)
	for _, rs := range l.rules {
		res.Clients += len(rs.clients)
	}
	for _, k := range keys {
		rw, rs := l.rows[k], &l.rules[k.rule]
		rr := RuleResult{Rule: k.rule, Tier: k.tier, Requests: rw.requests, Allowed: rw.allowed, Denied: rw.denied,
			ShadowDenied: rw.shadowDenied, Clients: len(rw.clients),
			DeniedBy: slices.Clone(rw.deniedBy), ShadowBy: slices.Clone(rw.shadowBy)}
		if len(rs.enforced) > 0 {
			rr.WellBehavedRefused, rr.AbuseAdmitted = &Who{}, &Who{}
			for _, id := range rw.order {
				c := rw.clients[id]
				within, excess := true, int64(0)
				for i, lim := range rs.enforced {
					w := lim.Policy.WindowMicros()
					if c.requests*w > lim.Policy.Limit*max(span, w) {
						within = false
						excess = max(excess, c.peaks[i].InWindow-lim.Policy.Limit)
					}
				}
				switch {
				case within && c.denied > 0:
					rr.WellBehavedRefused.Clients++
					rr.WellBehavedRefused.Requests += c.denied
				case !within && excess > 0:
					rr.AbuseAdmitted.Clients++
					rr.AbuseAdmitted.Requests += excess
				}
			}
		}
		res.Rules = append(res.Rules, rr)
	}
	return res
}
