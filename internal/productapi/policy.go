package productapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/wire"
)

// A policy file's limits on a node: each request's rule is found by method, route
// and tier, its enforced limits are checked in one atomic call (algorithms.MultiRedis)
// and its shadow limits in a second one that never denies. Policies holds the loaded
// file and its limiters behind one atomic pointer, so a reload swaps them whole
// between two requests: a request in flight finishes under the set it started with.

// policyAlgorithm is the algorithm label of ratelab_http_requests_total (and of the
// check histogram) for requests decided by a policy file.
const policyAlgorithm = "policy"

// MultiLimiter checks every limit of a rule at once; *algorithms.MultiRedis is one.
type MultiLimiter interface {
	// Allow decides one request of identity against every limit.
	Allow(ctx context.Context, identity string) (algorithms.MultiDecision, error)
	// Limits are the limits, in order.
	Limits() []algorithms.NamedLimit
}

// Policies are a node's limits from a policy file, reloadable.
type Policies struct {
	cur      atomic.Pointer[policySet]
	build    func(*policy.Policy) (*policySet, error)
	reloaded atomic.Int64
	refused  atomic.Int64
	mu       sync.Mutex // one reload at a time
	stats    policyStats
}

// policySet is one loaded file with its limiters.
type policySet struct {
	file  *policy.Policy
	rules []ruleCheck // parallel to file.Rules
	ident Identifier
}

type ruleCheck struct {
	enforce, shadow MultiLimiter
	// policies are the RateLimit-Policy items of the enforced limits, made once.
	policies []wire.RateLimitPolicy
}

// Current is the loaded policy file.
func (p *Policies) Current() *policy.Policy { return p.cur.Load().file }

// Reload builds the limiters of file and puts them in force for the next request;
// on an error nothing changes and the file in force stays. A limit whose rule, name,
// algorithm and numbers are unchanged keeps its keys, and so its state.
func (p *Policies) Reload(file *policy.Policy) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	set, err := p.build(file)
	if err != nil {
		p.refused.Add(1)
		return err
	}
	p.swap(set)
	p.reloaded.Add(1)
	return nil
}

// ReloadFile reads the policy file at path and puts it in force (Reload); a file
// that cannot be read or is not valid is refused, counted, and the old one stays.
func (p *Policies) ReloadFile(path string) error {
	f, err := policy.Load(path)
	if err != nil {
		p.refused.Add(1)
		return err
	}
	return p.Reload(f)
}

// newPolicies builds the limiters of file for a node with Redis rdb under keys.
func newPolicies(rdb redis.UniversalClient, keys algorithms.Keyspace, cfg Config, limits Limits) (*Policies, error) {
	file, opts := limits.File, limits.options()
	if rdb == nil {
		return nil, errors.New("productapi: a policy file's limiters need Redis")
	}
	ps := &Policies{}
	ps.build = func(f *policy.Policy) (*policySet, error) {
		set := &policySet{file: f, rules: make([]ruleCheck, len(f.Rules))}
		set.ident = Identifier{TrustedProxies: cfg.TrustedProxies, IPv6Prefix: f.Identity.IPv6Prefix, APIKeys: cfg.APIKeys}
		switch f.Identity.Kind {
		case policy.IdentityAPIKey:
			set.ident.KeyBy = KeyByAPIKey
		default:
			set.ident.KeyBy = KeyByIP
		}
		if err := set.ident.check(); err != nil {
			return nil, fmt.Errorf("identity %s: %w", f.Identity.Kind, err)
		}
		for i := range f.Rules {
			r := &f.Rules[i]
			var rc ruleCheck
			for _, group := range []struct {
				limits []algorithms.NamedLimit
				into   *MultiLimiter
			}{{r.Enforced(), &rc.enforce}, {r.Shadowed(), &rc.shadow}} {
				if len(group.limits) == 0 {
					continue
				}
				m, err := algorithms.NewMultiRedis(rdb, keys, r.Name, group.limits, limits.multiOptions(opts, group.limits)...)
				if err != nil {
					return nil, fmt.Errorf("rule %s (line %d): %w", r.Name, r.Line, err)
				}
				*group.into = m
				if limits.Now != nil {
					*group.into = clocked{m, limits.Now}
				}
			}
			for _, l := range r.Enforced() {
				rc.policies = append(rc.policies, wire.RateLimitPolicy{
					Name: l.Name, Quota: l.Policy.Limit, Window: ceilSeconds(l.Policy.Window),
					WindowMillis: max(1, l.Policy.Window.Milliseconds()), Algorithm: l.Algorithm,
				})
			}
			set.rules[i] = rc
		}
		return set, nil
	}
	set, err := ps.build(file)
	if err != nil {
		return nil, err
	}
	ps.cur.Store(set)
	return ps, nil
}

// clocked decides at a clock of its own (a virtual one) instead of the server's TIME.
type clocked struct {
	*algorithms.MultiRedis
	now func() time.Time
}

func (c clocked) Allow(ctx context.Context, identity string) (algorithms.MultiDecision, error) {
	return c.AllowAt(ctx, identity, c.now())
}

// policyMetrics count what a policy file decided.
type policyMetrics struct {
	requests *prometheus.CounterVec
	shadow   *prometheus.CounterVec
}

func newPolicyMetrics(p *Policies) (*policyMetrics, []prometheus.Collector) {
	m := &policyMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelab_policy_requests_total",
			Help: "Requests decided by the policy file, by rule, tier, decision (allowed, denied, unlimited: the rule is, unmatched: no rule) and the limit that denied.",
		}, []string{"rule", "tier", "decision", "limit"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ratelab_policy_shadow_denials_total",
			Help: "Requests that a shadow limit would have denied (they were served), by rule, tier and the limit that would have denied.",
		}, []string{"rule", "tier", "limit"}),
	}
	info := prometheus.NewDesc("ratelab_policy_file_info", "The policy file in force: its SHA-256 (of the file and its keys file).", []string{"sha256"}, nil)
	reloads := prometheus.NewDesc("ratelab_policy_reloads_total", "Policy file reloads: result ok (in force) or refused (invalid; the old file stays).", []string{"result"}, nil)
	files := collectorFunc{
		descs: []*prometheus.Desc{info, reloads},
		collect: func(ch chan<- prometheus.Metric) {
			ch <- prometheus.MustNewConstMetric(info, prometheus.GaugeValue, 1, p.Current().Hash)
			ch <- prometheus.MustNewConstMetric(reloads, prometheus.CounterValue, float64(p.reloaded.Load()), "ok")
			ch <- prometheus.MustNewConstMetric(reloads, prometheus.CounterValue, float64(p.refused.Load()), "refused")
		},
	}
	return m, []prometheus.Collector{m.requests, m.shadow, files}
}

// policyLimited decides a request by the policy file in force.
func (a *API) policyLimited(set *policySet, route string, w http.ResponseWriter, r *http.Request, next http.HandlerFunc) {
	tier := set.file.TierOf(r.Header)
	i := set.file.MatchIndex(r.Method, r.URL.Path, tier)
	if i < 0 || set.file.Rules[i].Unlimited {
		decision, name := "unmatched", ""
		if i >= 0 {
			decision, name = decisionUnlimited, set.file.Rules[i].Name
		}
		a.policyMetrics.requests.WithLabelValues(name, tier, decision, "").Inc()
		a.metrics.requests.WithLabelValues(route, decisionUnlimited, "none").Inc()
		next(w, r)
		return
	}
	rule, rc := &set.file.Rules[i], set.rules[i]
	id, code, err := set.identity(r)
	if err != nil {
		a.metrics.requests.WithLabelValues(route, decisionRejected, policyAlgorithm).Inc()
		writeError(w, code, "%v", err)
		return
	}
	h := w.Header()
	d := algorithms.MultiDecision{Allowed: true, DeniedBy: -1}
	if rc.enforce != nil {
		var took time.Duration
		d, took, err = a.checkAll(r.Context(), rc.enforce, id)
		a.metrics.checkSeconds.WithLabelValues(policyAlgorithm).Observe(took.Seconds())
		h.Set(wire.HeaderServerTiming, wire.FormatServerTiming(took, outcomeOf(d, err)))
		if err != nil {
			if errors.Is(err, algorithms.ErrInvalidIdentity) {
				a.metrics.requests.WithLabelValues(route, decisionRejected, policyAlgorithm).Inc()
				writeError(w, http.StatusBadRequest, "%v", err)
				return
			}
			if r.Context().Err() != nil {
				return
			}
			a.limiterFailed(w, r, failedCheck{route: route, alg: policyAlgorithm, id: id, took: took, err: err}, next)
			return
		}
		a.outage.succeeded()
		setPolicyHeaders(h, rc.policies, d)
	}
	if rc.shadow != nil {
		a.shadowCheck(r.Context(), h, rule, tier, rc.shadow, id)
	}
	if !d.Allowed {
		denier := rc.enforce.Limits()[d.DeniedBy]
		a.policyMetrics.requests.WithLabelValues(rule.Name, tier, decisionDenied, denier.Name).Inc()
		a.metrics.requests.WithLabelValues(route, decisionDenied, policyAlgorithm).Inc()
		retry := ceilSeconds(d.RetryAfter)
		h.Set(wire.HeaderRetryAfter, strconv.FormatInt(retry, 10))
		writeJSON(w, http.StatusTooManyRequests, policyDeniedBody{
			Error:  "rate limit exceeded (" + denier.Name + "); retry after " + strconv.FormatInt(retry, 10) + "s",
			Status: http.StatusTooManyRequests, Rule: rule.Name, Limit: denier.Name,
			Algorithm: denier.Algorithm, Policy: denier.Policy.Describe(), RetryAfterSeconds: retry,
		})
		return
	}
	a.policyMetrics.requests.WithLabelValues(rule.Name, tier, decisionAllowed, "").Inc()
	a.metrics.requests.WithLabelValues(route, decisionAllowed, policyAlgorithm).Inc()
	if d.Delay > 0 {
		// A leaky bucket among the limits: the request leaves its queue after Delay.
		// A combined check gives nothing back when the client leaves meanwhile.
		t := time.NewTimer(d.Delay)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	next(w, r)
}

// shadowCheck decides the rule's shadow limits, counts and logs a would-be denial,
// and marks it in Server-Timing; it never denies, and its failure only logs.
func (a *API) shadowCheck(ctx context.Context, h http.Header, rule *policy.Rule, tier string, lim MultiLimiter, id string) {
	d, took, err := a.checkAll(ctx, lim, id)
	if err != nil {
		a.metrics.limiterErrs.WithLabelValues(policyAlgorithm + "-shadow").Inc()
		a.log.Warn("a shadow limit could not be checked", "rule", rule.Name, "took", took, "err", err)
		return
	}
	if h.Get(wire.HeaderServerTiming) == "" {
		h.Set(wire.HeaderServerTiming, wire.FormatServerTiming(took, wire.CheckAllowed))
	}
	if d.Allowed {
		h.Add(wire.HeaderServerTiming, wire.FormatShadowTiming(wire.CheckAllowed, ""))
		return
	}
	l := lim.Limits()[d.DeniedBy]
	a.policyMetrics.shadow.WithLabelValues(rule.Name, tier, l.Name).Inc()
	h.Add(wire.HeaderServerTiming, wire.FormatShadowTiming(wire.CheckDenied, l.Name))
	a.log.Info("a shadow limit would have denied this request", "rule", rule.Name, "tier", tier, "limit", l.Name,
		"algorithm", l.Algorithm, "policy", l.Policy.Describe(), slog.String("identity", id))
}

// checkAll is check (slots and budget) for a combined limiter.
func (a *API) checkAll(ctx context.Context, lim MultiLimiter, id string) (algorithms.MultiDecision, time.Duration, error) {
	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(a.cfg.CheckTimeout))
	defer cancel()
	if err := a.slots.acquire(ctx, start.Add(a.cfg.CheckTimeout/2)); err != nil {
		return algorithms.MultiDecision{}, time.Since(start), err
	}
	d, err := lim.Allow(ctx, id)
	took := time.Since(start)
	a.slots.release()
	return d, took, err
}

func outcomeOf(d algorithms.MultiDecision, err error) string {
	switch {
	case err != nil:
		return wire.CheckError
	case !d.Allowed:
		return wire.CheckDenied
	}
	return wire.CheckAllowed
}

// identity is the client's identity under the file's identity; code is the status
// of a request that cannot be identified.
func (s *policySet) identity(r *http.Request) (string, int, error) {
	switch s.file.Identity.Kind {
	case policy.IdentityHeader:
		name := s.file.Identity.Header
		v := r.Header.Get(name)
		if v == "" {
			return "", http.StatusUnauthorized, fmt.Errorf("%w: the %s header is missing", errIdentity, name)
		}
		id, err := algorithms.NormalizeIdentity(v)
		if err != nil {
			return "", http.StatusBadRequest, fmt.Errorf("%w: the %s header: %v", errIdentity, name, err)
		}
		return id, 0, nil
	case policy.IdentityAPIKey:
		if r.Header.Get(APIKeyHeader) == "" {
			return "", http.StatusUnauthorized, fmt.Errorf("%w: the %s header is missing", errIdentity, APIKeyHeader)
		}
	}
	id, err := s.ident.Identity(r)
	if err != nil {
		return "", http.StatusBadRequest, err
	}
	return id, 0, nil
}

// setPolicyHeaders writes RateLimit-Policy with every enforced limit of the rule,
// RateLimit (and the X-RateLimit-* headers) of the limit closest to denying: the one
// that denied, else the one with the fewest requests left.
func setPolicyHeaders(h http.Header, policies []wire.RateLimitPolicy, d algorithms.MultiDecision) {
	h.Set(wire.HeaderRateLimitPolicy, wire.FormatRateLimitPolicies(policies))
	i := d.Closest()
	l := d.Limits[i]
	reset := ceilSeconds(l.ResetAfter)
	if !l.Allowed {
		reset = ceilSeconds(l.RetryAfter)
	}
	h.Set(wire.HeaderRateLimit, wire.FormatRateLimit(wire.RateLimit{Name: policies[i].Name, Remaining: l.Remaining, Reset: reset}))
	h.Set(wire.HeaderXRateLimitLimit, strconv.FormatInt(l.Limit, 10))
	h.Set(wire.HeaderXRateLimitRemaining, strconv.FormatInt(l.Remaining, 10))
	h.Set(wire.HeaderXRateLimitReset, strconv.FormatInt(reset, 10))
}

// policyDeniedBody is the JSON of a 429 under a policy file.
type policyDeniedBody struct {
	Error             string `json:"error"`
	Status            int    `json:"status"`
	Rule              string `json:"rule"`
	Limit             string `json:"limit"`
	Algorithm         string `json:"algorithm"`
	Policy            string `json:"policy"`
	RetryAfterSeconds int64  `json:"retry_after_seconds"`
}
