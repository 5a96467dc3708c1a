package productapi_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

// TestDenyCacheInMetricsAndHeaders: a node with batching and the deny cache answers
// a denied client's next requests itself, counts them in /metrics beside its Redis
// calls, and writes the same Retry-After and RateLimit headers Redis's denial gave.
// The leaky bucket gets no deny cache: give-backs improve its state.
func TestDenyCacheInMetricsAndHeaders(t *testing.T) {
	p := algorithms.Policy{Limit: 2, Window: time.Hour}
	for _, b := range redistest.All(t) {
		for _, name := range []string{algorithms.FixedWindow, algorithms.LeakyBucket} {
			t.Run(b.Name+"/"+name, func(t *testing.T) {
				reg := prometheus.NewRegistry()
				n, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
					Redis: b.Client, Keys: algorithms.MustKeyspace("denycache"), Where: b.Name,
					Limits: productapi.Limits{Default: productapi.Rule{Algorithm: name, Policy: p}, Batch: true, DenyCache: true, MaxDelay: time.Millisecond},
					API:    productapi.Config{Backend: productapi.NewBackend(0, 0), Registerer: reg, CheckTimeout: 5 * time.Second},
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = n.Close() })
				var retry []int
				var limits []string
				for i := range 6 {
					w := do(n.API.Handler(), http.MethodGet, "/products/1", "192.0.2.77:1234")
					if w.Code == http.StatusOK {
						continue
					}
					if w.Code != http.StatusTooManyRequests {
						t.Fatalf("request %d: %d", i, w.Code)
					}
					r, err := strconv.Atoi(w.Header().Get("Retry-After"))
					if err != nil {
						t.Fatalf("request %d: Retry-After %q", i, w.Header().Get("Retry-After"))
					}
					retry, limits = append(retry, r), append(limits, w.Header().Get(wire.HeaderRateLimit))
				}
				local := sumByLabel(t, reg, "ratelab_limiter_local_answers_total", "algorithm")[name]
				calls := sumByLabel(t, reg, "ratelab_limiter_redis_calls_total", "algorithm")[name]
				want := 0.0
				if name != algorithms.LeakyBucket {
					want = float64(len(retry) - 1) // all denials but the first, which came from Redis
				}
				if local != want || local+calls != 6 {
					t.Fatalf("answered locally %v, Redis calls %v; want %v locally of 6", local, calls, want)
				}
				for i := 1; i < len(retry); i++ {
					// Later answers count down from Redis's: equal, or a second less across a second's edge.
					if retry[i] > retry[0] || retry[i] < retry[0]-1 || (retry[i] == retry[0] && limits[i] != limits[0]) {
						t.Errorf("denial %d: Retry-After %d, RateLimit %q; Redis's denial said %d, %q", i, retry[i], limits[i], retry[0], limits[0])
					}
				}
				if s := n.LimiterStats()[name]; float64(s.Local) != local || s.RoundTrips == 0 {
					t.Errorf("node stats %+v; /metrics %v local", s, local)
				}
			})
		}
	}
}
