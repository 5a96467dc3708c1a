package productapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/wire"
)

// The decision label of ratelab_http_requests_total.
const (
	decisionAllowed    = "allowed"
	decisionDenied     = "denied"
	decisionFailOpen   = "fail-open"
	decisionFailClosed = "fail-closed"
	decisionLocalAllow = "local-allowed" // the check failed; the node's in-memory limiter admitted
	decisionLocalDeny  = "local-denied"  // the check failed; the node's in-memory limiter refused
	decisionOverloaded = "overloaded"    // no check slot or pool connection in time: 503
	decisionTimeout    = "timeout"       // Redis did not answer in time, no outage declared: 503
	decisionUnlimited  = "unlimited"
	decisionRejected   = "rejected" // the client could not be identified
)

// limiterFor is the limiter of a class of routes: its rule, else the default, with
// the in-memory limiter that stands in for it with FailLocal.
func (a *API) limiterFor(c Class) (lim, local algorithms.Limiter, name string) {
	if l, ok := a.cfg.Rules[c]; ok && l != nil {
		return l, a.cfg.LocalRules[c], string(c)
	}
	return a.cfg.Limiter, a.cfg.Local, "default"
}

// limited puts the rate limiter in front of next.
func (a *API) limited(route string, class Class, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Policies != nil {
			a.policyLimited(a.cfg.Policies.cur.Load(), route, w, r, next)
			return
		}
		lim, local, policyName := a.limiterFor(class)
		if lim == nil {
			a.metrics.requests.WithLabelValues(route, decisionUnlimited, "none").Inc()
			next(w, r)
			return
		}
		alg := lim.Algorithm()
		id, err := a.ident.Identity(r)
		if err != nil {
			a.metrics.requests.WithLabelValues(route, decisionRejected, alg).Inc()
			code := http.StatusBadRequest
			if a.cfg.KeyBy == KeyByAPIKey && r.Header.Get(APIKeyHeader) == "" {
				code = http.StatusUnauthorized
			}
			writeError(w, code, "%v", err)
			return
		}
		d, took, err := a.check(r.Context(), lim, id)
		a.metrics.checkSeconds.WithLabelValues(alg).Observe(took.Seconds())
		setServerTiming(w.Header(), took, d, err)
		if err != nil {
			if errors.Is(err, algorithms.ErrInvalidIdentity) {
				a.metrics.requests.WithLabelValues(route, decisionRejected, alg).Inc()
				writeError(w, http.StatusBadRequest, "%v", err)
				return
			}
			if r.Context().Err() != nil {
				return // the client is gone; not Redis's fault
			}
			a.limiterFailed(w, r, failedCheck{route: route, alg: alg, policy: policyName, id: id, local: local, took: took, err: err}, next)
			return
		}
		a.outage.succeeded()
		setRateLimitHeaders(w.Header(), policyName, alg, lim.Policy(), d)
		if !d.Allowed {
			a.metrics.requests.WithLabelValues(route, decisionDenied, alg).Inc()
			retry := ceilSeconds(d.RetryAfter)
			w.Header().Set(wire.HeaderRetryAfter, strconv.FormatInt(retry, 10))
			writeJSON(w, http.StatusTooManyRequests, deniedBody{
				Error:             "rate limit exceeded; retry after " + strconv.FormatInt(retry, 10) + "s",
				Status:            http.StatusTooManyRequests,
				Algorithm:         alg,
				Policy:            lim.Policy().Describe(),
				RetryAfterSeconds: retry,
			})
			return
		}
		a.metrics.requests.WithLabelValues(route, decisionAllowed, alg).Inc()
		if d.Delay > 0 {
			// Leaky bucket: the request was admitted to the queue and leaves it after Delay.
			t := time.NewTimer(d.Delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				a.giveBack(r.Context(), lim, id, d)
				return
			case <-t.C:
			}
		}
		next(w, r)
	})
}

// giveBack returns the queue slot of an admitted request whose client left while it
// waited, so that a client that gives up does not keep its place (a request that has
// already left the queue is not returned: the limiter refuses, and that is counted).
// It runs once per Decision, under a budget of its own: the request's context is done.
func (a *API) giveBack(reqCtx context.Context, lim algorithms.Limiter, id string, d algorithms.Decision) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(reqCtx), a.cfg.CheckTimeout)
	defer cancel()
	returned, err := lim.GiveBack(ctx, id, d)
	a.metrics.giveBacks.WithLabelValues(lim.Algorithm(), strconv.FormatBool(returned && err == nil)).Inc()
}

// deniedBody is the JSON of a 429.
type deniedBody struct {
	Error             string `json:"error"`
	Status            int    `json:"status"`
	Algorithm         string `json:"algorithm"`
	Policy            string `json:"policy"`
	RetryAfterSeconds int64  `json:"retry_after_seconds"`
}

// limiterFailed decides a request whose check failed. Outside a declared outage, only
// a genuine Redis error gets the fail mode: a check that could not start for this
// node's own load, or one slow answer, is no evidence that Redis is failing, and a
// fail-open node must not serve it unlimited while Redis is healthy, so it is a 503
// with Retry-After. In a declared outage every failed check gets the fail mode.
func (a *API) limiterFailed(w http.ResponseWriter, r *http.Request, f failedCheck, next http.HandlerFunc) {
	route, alg, took, err := f.route, f.alg, f.took, f.err
	why := classify(err)
	if why != failOverload {
		a.metrics.limiterErrs.WithLabelValues(alg).Inc()
		a.outage.failed(err)
	}
	if why != failRedis && !a.outage.declared() {
		decision, outcome, msg := decisionOverloaded, wire.CheckOverloaded, "this server is overloaded and could not check the rate limit in time; retry later"
		if why == failTimeout {
			decision, outcome, msg = decisionTimeout, wire.CheckTimeout, "the rate limiter did not answer in time; retry later"
		}
		// Neither fail mode decided this: Server-Timing says what did, so that a client
		// counts it as the node failing, not as a fail-closed refusal.
		w.Header().Set(wire.HeaderServerTiming, wire.FormatServerTiming(took, outcome))
		a.metrics.requests.WithLabelValues(route, decision, alg).Inc()
		w.Header().Set(wire.HeaderRetryAfter, "1")
		writeError(w, http.StatusServiceUnavailable, "%s", msg)
		return
	}
	if a.cfg.OnLimiterError == FailLocal && f.local != nil {
		a.failLocal(w, r, f, next)
		return
	}
	if a.cfg.OnLimiterError == FailClosed {
		a.metrics.failModes.WithLabelValues(string(FailClosed)).Inc()
		a.metrics.requests.WithLabelValues(route, decisionFailClosed, alg).Inc()
		w.Header().Set(wire.HeaderRetryAfter, "1")
		writeError(w, http.StatusServiceUnavailable, "the rate limiter is unavailable and this server fails closed; retry later")
		return
	}
	a.metrics.failModes.WithLabelValues(string(FailOpen)).Inc()
	a.metrics.requests.WithLabelValues(route, decisionFailOpen, alg).Inc()
	next(w, r)
}

// failedCheck is a request whose limiter check failed: what limiterFailed needs to
// decide it.
type failedCheck struct {
	route, alg, policy, id string
	local                  algorithms.Limiter
	took                   time.Duration
	err                    error
}

// failLocal decides a request whose check failed with the node's in-memory limiter
// (FailLocal): admitted or refused as that limiter says, at the node's share of the
// limit, with the usual headers; Server-Timing says the local limiter decided.
func (a *API) failLocal(w http.ResponseWriter, r *http.Request, f failedCheck, next http.HandlerFunc) {
	a.metrics.failModes.WithLabelValues(string(FailLocal)).Inc()
	d, err := f.local.Allow(r.Context(), f.id)
	w.Header().Set(wire.HeaderServerTiming, wire.FormatServerTiming(f.took, wire.CheckLocal))
	if err != nil {
		// An in-memory limiter fails only for an identity it cannot hold: refuse, as
		// closed would, rather than serve unlimited.
		a.metrics.requests.WithLabelValues(f.route, decisionLocalDeny, f.alg).Inc()
		w.Header().Set(wire.HeaderRetryAfter, "1")
		writeError(w, http.StatusServiceUnavailable, "the rate limiter is unavailable and this node's own limiter failed too; retry later")
		return
	}
	setRateLimitHeaders(w.Header(), f.policy, f.alg, f.local.Policy(), d)
	if !d.Allowed {
		a.metrics.requests.WithLabelValues(f.route, decisionLocalDeny, f.alg).Inc()
		retry := ceilSeconds(d.RetryAfter)
		w.Header().Set(wire.HeaderRetryAfter, strconv.FormatInt(retry, 10))
		writeJSON(w, http.StatusTooManyRequests, deniedBody{
			Error:             "rate limit exceeded (this node's share, while the shared limiter is unavailable); retry after " + strconv.FormatInt(retry, 10) + "s",
			Status:            http.StatusTooManyRequests,
			Algorithm:         f.alg,
			Policy:            f.local.Policy().Describe(),
			RetryAfterSeconds: retry,
		})
		return
	}
	a.metrics.requests.WithLabelValues(f.route, decisionLocalAllow, f.alg).Inc()
	next(w, r)
}

// checkLocal checks that FailLocal has an in-memory limiter for every limiter.
func (cfg Config) checkLocal() error {
	if cfg.OnLimiterError != FailLocal {
		return nil
	}
	if cfg.Limiter != nil && cfg.Local == nil {
		return errors.New("productapi: fail mode local needs an in-memory limiter (Config.Local) beside the default limiter")
	}
	for c, l := range cfg.Rules {
		if l != nil && cfg.LocalRules[c] == nil {
			return fmt.Errorf("productapi: fail mode local needs an in-memory limiter (Config.LocalRules) for rule %s", c)
		}
	}
	return nil
}

// setRateLimitHeaders writes the IETF draft headers (draft-ietf-httpapi-ratelimit-headers),
// the policy with ratelab's exact window and algorithm (so hammer --target can check
// what a node enforces), and the older X-RateLimit-* ones. Reset is in seconds from now: until a denied
// request may retry, or until the client's state is fresh again.
func setRateLimitHeaders(h http.Header, name, algorithm string, p algorithms.Policy, d algorithms.Decision) {
	reset := ceilSeconds(d.ResetAfter)
	if !d.Allowed {
		reset = ceilSeconds(d.RetryAfter)
	}
	h.Set(wire.HeaderRateLimitPolicy, wire.FormatRateLimitPolicy(wire.RateLimitPolicy{
		Name: name, Quota: d.Limit, Window: ceilSeconds(p.Window),
		WindowMillis: max(1, p.Window.Milliseconds()), Algorithm: algorithm,
	}))
	h.Set(wire.HeaderRateLimit, wire.FormatRateLimit(wire.RateLimit{Name: name, Remaining: d.Remaining, Reset: reset}))
	h.Set(wire.HeaderXRateLimitLimit, strconv.FormatInt(d.Limit, 10))
	h.Set(wire.HeaderXRateLimitRemaining, strconv.FormatInt(d.Remaining, 10))
	h.Set(wire.HeaderXRateLimitReset, strconv.FormatInt(reset, 10))
}

// setServerTiming writes the limiter check's Server-Timing: how long it took and what
// it decided ("error" when it failed and the fail mode decided instead).
func setServerTiming(h http.Header, took time.Duration, d algorithms.Decision, err error) {
	outcome := wire.CheckAllowed
	switch {
	case err != nil:
		outcome = wire.CheckError
	case !d.Allowed:
		outcome = wire.CheckDenied
	}
	h.Set(wire.HeaderServerTiming, wire.FormatServerTiming(took, outcome))
}

// ceilSeconds rounds d up to whole seconds, at least 1 for any positive d.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
