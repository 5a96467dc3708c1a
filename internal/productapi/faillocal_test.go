package productapi_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/faultproxy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

func TestSharePolicy(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   algorithms.Policy
		n    int
		want algorithms.Policy
	}{
		{algorithms.Policy{Limit: 10, Window: time.Second}, 3, algorithms.Policy{Limit: 4, Window: time.Second}},
		{algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}, 4, algorithms.Policy{Limit: 3, Window: time.Second, Burst: 5}},
		{algorithms.Policy{Limit: 10, Window: time.Second}, 1, algorithms.Policy{Limit: 10, Window: time.Second}},
		{algorithms.Policy{Limit: 10, Window: time.Second}, 0, algorithms.Policy{Limit: 10, Window: time.Second}},
		{algorithms.Policy{Limit: 2, Window: time.Second}, 5, algorithms.Policy{Limit: 1, Window: time.Second}},
	} {
		if got := productapi.SharePolicy(tt.in, tt.n); got != tt.want {
			t.Errorf("SharePolicy(%+v, %d) = %+v; want %+v", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestFailLocalNeedsLocalLimiter: fail mode local without an in-memory limiter is a
// configuration error, not a silent fail-open.
func TestFailLocalNeedsLocalLimiter(t *testing.T) {
	t.Parallel()
	lim, err := algorithms.NewLocal(algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = productapi.New(productapi.Config{Backend: productapi.NewBackend(0, 0), Limiter: lim, OnLimiterError: productapi.FailLocal})
	if err == nil {
		t.Fatal("fail mode local without Config.Local was accepted")
	}
}

// TestFailLocal: while Redis is unreachable (a fault proxy drops every connection),
// a node with fail mode local decides with its in-memory limiter at its share of the
// limit (ceil(4/2) = 2 of 4), says so in Server-Timing and /metrics, and hands back to
// Redis as soon as Redis answers again.
func TestFailLocal(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			conn := openConn(t, b)
			p, err := faultproxy.Listen("tcp", b.Addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Close() })
			via, err := conn.Via(p.Addr())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = via.Close() })
			reg := prometheus.NewRegistry()
			policy := algorithms.Policy{Limit: 4, Window: time.Minute}
			prefix := fmt.Sprintf("faillocal%d", time.Now().UnixNano())
			node, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
				Redis: conn.Client, LimiterRedis: via.Client, Keys: algorithms.MustKeyspace(prefix), Where: conn.Backend,
				Limits: productapi.Limits{Store: productapi.StoreRedis, Share: 2,
					Default: productapi.Rule{Algorithm: algorithms.SlidingLog, Policy: policy}},
				API: productapi.Config{Backend: productapi.NewBackend(0, 0), Registerer: reg,
					OnLimiterError: productapi.FailLocal, CheckTimeout: 5 * time.Second},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = node.Close() })
			h := node.API.Handler()
			ask := func(ip string) (int, string) {
				w := do(h, "GET", "/products/1", ip+":1")
				_, outcome, _ := wire.ParseServerTiming(w.Header().Values(wire.HeaderServerTiming))
				return w.Code, outcome
			}
			expect := func(ip string, code int, outcome string) {
				t.Helper()
				if c, o := ask(ip); c != code || o != outcome {
					t.Fatalf("%s: %d %q; want %d %q", ip, c, o, code, outcome)
				}
			}
			expect("192.0.2.1", http.StatusOK, wire.CheckAllowed)

			if err := p.Drop(); err != nil {
				t.Fatal(err)
			}
			expect("192.0.2.2", http.StatusOK, wire.CheckLocal)
			expect("192.0.2.2", http.StatusOK, wire.CheckLocal)
			expect("192.0.2.2", http.StatusTooManyRequests, wire.CheckLocal)

			if n := labelled(t, reg, "ratelab_limiter_fail_total", "mode", "local"); n != 3 {
				t.Errorf("ratelab_limiter_fail_total{mode=local} = %v; want 3", n)
			}
			if n := labelled(t, reg, "ratelab_http_requests_total", "decision", "local-denied"); n != 1 {
				t.Errorf("ratelab_http_requests_total{decision=local-denied} = %v; want 1", n)
			}
			if n := labelled(t, reg, "ratelab_http_requests_total", "decision", "local-allowed"); n != 2 {
				t.Errorf("ratelab_http_requests_total{decision=local-allowed} = %v; want 2", n)
			}
			if err := p.Heal(); err != nil {
				t.Fatal(err)
			}
			// Redis decides again: its own count for 192.0.2.2 is still 0 of 4. Until
			// then the local limiter decides: go-redis, after as many refused dials as
			// its pool has connections, answers with the last dial error until its
			// background redial (once a second) gets through.
			var code int
			var outcome string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				if code, outcome = ask("192.0.2.3"); outcome != wire.CheckLocal {
					break
				}
			}
			if code != http.StatusOK || outcome != wire.CheckAllowed {
				t.Fatalf("after Redis came back: %d %q; want 200 decided by Redis", code, outcome)
			}
		})
	}
}

// labelled sums the series of counter name whose label has value.
func labelled(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
