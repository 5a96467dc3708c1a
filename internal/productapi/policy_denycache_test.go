package productapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

// cachedFile is the contract's free tier, and a pro tier whose limits include a
// leaky bucket (which gets no deny cache).
const cachedFile = `identity: ip
tiers:
  header: X-API-Key
  keys:
    key-pro-1: pro
  default: free
rules:
  - match: {method: GET, route: "/products/{id}", tier: free}
    limits:
      - {name: per-second, algorithm: token-bucket, limit: 10, window: 1s, burst: 20}
      - {name: per-hour, algorithm: sliding-log, limit: 50, window: 1h}
  - match: {method: GET, route: "/products/{id}", tier: pro}
    limits:
      - {name: queue, algorithm: leaky-bucket, limit: 2, window: 1s, burst: 2}
      - {name: per-hour, algorithm: gcra, limit: 30, window: 1h, burst: 30}
`

// policyNodeWith builds one node of file at clock with limits' Batch and DenyCache.
func policyNodeWith(t *testing.T, b redistest.Backend, prefix string, file *policy.Policy, clock *vclock, batch, deny bool) policyNode {
	t.Helper()
	reg := prometheus.NewRegistry()
	node, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
		Redis: redisFor(t, b), Keys: algorithms.MustKeyspace(prefix), Where: b.Name,
		Limits: productapi.Limits{File: file, Now: clock.now, Batch: batch, DenyCache: deny, MaxDelay: time.Nanosecond},
		API:    productapi.Config{Backend: productapi.NewBackend(0, 0), CheckTimeout: time.Minute, Registerer: reg},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	return policyNode{node: node, reg: reg, h: node.API.Handler()}
}

// TestPolicyDenyCacheHeaders: a node whose combined limiters batch and deny-cache
// answers a denied client's next requests itself, and each answer carries exactly
// the status, body, RateLimit-Policy, RateLimit, X-RateLimit-* and Retry-After that
// a node without them (on keys of its own, at the same virtual times) gets from
// Redis: denials by the per-second limit (retry within the second) and by the hour
// (Retry-After counting down over minutes). The local answers are counted in
// /metrics under algorithm "policy" beside the Redis calls; the pro tier's set, with
// a leaky bucket, is never answered locally; a reload keeps the counts.
func TestPolicyDenyCacheHeaders(t *testing.T) {
	file := mustPolicy(t, cachedFile)
	for _, b := range allPolicyBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := newClock()
			cached := policyNodeWith(t, b, "pcache", file, clock, true, true)
			plain := policyNodeWith(t, b, "pplain", file, clock, false, false)
			headers := []string{wire.HeaderRateLimitPolicy, wire.HeaderRateLimit, wire.HeaderRetryAfter,
				wire.HeaderXRateLimitLimit, wire.HeaderXRateLimitRemaining, wire.HeaderXRateLimitReset}
			denials := 0
			compare := func(step int, tier string) {
				t.Helper()
				var extra []string
				if tier == "pro" {
					extra = []string{"X-API-Key: key-pro-1"}
				}
				got := do(cached.h, http.MethodGet, "/products/1", "198.51.100.7:1000", extra...)
				want := do(plain.h, http.MethodGet, "/products/1", "198.51.100.7:1000", extra...)
				if got.Code != want.Code || got.Body.String() != want.Body.String() {
					t.Fatalf("%s request %d: %d %s; without the cache %d %s", tier, step, got.Code, got.Body, want.Code, want.Body)
				}
				for _, h := range headers {
					if g, w := got.Header().Values(h), want.Header().Values(h); len(g) != len(w) || (len(g) > 0 && g[0] != w[0]) {
						t.Fatalf("%s request %d: %s %q; without the cache %q", tier, step, h, g, w)
					}
				}
				if got.Code == http.StatusTooManyRequests {
					denials++
				}
			}
			// 30 at once: the burst admits 20, the per-second limit denies 10.
			for i := range 30 {
				compare(i, "free")
			}
			// Then one every 40ms for a minute: the bucket refills 10 a second (a
			// denial now and then, retry within 100ms), the hour fills at 50 and
			// denies the rest, its Retry-After counting down from about an hour.
			for i := range 1500 {
				clock.advance(40 * time.Millisecond)
				compare(30+i, "free")
			}
			freeDenials := denials
			freeLocal := cached.node.LimiterStats()["policy"].Local
			for i := range 40 {
				clock.advance(100 * time.Millisecond)
				compare(i, "pro")
			}
			if denials == freeDenials || cached.node.LimiterStats()["policy"].Local != freeLocal {
				t.Fatalf("pro tier: %d denials, %d answered locally; want denials, none local (a leaky bucket is among its limits)",
					denials-freeDenials, cached.node.LimiterStats()["policy"].Local-freeLocal)
			}
			local := sumByLabel(t, cached.reg, "ratelab_limiter_local_answers_total", "algorithm")["policy"]
			calls := sumByLabel(t, cached.reg, "ratelab_limiter_redis_calls_total", "algorithm")["policy"]
			plainCalls := sumByLabel(t, plain.reg, "ratelab_limiter_redis_calls_total", "algorithm")["policy"]
			if plainCalls != 1570 || local+calls != 1570 {
				t.Fatalf("/metrics: %v local + %v Redis calls with the cache, %v without; want 1570 checks each", local, calls, plainCalls)
			}
			// Every free-tier denial but the first of each run comes from the cache.
			if local < float64(freeDenials)/2 || local >= float64(freeDenials) {
				t.Fatalf("%v of %d free-tier denials answered locally", local, freeDenials)
			}
			t.Logf("%d free-tier denials, %v answered locally; %d pro denials", freeDenials, local, denials-freeDenials)
			s := cached.node.LimiterStats()["policy"]
			if float64(s.Local) != local || float64(s.RedisCalls) != calls || s.RoundTrips == 0 {
				t.Fatalf("node stats %+v; /metrics %v local, %v calls", s, local, calls)
			}
			if s := plain.node.LimiterStats()["policy"]; s.Local != 0 || s.RoundTrips != 0 {
				t.Fatalf("without batching and the cache: %+v", s)
			}
			// A reload builds new limiters; the counts carry over, they never go back.
			if err := cached.node.Policies().Reload(file); err != nil {
				t.Fatal(err)
			}
			if after := cached.node.LimiterStats()["policy"]; after != s {
				t.Fatalf("after a reload the stats are %+v, before %+v", after, s)
			}
		})
	}
}
