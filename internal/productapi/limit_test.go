package productapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

// TestGlobalLimitAcrossNodes: three API servers sharing one Redis admit one client
// exactly the limit in total, whichever node each request reaches; three nodes with
// local limiters admit it three times over.
func TestGlobalLimitAcrossNodes(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			const limit = 5
			p := algorithms.Policy{Limit: limit, Window: time.Minute}
			var nodes []string
			for i := 0; i < 3; i++ {
				lim := newLimiter(t, b.Client, "global", algorithms.SlidingLog, p)
				nodes = append(nodes, serve(t, newAPI(t, productapi.Config{Limiter: lim}).Handler()).URL)
			}
			allowed := 0
			for i := 0; i < 30; i++ {
				code, h, _ := get(t, http.MethodGet, nodes[i%3]+"/products/1", nil)
				switch code {
				case http.StatusOK:
					allowed++
				case http.StatusTooManyRequests:
					if h.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
				default:
					t.Fatalf("request %d: status %d", i, code)
				}
			}
			if allowed != limit {
				t.Errorf("three nodes on one Redis admitted %d requests of one client; want the global limit %d", allowed, limit)
			}

			var local []string
			for i := 0; i < 3; i++ {
				lim, err := algorithms.NewLocal(algorithms.SlidingLog, p, nil)
				if err != nil {
					t.Fatal(err)
				}
				local = append(local, serve(t, newAPI(t, productapi.Config{Limiter: lim}).Handler()).URL)
			}
			allowed = 0
			for i := 0; i < 30; i++ {
				if code, _, _ := get(t, http.MethodGet, local[i%3]+"/products/1", nil); code == http.StatusOK {
					allowed++
				}
			}
			if allowed != 3*limit {
				t.Errorf("three nodes with local limiters admitted %d; want %d (the limit on each node)", allowed, 3*limit)
			}
		})
	}
}

// TestForwardedFor: X-Forwarded-For from an untrusted connection changes nothing,
// from a trusted proxy it names the client.
func TestForwardedFor(t *testing.T) {
	b := redistest.Embedded(t)
	lim := newLimiter(t, b.Client, "xff", algorithms.FixedWindow, algorithms.Policy{Limit: 1, Window: time.Hour})
	h := newAPI(t, productapi.Config{Limiter: lim, TrustedProxies: mustPrefixes(t, "10.0.0.0/8")}).Handler()

	// An untrusted client gets its one request, then spoofing anything is still itself.
	if w := do(h, "GET", "/products/1", "203.0.113.5:4000"); w.Code != http.StatusOK {
		t.Fatalf("first request: %d", w.Code)
	}
	for _, xff := range []string{"198.51.100.1", "198.51.100.2, 10.0.0.9", "garbage", "::1", strings.Repeat("1.2.3.4,", 500)} {
		if w := do(h, "GET", "/products/1", "203.0.113.5:4001", "X-Forwarded-For: "+xff); w.Code != http.StatusTooManyRequests {
			t.Errorf("spoofed X-Forwarded-For %q from an untrusted address: status %d; want 429 (same identity)", truncate(xff), w.Code)
		}
	}
	// Through a trusted proxy, the right-most untrusted address is the client.
	if w := do(h, "GET", "/products/1", "10.0.0.1:5000", "X-Forwarded-For: 203.0.113.9, 10.0.0.2"); w.Code != http.StatusOK {
		t.Errorf("new client via trusted proxies: %d; want 200", w.Code)
	}
	if w := do(h, "GET", "/products/1", "10.0.0.1:5000", "X-Forwarded-For: 1.1.1.1, 203.0.113.9"); w.Code != http.StatusTooManyRequests {
		t.Errorf("same client via a trusted proxy, spoofed left entry: %d; want 429", w.Code)
	}
	if w := do(h, "GET", "/products/1", "10.0.0.1:5000", "X-Forwarded-For: 203.0.113.5"); w.Code != http.StatusTooManyRequests {
		t.Errorf("the untrusted client seen through the proxy: %d; want 429 (its own identity)", w.Code)
	}
	// A malformed header from a trusted proxy is a clear 400.
	for _, xff := range []string{"not-an-ip", "203.0.113.9, unknown", strings.Repeat("1.2.3.4,", 100)} {
		w := do(h, "GET", "/products/1", "10.0.0.1:5000", "X-Forwarded-For: "+xff)
		if w.Code != http.StatusBadRequest {
			t.Errorf("malformed X-Forwarded-For %q from a trusted proxy: %d; want 400", truncate(xff), w.Code)
		}
		decodeError(t, w.Body.Bytes())
	}
}

func truncate(s string) string {
	if len(s) > 30 {
		return s[:30] + "…"
	}
	return s
}

// TestClientIP covers the address rules on their own.
func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := mustPrefixes(t, "10.0.0.0/8", "fd00::/8")
	tests := []struct {
		remote, xff, want string
		wantErr           bool
	}{
		{remote: "203.0.113.5:1", want: "203.0.113.5"},
		{remote: "203.0.113.5:1", xff: "1.2.3.4", want: "203.0.113.5"},
		{remote: "[::ffff:203.0.113.5]:1", want: "203.0.113.5"},
		{remote: "[2001:db8::1]:1", xff: "1.2.3.4", want: "2001:db8::1"},
		{remote: "10.0.0.1:1", want: "10.0.0.1"},
		{remote: "10.0.0.1:1", xff: "1.2.3.4", want: "1.2.3.4"},
		{remote: "10.0.0.1:1", xff: "1.2.3.4, 5.6.7.8", want: "5.6.7.8"},
		{remote: "10.0.0.1:1", xff: "1.2.3.4, 10.9.9.9", want: "1.2.3.4"},
		{remote: "10.0.0.1:1", xff: "10.1.1.1, 10.2.2.2", want: "10.1.1.1"},
		{remote: "10.0.0.1:1", xff: "[2001:db8::7]:443", want: "2001:db8::7"},
		{remote: "[fd00::1]:1", xff: "1.2.3.4:80", want: "1.2.3.4"},
		{remote: "10.0.0.1:1", xff: "unknown", wantErr: true},
		{remote: "10.0.0.1:1", xff: "1.2.3.4,,", wantErr: true},
		{remote: "bogus", wantErr: true},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		got, err := productapi.ClientIP(r, trusted)
		if (err != nil) != tt.wantErr || (err == nil && got.String() != tt.want) {
			t.Errorf("ClientIP(%s, XFF %q) = %v, %v; want %s (error %v)", tt.remote, tt.xff, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestRateLimitHeaders: allowed responses carry the headers; a denied one is a JSON 429
// with Retry-After, and waiting that long really succeeds.
func TestRateLimitHeaders(t *testing.T) {
	for _, b := range redistest.All(t) {
		for _, alg := range algorithms.Names() {
			t.Run(b.Name+"/"+alg, func(t *testing.T) {
				t.Parallel()
				p := algorithms.Policy{Limit: 2, Window: time.Second}
				lim := newLimiter(t, b.Client, "headers", alg, p)
				h := newAPI(t, productapi.Config{Limiter: lim}).Handler()
				remote := "192.0.2.1:1"
				// At once, so that the leaky bucket's queue fills too.
				ws := make([]*httptest.ResponseRecorder, 10)
				var wg sync.WaitGroup
				for i := range ws {
					wg.Go(func() { ws[i] = do(h, "GET", "/products/7", remote) })
				}
				wg.Wait()
				var denied *http.Response
				for i, w := range ws {
					for _, name := range []string{"RateLimit-Policy", "RateLimit", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
						if w.Header().Get(name) == "" {
							t.Errorf("response %d (%d) has no %s header", i, w.Code, name)
						}
					}
					wantOutcome := wire.CheckAllowed
					if w.Code == http.StatusTooManyRequests {
						wantOutcome = wire.CheckDenied
					}
					if took, outcome, ok := wire.ParseServerTiming(w.Header().Values("Server-Timing")); !ok || outcome != wantOutcome || took <= 0 {
						t.Errorf("response %d (%d): Server-Timing %q; want the check's duration and %q",
							i, w.Code, w.Header().Values("Server-Timing"), wantOutcome)
					}
					switch w.Code {
					case http.StatusOK:
						if w.Header().Get("Retry-After") != "" {
							t.Errorf("allowed response with Retry-After")
						}
					case http.StatusTooManyRequests:
						if denied != nil {
							continue
						}
						denied = w.Result()
						if msg := decodeError(t, w.Body.Bytes()); !strings.Contains(msg, "rate limit") {
							t.Errorf("429 body %q does not say rate limit", msg)
						}
						if got, want := w.Header().Get("RateLimit-Policy"), `"default";q=2;w=1;ratelab-window-ms=1000;ratelab-algorithm=`+alg; got != want {
							t.Errorf("RateLimit-Policy = %q; want %q", got, want)
						}
						if got := w.Header().Get("X-RateLimit-Remaining"); got != "0" {
							t.Errorf("denied X-RateLimit-Remaining = %q; want 0", got)
						}
					default:
						t.Fatalf("status %d", w.Code)
					}
				}
				if denied == nil {
					t.Fatalf("10 requests at once under 2/1s: none denied")
				}
				retry, err := strconv.Atoi(denied.Header.Get("Retry-After"))
				if err != nil || retry < 1 {
					t.Fatalf("Retry-After %q is not a positive number of seconds", denied.Header.Get("Retry-After"))
				}
				if got := denied.Header.Get("RateLimit"); got != fmt.Sprintf(`"default";r=0;t=%d`, retry) {
					t.Errorf("RateLimit = %q; want r=0 and t=Retry-After", got)
				}
				time.Sleep(time.Duration(retry) * time.Second)
				if w := do(h, "GET", "/products/7", remote); w.Code != http.StatusOK {
					t.Errorf("after waiting Retry-After (%ds): %d; want 200", retry, w.Code)
				}
			})
		}
	}
}

// TestRules: writes have their own, stricter limit; reads keep theirs.
func TestRules(t *testing.T) {
	b := redistest.Embedded(t)
	read := newLimiter(t, b.Client, "rules", algorithms.GCRA, algorithms.Policy{Limit: 100, Window: time.Minute})
	write := newLimiter(t, b.Client, "rules", algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Minute})
	h := newAPI(t, productapi.Config{Limiter: read, Rules: map[productapi.Class]algorithms.Limiter{productapi.ClassWrite: write}}).Handler()
	remote := "192.0.2.9:1"
	if w := do(h, "DELETE", "/products/3/cache", remote); w.Code != http.StatusOK {
		t.Fatalf("first write: %d %s", w.Code, w.Body)
	}
	w := do(h, "DELETE", "/products/3/cache", remote)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("second write: %d; want 429", w.Code)
	}
	if got := w.Header().Get("RateLimit-Policy"); got != `"write";q=1;w=60;ratelab-window-ms=60000;ratelab-algorithm=gcra` {
		t.Errorf("write RateLimit-Policy = %q", got)
	}
	for i := 0; i < 5; i++ {
		if w := do(h, "GET", "/products/3", remote); w.Code != http.StatusOK {
			t.Fatalf("read %d after writes were limited: %d", i, w.Code)
		}
	}
}

// TestLeakyBucketDelays: admitted requests beyond the first wait their turn.
func TestLeakyBucketDelays(t *testing.T) {
	b := redistest.Embedded(t)
	lim := newLimiter(t, b.Client, "leaky", algorithms.LeakyBucket, algorithms.Policy{Limit: 10, Window: time.Second, Burst: 5})
	h := newAPI(t, productapi.Config{Limiter: lim}).Handler()
	start := time.Now()
	for i := 0; i < 4; i++ {
		if w := do(h, "GET", "/products/1", "192.0.2.4:1"); w.Code != http.StatusOK {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	// 10/s leaks one request every 100ms: the fourth leaves about 300ms after the first.
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("four leaky-bucket requests at 10/s were served in %s; the queue did not delay them", took)
	}
}

// stuckLimiter answers only when its context ends: a Redis that hangs.
type stuckLimiter struct{ algorithms.Limiter }

func (stuckLimiter) Allow(ctx context.Context, _ string) (algorithms.Decision, error) {
	<-ctx.Done()
	return algorithms.Decision{}, ctx.Err()
}

// TestCheckTimeout: a check that hangs is cut at its budget. While no outage is
// declared, a slow check is a 503 with Retry-After whatever the fail mode (one slow
// answer is no evidence that Redis fails); once the probe confirms the outage, the
// fail mode decides. Server-Timing reports the whole budget.
func TestCheckTimeout(t *testing.T) {
	t.Parallel()
	inner, err := algorithms.NewLocal(algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const budget = 30 * time.Millisecond
	hang := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	for _, mode := range []productapi.FailMode{productapi.FailOpen, productapi.FailClosed} {
		h := newAPI(t, productapi.Config{Limiter: stuckLimiter{inner}, CheckTimeout: budget, OnLimiterError: mode,
			Health: hang, ProbeTimeout: 20 * time.Millisecond}).Handler()
		answer := func() (int, string) {
			w := do(h, "GET", "/products/1", "192.0.2.77:1")
			// Server-Timing tells a load generator the check failed, and how long it took.
			st, outcome, ok := wire.ParseServerTiming(w.Header().Values("Server-Timing"))
			// How closely the budget holds is TestStall's, with real faults. A 503 of
			// the node's own (no outage yet) says "timeout"; the fail mode's, "error".
			want := wire.CheckError
			if strings.Contains(w.Body.String(), "did not answer in time") {
				want = wire.CheckTimeout
			}
			if !ok || outcome != want || st < budget {
				t.Errorf("%s: Server-Timing %q; want the %s budget and desc %q", mode, w.Header().Values("Server-Timing"), budget, want)
			}
			if w.Code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
				t.Errorf("%s: 503 without Retry-After", mode)
			}
			return w.Code, w.Body.String()
		}
		if code, body := answer(); code != http.StatusServiceUnavailable || !strings.Contains(body, "did not answer in time") {
			t.Errorf("%s, first slow check: %d %s; want 503 (no outage declared yet)", mode, code, body)
		}
		want := http.StatusOK
		if mode == productapi.FailClosed {
			want = http.StatusServiceUnavailable
		}
		// The first failure started a probe that hangs too: the outage is declared
		// when it times out, and from then on the fail mode decides.
		var code int
		var body string
		for range 100 {
			if code, body = answer(); code == want && !strings.Contains(body, "did not answer in time") {
				break
			}
		}
		if code != want || strings.Contains(body, "did not answer in time") {
			t.Errorf("%s, after the probe failed: %d %s; want %d from the fail mode", mode, code, body, want)
		}
	}
}
