package productapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
)

// node is one API server of a test's service.
type node struct {
	api   *productapi.API
	cache *cache.Cache
	url   string
	reg   *prometheus.Registry
}

// newNode starts one API server with its own cache on b under prefix.
func newNode(t *testing.T, b redistest.Backend, prefix string, cfg productapi.Config, copts cache.Options) node {
	t.Helper()
	copts.Keys = algorithms.MustKeyspace(prefix)
	c, err := cache.New(context.Background(), b.Client, copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	cfg.Cache, cfg.Registerer = c, reg
	a := newAPI(t, cfg)
	return node{api: a, cache: c, url: serve(t, a.Handler()).URL, reg: reg}
}

func decodeProduct(t *testing.T, body []byte) productapi.Product {
	t.Helper()
	var p productapi.Product
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("product JSON %q: %v", body, err)
	}
	return p
}

// TestStampedeOverNodes: 100 concurrent requests for one cold product over three
// nodes call the backend once.
func TestStampedeOverNodes(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			backend := productapi.NewBackend(300*time.Millisecond, 0)
			var ns []node
			for range 3 {
				ns = append(ns, newNode(t, b, "stampede", productapi.Config{Backend: backend}, cache.Options{}))
			}
			var wg sync.WaitGroup
			for i := range 100 {
				wg.Go(func() {
					code, h, body := get(t, "GET", ns[i%3].url+"/products/42", nil)
					if code != http.StatusOK || decodeProduct(t, body).ID != "42" {
						t.Errorf("request %d: %d %s (X-Cache %s)", i, code, body, h.Get("X-Cache"))
					}
				})
			}
			wg.Wait()
			if n := backend.Calls(); n != 1 {
				t.Errorf("100 concurrent requests for one cold id over 3 nodes: %d backend calls; want 1", n)
			}
			if n := counterValue(t, ns[0].reg, "ratelab_backend_calls_total"); n != 1 {
				t.Errorf("ratelab_backend_calls_total = %v; want 1", n)
			}
		})
	}
}

// counterValue gathers the first series of a counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestPutVisibleOnEveryNode: right after PUT returns, every node, local tier included,
// serves the new product.
func TestPutVisibleOnEveryNode(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			backend := productapi.NewBackend(0, 0)
			var ns []node
			for range 3 {
				ns = append(ns, newNode(t, b, "put", productapi.Config{Backend: backend}, cache.Options{LocalTTL: time.Hour}))
			}
			for round := range 3 {
				for _, n := range ns {
					get(t, "GET", n.url+"/products/5", nil)
					if _, h, _ := get(t, "GET", n.url+"/products/5", nil); h.Get("X-Cache") != "local" {
						t.Fatalf("warm read: X-Cache %q; want local", h.Get("X-Cache"))
					}
				}
				price := float64(10 + round)
				code, _, body := get(t, "PUT", ns[round].url+"/products/5", strings.NewReader(fmt.Sprintf(`{"price": %v}`, price)))
				if code != http.StatusOK {
					t.Fatalf("PUT: %d %s", code, body)
				}
				want := decodeProduct(t, body)
				for i, n := range ns {
					_, h, body := get(t, "GET", n.url+"/products/5", nil)
					if p := decodeProduct(t, body); p.Price != price || p.Version != want.Version {
						t.Errorf("round %d: node %d served price %v version %d (X-Cache %s) right after PUT; want %v version %d",
							round, i, p.Price, p.Version, h.Get("X-Cache"), price, want.Version)
					}
				}
			}
		})
	}
}

// TestFillRacingPut: a fill that read the product before a PUT does not put the old
// product back in the cache.
func TestFillRacingPut(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			backend := productapi.NewBackend(400*time.Millisecond, 0)
			a := newNode(t, b, "race", productapi.Config{Backend: backend}, cache.Options{LocalTTL: time.Hour})
			c := newNode(t, b, "race", productapi.Config{Backend: backend}, cache.Options{LocalTTL: time.Hour})
			done := make(chan struct{})
			go func() { defer close(done); get(t, "GET", a.url+"/products/8", nil) }()
			for backend.Calls() == 0 {
				time.Sleep(time.Millisecond)
			}
			code, _, body := get(t, "PUT", c.url+"/products/8", strings.NewReader(`{"name": "renamed"}`))
			if code != http.StatusOK {
				t.Fatalf("PUT: %d %s", code, body)
			}
			<-done
			for _, n := range []node{a, c, a, c} {
				_, h, body := get(t, "GET", n.url+"/products/8", nil)
				if p := decodeProduct(t, body); p.Name != "renamed" || p.Version != 2 {
					t.Errorf("after the PUT: %q version %d (X-Cache %s); the racing fill wrote the old product back", p.Name, p.Version, h.Get("X-Cache"))
				}
			}
		})
	}
}

// lockedBuffer collects logs from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRedisKilled: with Redis gone, fail-open keeps answering 200 within its budget
// and logs the outage once; fail-closed answers 503; with Redis back, limits apply
// again without a restart.
func TestRedisKilled(t *testing.T) {
	b := redistest.Standalone(t)
	backend := productapi.NewBackend(0, 0)
	p := algorithms.Policy{Limit: 3, Window: time.Minute}
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	const budget = 100 * time.Millisecond
	conn := openConn(t, b)
	health := productapi.RedisHealth(conn, algorithms.MustKeyspace("killed"))
	copts := cache.Options{RedisTimeout: budget}
	open := newNode(t, b, "killed", productapi.Config{Backend: backend, Logger: logger, CheckTimeout: budget, Health: health,
		Limiter: newLimiter(t, conn.Client, "killed", algorithms.SlidingLog, p), OnLimiterError: productapi.FailOpen}, copts)
	closed := newNode(t, b, "killed", productapi.Config{Backend: backend, CheckTimeout: budget, Health: health,
		Limiter: newLimiter(t, conn.Client, "killed", algorithms.SlidingLog, p), OnLimiterError: productapi.FailClosed}, copts)

	statuses := func(url string, n int) []int {
		var out []int
		for range n {
			code, _, _ := get(t, "GET", url+"/products/1", nil)
			out = append(out, code)
		}
		return out
	}
	if got := fmt.Sprint(statuses(open.url, 4)); got != "[200 200 200 429]" {
		t.Fatalf("before the outage: %s; want the limit of 3", got)
	}

	b.Server.Stop()
	for i := range 10 {
		start := time.Now()
		code, _, body := get(t, "GET", open.url+"/products/1", nil)
		if took := time.Since(start); code != http.StatusOK || took > 2*time.Second {
			t.Errorf("fail-open request %d with Redis down: %d in %s (%s); want 200 within the budget", i, code, took, body)
		}
		code, h, body := get(t, "GET", closed.url+"/products/1", nil)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
			t.Errorf("fail-closed request %d with Redis down: %d %s; want 503 with Retry-After", i, code, body)
		}
		decodeError(t, body)
	}
	if n := strings.Count(logs.String(), "rate limiter unavailable"); n != 1 {
		t.Errorf("the outage was logged %d times; want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "connect: connection refused") {
		t.Errorf("a raw Redis error reached the log:\n%s", logs.String())
	}
	if code, _, body := get(t, "GET", open.url+"/healthz", nil); code != http.StatusOK || !strings.Contains(string(body), "degraded") {
		t.Errorf("fail-open /healthz with Redis down: %d %s; want 200 degraded", code, body)
	}
	if code, _, _ := get(t, "GET", closed.url+"/healthz", nil); code != http.StatusServiceUnavailable {
		t.Errorf("fail-closed /healthz with Redis down: %d; want 503", code)
	}
	if failOpen := counterValue(t, open.reg, "ratelab_limiter_fail_total"); failOpen != 10 {
		t.Errorf("ratelab_limiter_fail_total{mode=open} = %v; want 10", failOpen)
	}

	if err := b.Server.Start(); err != nil {
		t.Fatal(err)
	}
	// The restarted Redis is empty: the client starts afresh, and the limit holds
	// again. The first requests may still meet pooled connections to the old server
	// and fail open (without rate-limit headers); the limiter's decisions are counted.
	var decided []int
	for i := 0; i < 100 && (len(decided) == 0 || decided[len(decided)-1] != http.StatusTooManyRequests); i++ {
		code, h, _ := get(t, "GET", open.url+"/products/1", nil)
		if h.Get("RateLimit") != "" {
			decided = append(decided, code)
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := fmt.Sprint(decided); got != "[200 200 200 429]" {
		t.Errorf("with Redis back, the limiter decided %s; want the limit of 3 again", got)
	}
	if got := fmt.Sprint(statuses(closed.url, 1)); got != "[429]" {
		t.Errorf("fail-closed node with Redis back: %s; want 429 (the same client, the same global limit)", got)
	}
	if !strings.Contains(logs.String(), "available again") {
		t.Errorf("the recovery was not logged:\n%s", logs.String())
	}
	// go-redis redials a pool whose every dial failed once a second, so the probe's
	// own pool may take that long to see the restarted server.
	var code int
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if code, _, body = get(t, "GET", open.url+"/healthz", nil); code == http.StatusOK && strings.Contains(string(body), `"status":"ok"`) {
			break
		}
	}
	if code != http.StatusOK || !strings.Contains(string(body), `"redis":"ok"`) || !strings.Contains(string(body), `"outage":false`) {
		t.Errorf("/healthz with Redis back: %d %s; want ok and no outage", code, body)
	}
}

// TestBadInput: invalid or huge ids, malformed headers and bodies are clear 4xx JSON
// errors, never a 500, and never become keys.
func TestBadInput(t *testing.T) {
	b := redistest.Embedded(t)
	lim := newLimiter(t, b.Client, "badinput", algorithms.TokenBucket, algorithms.Policy{Limit: 1000, Window: time.Second})
	c, err := cache.New(context.Background(), b.Client, cache.Options{Keys: algorithms.MustKeyspace("badinput")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	backend := productapi.NewBackend(0, 0)
	h := newAPI(t, productapi.Config{Backend: backend, Limiter: lim, Cache: c, TrustedProxies: mustPrefixes(t, "10.0.0.0/8")}).Handler()
	hasher, err := algorithms.NewAPIKeyHasher([]byte("the secret of TestBadInput"))
	if err != nil {
		t.Fatal(err)
	}
	apiKeyed := newAPI(t, productapi.Config{Backend: backend, Limiter: lim, Cache: c, KeyBy: productapi.KeyByAPIKey, APIKeys: hasher}).Handler()
	remote := "192.0.2.50:1"
	tests := []struct {
		name, method, target string
		handler              http.Handler
		headers              []string
		body                 string
		want                 int
	}{
		{name: "id with a space", method: "GET", target: "/products/a%20b", want: 400},
		{name: "id with braces", method: "GET", target: "/products/%7Bx%7D", want: 400},
		{name: "id with a colon", method: "GET", target: "/products/a:b", want: 400},
		{name: "id with a glob", method: "GET", target: "/products/*", want: 400},
		{name: "id with a NUL", method: "GET", target: "/products/a%00b", want: 400},
		{name: "non-ASCII id", method: "GET", target: "/products/%C3%A9", want: 400},
		{name: "huge id", method: "GET", target: "/products/" + strings.Repeat("9", 10000), want: 400},
		{name: "65-character id", method: "GET", target: "/products/" + strings.Repeat("a", 65), want: 400},
		{name: "unknown id", method: "GET", target: "/products/999999", want: 404},
		{name: "unknown id again (cached)", method: "GET", target: "/products/999999", want: 404},
		{name: "PUT unknown id", method: "PUT", target: "/products/nope", body: `{"price": 1}`, want: 404},
		{name: "PUT bad id", method: "PUT", target: "/products/a%2Fb", body: `{"price": 1}`, want: 400},
		{name: "PUT not JSON", method: "PUT", target: "/products/1", body: `price=1`, want: 400},
		{name: "PUT unknown field", method: "PUT", target: "/products/1", body: `{"colour": "red"}`, want: 400},
		{name: "PUT negative price", method: "PUT", target: "/products/1", body: `{"price": -5}`, want: 400},
		{name: "PUT huge body", method: "PUT", target: "/products/1", body: `{"name": "` + strings.Repeat("x", 100<<10) + `"}`, want: 413},
		{name: "DELETE cache bad id", method: "DELETE", target: "/products/%7B%7D/cache", want: 400},
		{name: "unknown route", method: "GET", target: "/nope", want: 404},
		{name: "wrong method", method: "POST", target: "/products/1", want: 405},
		{name: "malformed XFF from a trusted proxy", method: "GET", target: "/products/1", headers: []string{"X-Forwarded-For: 1.2.3.4, ::zz"}, want: 400},
		{name: "missing API key", method: "GET", target: "/products/1", handler: apiKeyed, want: 401},
		{name: "huge API key", method: "GET", target: "/products/1", handler: apiKeyed, headers: []string{"X-API-Key: " + strings.Repeat("k", 5000)}, want: 400},
		{name: "API key", method: "GET", target: "/products/1", handler: apiKeyed, headers: []string{"X-API-Key: s3cret {key}*"}, want: 200},
	}
	for _, tt := range tests {
		hh := tt.handler
		if hh == nil {
			hh = h
		}
		from := remote
		if strings.Contains(tt.name, "trusted proxy") {
			from = "10.0.0.1:1"
		}
		r := httptestRequest(tt.method, tt.target, tt.body, from, tt.headers)
		w := newRecorder()
		hh.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s: %d %s; want %d", tt.name, w.Code, w.Body, tt.want)
		}
		if w.Code >= 400 {
			decodeError(t, w.Body.Bytes())
		}
	}
	if n := backend.Calls(); n != 2 {
		t.Errorf("backend calls = %d; want 2 (the unknown id once, then negatively cached; product 1 once)", n)
	}
	for _, k := range b.Mini.Keys() {
		if strings.Contains(k, "s3cret") {
			t.Errorf("an API key reached a key name in clear: %s", k)
		}
		if !strings.HasPrefix(k, "badinput:rl:") && k != "badinput:product:{999999}" && k != "badinput:product:{1}" {
			t.Errorf("unexpected key %q", k)
		}
	}
}

// TestMetrics: /metrics exposes what the issue names.
func TestMetrics(t *testing.T) {
	b := redistest.Embedded(t)
	lim := newLimiter(t, b.Client, "metrics", algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Minute})
	n := newNode(t, b, "metrics", productapi.Config{Backend: productapi.NewBackend(0, 0), Limiter: lim}, cache.Options{LocalTTL: time.Minute})
	get(t, "GET", n.url+"/products/1", nil)
	get(t, "GET", n.url+"/products/1", nil)
	_, _, body := get(t, "GET", n.url+"/metrics", nil)
	for _, want := range []string{
		`ratelab_http_requests_total{algorithm="gcra",decision="allowed",route="GET /products/{id}"} 1`,
		`ratelab_http_requests_total{algorithm="gcra",decision="denied",route="GET /products/{id}"} 1`,
		`ratelab_limiter_check_seconds_count{algorithm="gcra"} 2`,
		`ratelab_cache_hits_total{tier="local"} 0`,
		`ratelab_cache_hits_total{tier="redis"} 0`,
		`ratelab_cache_misses_total 1`,
		`ratelab_backend_calls_total 1`,
		`ratelab_cache_fill_lock_waits_total 0`,
		`ratelab_limiter_outage 0`,
		`ratelab_limiter_outages_total 0`,
		`ratelab_limiter_checks_in_flight 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Two APIs on one registry collide; Close frees the names.
	if _, err := productapi.New(productapi.Config{Backend: productapi.NewBackend(0, 0), Registerer: n.reg}); err == nil {
		t.Error("a second API on the same registry: no error")
	}
	_ = n.api.Close()
	if _, err := productapi.New(productapi.Config{Backend: productapi.NewBackend(0, 0), Registerer: n.reg}); err != nil {
		t.Errorf("after Close, a new API on the registry: %v", err)
	}
}
