package productapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
)

// giveBacks reads ratelab_limiter_give_backs_total by its returned label.
func giveBacks(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	return sumByLabel(t, reg, "ratelab_limiter_give_backs_total", "returned")
}

// TestLeakyBucketClientThatLeavesGivesItsSlotBack: a client that disconnects while
// its admitted request waits in the leaky bucket's queue gives its place back, so the
// next request fits where it would have been denied.
func TestLeakyBucketClientThatLeavesGivesItsSlotBack(t *testing.T) {
	// One request an hour, a queue of two: the first leaves at once, the second waits
	// an hour, a third does not fit.
	p := algorithms.Policy{Limit: 1, Window: time.Hour, Burst: 2}
	limiters := map[string]func(t *testing.T) algorithms.Limiter{
		"local": func(t *testing.T) algorithms.Limiter {
			l, err := algorithms.NewLocal(algorithms.LeakyBucket, p, nil, algorithms.WithMaxDelay(2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
	}
	for _, b := range redistest.All(t) {
		limiters[b.Name] = func(t *testing.T) algorithms.Limiter {
			l, err := algorithms.NewRedis(b.Client, algorithms.MustKeyspace("giveback"), algorithms.LeakyBucket, p, algorithms.WithMaxDelay(2*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
	}
	for name, newLim := range limiters {
		t.Run(name, func(t *testing.T) {
			lim := newLim(t)
			reg := prometheus.NewRegistry()
			a := newAPI(t, productapi.Config{Limiter: lim, Registerer: reg})
			srv := serve(t, a.Handler())
			if code, _, _ := get(t, http.MethodGet, srv.URL+"/products/1", nil); code != http.StatusOK {
				t.Fatalf("the first request: %d; want 200 at once", code)
			}
			// The second is admitted and waits; its client gives up once the node has
			// counted it as allowed (before the wait).
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/products/1", nil)
			done := make(chan error, 1)
			go func() {
				res, err := http.DefaultClient.Do(req)
				if err == nil {
					res.Body.Close()
				}
				done <- err
			}()
			waitFor(t, "the second request admitted", func() bool { return decisions(t, reg)["allowed"] == 2 })
			cancel()
			<-done
			waitFor(t, "its slot given back", func() bool { return giveBacks(t, reg)["true"] == 1 })
			// The queue holds one again: a request fits, with the wait the second had.
			d, err := lim.Allow(context.Background(), "127.0.0.1")
			if err != nil || !d.Allowed || d.Delay < 59*time.Minute {
				t.Fatalf("after the give-back: %+v, %v; want admitted with about an hour's wait", d, err)
			}
			d, err = lim.Allow(context.Background(), "127.0.0.1")
			if err != nil || d.Allowed {
				t.Fatalf("a fourth request: %+v, %v; want denied (the queue is full again)", d, err)
			}
		})
	}
}

// waitFor polls cond until it holds, failing after many tries; it orders the test's
// steps on what the node has done, not on time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i == 3000 {
			t.Fatalf("%s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLocalLimiterBoundInMetrics: a node's in-memory limiter holds at most
// Limits.MaxIdentities, and what it forgets is counted in /metrics.
func TestLocalLimiterBoundInMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	n, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
		Limits: productapi.Limits{
			Store: productapi.StoreLocal, MaxIdentities: 2,
			Default: productapi.Rule{Algorithm: algorithms.SlidingLog, Policy: algorithms.Policy{Limit: 5, Window: time.Hour}},
		},
		API: productapi.Config{Backend: productapi.NewBackend(0, 0), Registerer: reg},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		if w := do(n.API.Handler(), http.MethodGet, "/products/1", ip+":1234"); w.Code != http.StatusOK {
			t.Fatalf("%s: %d", ip, w.Code)
		}
	}
	if got := counterValue(t, reg, "ratelab_local_limiter_evictions_total"); got != 2 || n.LocalEvictions() != 2 {
		t.Fatalf("evictions: /metrics %v, node %d; want 2 of 4 identities over a bound of 2", got, n.LocalEvictions())
	}
}
