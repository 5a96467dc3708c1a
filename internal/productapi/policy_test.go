package productapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

// issueFile is the policy file of the contract (docs/policies.md), as written.
const issueFile = `identity: ip                # or api-key, or header:X-Client-Id
tiers:
  header: X-API-Key         # where the tier comes from
  keys:                     # key -> tier (or keys_file: path, one "key tier" a line)
    key-pro-1: pro
  default: free
rules:
  - match: {method: GET, route: "/products/{id}", tier: free}
    limits:
      - {name: per-second, algorithm: token-bucket, limit: 10, window: 1s, burst: 20}
      - {name: per-hour, algorithm: sliding-log, limit: 50, window: 1h}
  - match: {method: GET, route: "/products/{id}", tier: pro}
    limits:
      - {name: per-second, algorithm: gcra, limit: 100, window: 1s, burst: 200}
  - match: {method: PUT}
    shadow: true
    limits:
      - {name: writes, algorithm: fixed-window, limit: 5, window: 1m}
`

func mustPolicy(t *testing.T, file string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(file), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vclock is a virtual clock the test moves.
type vclock struct{ us atomic.Int64 }

func newClock() *vclock {
	c := &vclock{}
	c.us.Store(1_790_000_000_000_000)
	return c
}
func (c *vclock) now() time.Time          { return time.UnixMicro(c.us.Load()) }
func (c *vclock) advance(d time.Duration) { c.us.Add(d.Microseconds()) }

type policyNode struct {
	node *productapi.Node
	reg  *prometheus.Registry
	h    http.Handler
}

// policyNodes builds n nodes over Redis b with file, each with its own client, at clock.
func policyNodes(t *testing.T, b redistest.Backend, prefix string, file *policy.Policy, clock *vclock, n int) []policyNode {
	t.Helper()
	var out []policyNode
	for range n {
		var rdb redis.UniversalClient
		if b.Name == "cluster" {
			rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs, PoolTimeout: time.Minute})
		} else {
			rdb = redis.NewClient(&redis.Options{Addr: b.Addrs[0], PoolSize: 64, PoolTimeout: time.Minute})
		}
		t.Cleanup(func() { _ = rdb.Close() })
		reg := prometheus.NewRegistry()
		limits := productapi.Limits{File: file}
		if clock != nil {
			limits.Now = clock.now
		}
		node, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
			Redis: rdb, Keys: algorithms.MustKeyspace(prefix), Where: b.Name, Limits: limits,
			// Budgets no loaded machine reaches: these tests count decisions, and a
			// check that waited for a slot or a connection must not turn into a 503.
			API: productapi.Config{Backend: productapi.NewBackend(0, 0), CheckTimeout: 2 * time.Minute,
				MaxChecksInFlight: 1000, Registerer: reg},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = node.Close() })
		out = append(out, policyNode{node: node, reg: reg, h: node.API.Handler()})
	}
	return out
}

func allPolicyBackends(t *testing.T) []redistest.Backend {
	t.Helper()
	backends := redistest.All(t)
	if len(backends) > 1 {
		backends = append(backends, redistest.Cluster(t))
	}
	return backends
}

// TestPolicyMultiLimitExact: 1,000 concurrent requests from one client over 3 nodes
// under the free tier's 10/1s burst 20 and 50/1h admit exactly 20; driven over two
// hours, never more than 50 in any hour; and a request the hour denies leaves the
// per-second bucket exactly as it was.
func TestPolicyMultiLimitExact(t *testing.T) {
	for _, b := range allPolicyBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := newClock()
			nodes := policyNodes(t, b, "pexact", mustPolicy(t, issueFile), clock, 3)
			const ip = "10.20.30.40:5000"
			var admitted, denied atomic.Int64
			var wg sync.WaitGroup
			gate := make(chan struct{})
			for g := range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-gate
					w := do(nodes[g%3].h, "GET", "/products/1", ip)
					switch w.Code {
					case http.StatusOK:
						admitted.Add(1)
					case http.StatusTooManyRequests:
						denied.Add(1)
					default:
						t.Errorf("status %d: %s", w.Code, w.Body)
					}
				}()
			}
			close(gate)
			wg.Wait()
			if admitted.Load() != 20 || denied.Load() != 980 {
				t.Fatalf("%d admitted, %d denied at once; want exactly 20 (the burst) and 980", admitted.Load(), denied.Load())
			}
			start := clock.now()
			times := make([]time.Time, 20)
			for i := range times {
				times[i] = start
			}
			// One request every 30 seconds for two hours: the bucket never binds again,
			// the hour does (120 an hour asked, 50 admitted).
			var hourDenials int
			for i := 1; i <= 2*120+2; i++ {
				clock.advance(30 * time.Second)
				w := do(nodes[i%3].h, "GET", "/products/1", ip)
				switch w.Code {
				case http.StatusOK:
					times = append(times, clock.now())
				case http.StatusTooManyRequests:
					if !strings.Contains(w.Body.String(), `"limit":"per-hour"`) {
						t.Fatalf("request %d: denied by other than the hour: %s", i, w.Body)
					}
					hourDenials++
				default:
					t.Fatalf("request %d: status %d: %s", i, w.Code, w.Body)
				}
			}
			for i := range times {
				j := i
				for j < len(times) && times[j].Sub(times[i]) < time.Hour {
					j++
				}
				if j-i > 50 {
					t.Fatalf("%d admitted in the hour from +%s", j-i, times[i].Sub(start))
				}
			}
			if len(times) < 100 || hourDenials == 0 {
				t.Fatalf("%d admitted in two hours, %d hour denials; want the hour limit reached twice", len(times), hourDenials)
			}

			// State: the hour is full now (50 in the last hour); the bucket's hash must
			// not move on a denial.
			for len(times) > 0 && clock.now().Sub(times[len(times)-50]) >= time.Hour {
				clock.advance(30 * time.Second)
				if w := do(nodes[0].h, "GET", "/products/1", ip); w.Code == http.StatusOK {
					times = append(times, clock.now())
				}
			}
			rdb := redisFor(t, b)
			key := algorithms.MustKeyspace("pexact").RuleLimiter(algorithms.TokenBucket,
				algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}, "GET/products/id@free", "per-second", "10.20.30.40")
			before := rdb.HGetAll(context.Background(), key).Val()
			if len(before) == 0 {
				t.Fatalf("no state under %s", key)
			}
			clock.advance(time.Millisecond)
			w := do(nodes[1].h, "GET", "/products/1", ip)
			if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), `"limit":"per-hour"`) {
				t.Fatalf("want a denial by the hour: %d %s", w.Code, w.Body)
			}
			if after := rdb.HGetAll(context.Background(), key).Val(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("the hour's denial changed the per-second bucket: %v, then %v", before, after)
			}
			// The headers: both limits listed, the hour named as the one that binds.
			pol, err := wire.ParseRateLimitPolicy(w.Header().Values(wire.HeaderRateLimitPolicy))
			if err != nil || len(pol) != 2 || pol[0].Name != "per-second" || pol[0].Quota != 10 || pol[0].Window != 1 ||
				pol[1].Name != "per-hour" || pol[1].Quota != 50 || pol[1].Window != 3600 {
				t.Fatalf("RateLimit-Policy %q: %+v, %v", w.Header().Values(wire.HeaderRateLimitPolicy), pol, err)
			}
			rl, err := wire.ParseRateLimit(w.Header().Values(wire.HeaderRateLimit))
			if err != nil || len(rl) != 1 || rl[0].Name != "per-hour" || rl[0].Remaining != 0 {
				t.Fatalf("RateLimit %q: %+v, %v", w.Header().Values(wire.HeaderRateLimit), rl, err)
			}
			if w.Header().Get(wire.HeaderRetryAfter) == "" || w.Header().Get(wire.HeaderRetryAfter) == "0" {
				t.Fatalf("Retry-After %q", w.Header().Get(wire.HeaderRetryAfter))
			}
		})
	}
}

func redisFor(t *testing.T, b redistest.Backend) redis.UniversalClient {
	t.Helper()
	var rdb redis.UniversalClient
	if b.Name == "cluster" {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: b.Addrs[0]})
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// TestPolicyTiers: a pro key gets the pro limit, a free key and an unknown key the
// free (default) one, each under its own client address.
func TestPolicyTiers(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := newClock()
			n := policyNodes(t, b, "ptiers", mustPolicy(t, issueFile), clock, 1)[0]
			for _, c := range []struct {
				ip, key string
				want    int
				policy  string
			}{
				{"10.1.0.1:1", "key-pro-1", 200, `"per-second";q=100;w=1;ratelab-window-ms=1000;ratelab-algorithm=gcra`},
				{"10.1.0.2:1", "key-free-9", 20, `"per-second";q=10;w=1;ratelab-window-ms=1000;ratelab-algorithm=token-bucket, "per-hour";q=50;w=3600;ratelab-window-ms=3600000;ratelab-algorithm=sliding-log`},
				{"10.1.0.3:1", "", 20, ""},
			} {
				admitted := 0
				var lastPolicy string
				for range 300 {
					var w *httptest.ResponseRecorder
					if c.key != "" {
						w = do(n.h, "GET", "/products/2", c.ip, "X-API-Key: "+c.key)
					} else {
						w = do(n.h, "GET", "/products/2", c.ip)
					}
					if w.Code == http.StatusOK {
						admitted++
					}
					lastPolicy = w.Header().Get(wire.HeaderRateLimitPolicy)
				}
				if admitted != c.want {
					t.Errorf("key %q: %d admitted at once, want %d", c.key, admitted, c.want)
				}
				if c.policy != "" && lastPolicy != c.policy {
					t.Errorf("key %q: RateLimit-Policy %q, want %q", c.key, lastPolicy, c.policy)
				}
			}
			tiers := map[string]float64{"free": 0, "pro": 0}
			for tier := range tiers {
				tiers[tier] = testutil.ToFloat64(counter(t, n.reg, "ratelab_policy_requests_total", map[string]string{"tier": tier, "decision": "allowed"}))
			}
			if tiers["pro"] != 200 || tiers["free"] != 40 {
				t.Errorf("allowed by tier: %v; want pro 200, free 40", tiers)
			}
		})
	}
}

// TestPolicyShadow: a shadow rule denies nothing, and its would-be denials are
// counted exactly, marked in Server-Timing, and consume nothing.
func TestPolicyShadow(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			clock := newClock()
			n := policyNodes(t, b, "pshadow", mustPolicy(t, issueFile), clock, 1)[0]
			marked := 0
			for i := range 12 {
				r := httptestRequest("PUT", "/products/3", fmt.Sprintf(`{"price": %d}`, 10+i), "10.2.0.1:1", nil)
				w := newRecorder()
				n.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Fatalf("PUT %d: %d %s", i, w.Code, w.Body)
				}
				if o, limit, ok := wire.ParseShadowTiming(w.Header().Values(wire.HeaderServerTiming)); ok && o == wire.CheckDenied && limit == "writes" {
					marked++
				}
				if w.Header().Get(wire.HeaderRateLimitPolicy) != "" {
					t.Fatalf("a shadow limit was announced as enforced: %q", w.Header().Get(wire.HeaderRateLimitPolicy))
				}
			}
			got := testutil.ToFloat64(counter(t, n.reg, "ratelab_policy_shadow_denials_total", map[string]string{"rule": "PUT", "limit": "writes"}))
			if got != 7 || marked != 7 {
				t.Fatalf("%v shadow denials counted, %d marked; want exactly 7 of 12 under 5/1m", got, marked)
			}
			// The would-be denials consumed nothing: a minute on, 5 fit again, then not.
			clock.advance(time.Minute)
			for i := range 6 {
				r := httptestRequest("PUT", "/products/3", `{"price": 1}`, "10.2.0.1:1", nil)
				w := newRecorder()
				n.h.ServeHTTP(w, r)
				o, _, _ := wire.ParseShadowTiming(w.Header().Values(wire.HeaderServerTiming))
				if want := map[bool]string{true: wire.CheckAllowed, false: wire.CheckDenied}[i < 5]; o != want {
					t.Fatalf("PUT %d a minute on: shadow %q, want %q", i, o, want)
				}
			}
		})
	}
}

// counter finds one counter among a registry's metrics by name and labels.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
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
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

// TestPolicyReloadUnderLoad: while requests keep coming over real HTTP, the file is
// swapped 10 times, once to an invalid file: no request fails or is dropped, the
// invalid file is refused and the old one stays in force, each new file is in force
// from the next request, and a limit that did not change keeps its state.
func TestPolicyReloadUnderLoad(t *testing.T) {
	b := redistest.All(t)[0]
	const common = `
  - name: invalidate
    match: {method: DELETE}
    limits:
      - {name: daily, algorithm: fixed-window, limit: 1000, window: 24h}
`
	files := map[string]string{
		"a": `
rules:
  - name: products
    match: {method: GET, route: "/products/{id}"}
    limits:
      - {name: fast, algorithm: gcra, limit: 100000, window: 1s}
` + common,
		"b": `
rules:
  - name: products
    match: {method: GET, route: "/products/{id}"}
    limits:
      - {name: fast, algorithm: token-bucket, limit: 50000, window: 1s}
` + common,
		"bad": "rules:\n  - match: {method: GET}\n    limits: [{name: fast, algorithm: gcra, limit: -1, window: 1s}]\n",
	}
	dir := t.TempDir()
	paths := map[string]string{}
	for name, body := range files {
		paths[name] = filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(paths[name], []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, err := policy.Load(paths["a"])
	if err != nil {
		t.Fatal(err)
	}
	n := policyNodes(t, b, "preload", first, nil, 1)[0]
	srv := httptest.NewServer(n.h)
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	t.Cleanup(client.CloseIdleConnections)
	fetch := func(method, path string) *http.Response {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return nil
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res
	}
	for range 3 {
		fetch("DELETE", "/products/7/cache")
	}

	var sent, answered, failed atomic.Int64
	progress := make(chan struct{}, 1024)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				res := fetch("GET", fmt.Sprintf("/products/%d", 1+w))
				if res == nil {
					failed.Add(1)
					continue
				}
				answered.Add(1)
				if res.StatusCode != http.StatusOK {
					failed.Add(1)
					t.Errorf("status %d during reloads", res.StatusCode)
				}
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	algorithmOf := func() string {
		res := fetch("GET", "/products/9")
		if res == nil {
			return ""
		}
		p, err := wire.ParseRateLimitPolicy(res.Header.Values(wire.HeaderRateLimitPolicy))
		if err != nil || len(p) != 1 {
			t.Fatalf("RateLimit-Policy %q: %v", res.Header.Values(wire.HeaderRateLimitPolicy), err)
		}
		return p[0].Algorithm
	}
	order := []string{"b", "a", "b", "a", "bad", "b", "a", "b", "a", "b"}
	want := "gcra"
	for i, name := range order {
		// Requests are flowing: wait for a few to complete since the last swap.
		for range 8 {
			<-progress
		}
		err := n.node.Policies().ReloadFile(paths[name])
		if name == "bad" {
			if err == nil {
				t.Fatalf("swap %d: the invalid file was accepted", i)
			}
		} else {
			if err != nil {
				t.Fatalf("swap %d to %s: %v", i, name, err)
			}
			want = map[string]string{"a": "gcra", "b": "token-bucket"}[name]
		}
		if got := algorithmOf(); got != want {
			t.Fatalf("swap %d to %s: the next request was decided by %s, want %s", i, name, got, want)
		}
	}
	for range 8 {
		<-progress
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || sent.Load() != answered.Load() || answered.Load() < 80 {
		t.Fatalf("%d sent, %d answered, %d failed; want every one answered with 200", sent.Load(), answered.Load(), failed.Load())
	}
	// The unchanged limit kept its count through ten swaps: 3 before, this is the 4th.
	res := fetch("DELETE", "/products/7/cache")
	if got := res.Header.Get(wire.HeaderXRateLimitRemaining); got != "996" {
		t.Fatalf("daily limit after the swaps: %s left, want 996 (its state carried over)", got)
	}
	last, err := policy.Load(paths["b"])
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := n.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var hash string
	reloads := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "ratelab_policy_file_info":
				hash = m.GetLabel()[0].GetValue()
			case "ratelab_policy_reloads_total":
				reloads[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if hash != last.Hash || reloads["ok"] != 9 || reloads["refused"] != 1 {
		t.Fatalf("/metrics: file %s, reloads %v; want %s, ok 9, refused 1", hash, reloads, last.Hash)
	}
	t.Logf("%d requests answered during 10 swaps", answered.Load())
}

// TestPolicyNodeWriteTimeout: a node under a policy file allows for the longest
// leaky-bucket delay in its write timeout, since a reload may bring one.
func TestPolicyNodeWriteTimeout(t *testing.T) {
	b := redistest.Embedded(t)
	n := policyNodes(t, b, "pwt", mustPolicy(t, "rules: [{limits: unlimited}]\n"), nil, 1)[0]
	if got, want := n.node.Server.WriteTimeout, productapi.DefaultWriteTimeout+algorithms.MaxDelayCap; got != want {
		t.Fatalf("write timeout %s, want %s", got, want)
	}
}

// TestPolicyIdentities: header:NAME keys clients by the header's value (401 without
// it, 400 for a value that cannot name a key); api-key by the hashed X-API-Key, which
// never reaches Redis in clear.
func TestPolicyIdentities(t *testing.T) {
	b := redistest.Embedded(t)
	one := "rules:\n  - limits: [{name: s, algorithm: fixed-window, limit: 1, window: 1h}]\n"
	h := policyNodes(t, b, "pid", mustPolicy(t, "identity: header:X-Client-Id\n"+one), nil, 1)[0].h
	if w := do(h, "GET", "/products/1", "10.0.0.1:1"); w.Code != http.StatusUnauthorized {
		t.Fatalf("no X-Client-Id: %d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/products/1", "10.0.0.1:1", "X-Client-Id: a b{c}"); w.Code != http.StatusBadRequest {
		t.Fatalf("a bad X-Client-Id: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		client string
		want   int
	}{{"acme", 200}, {"acme", 429}, {"globex", 200}} {
		// Every request from one address: the header alone tells the clients apart.
		if w := do(h, "GET", "/products/1", "10.0.0.1:1", "X-Client-Id: "+c.client); w.Code != c.want {
			t.Fatalf("client %s: %d, want %d", c.client, w.Code, c.want)
		}
	}

	hasher, err := algorithms.NewAPIKeyHasher([]byte("a secret of at least sixteen bytes"))
	if err != nil {
		t.Fatal(err)
	}
	rdb := b.Client
	node, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
		Redis: rdb, Keys: algorithms.MustKeyspace("pkey"), Where: b.Name,
		Limits: productapi.Limits{File: mustPolicy(t, "identity: api-key\n"+one)},
		API:    productapi.Config{Backend: productapi.NewBackend(0, 0), APIKeys: hasher, Registerer: prometheus.NewRegistry()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	hk := node.API.Handler()
	if w := do(hk, "GET", "/products/1", "10.0.0.1:1"); w.Code != http.StatusUnauthorized {
		t.Fatalf("no X-API-Key: %d", w.Code)
	}
	if w := do(hk, "GET", "/products/1", "10.0.0.1:1", "X-API-Key: sk-live-secret-1"); w.Code != http.StatusOK {
		t.Fatalf("a key: %d %s", w.Code, w.Body)
	}
	if w := do(hk, "GET", "/products/1", "10.0.0.2:1", "X-API-Key: sk-live-secret-1"); w.Code != http.StatusTooManyRequests {
		t.Fatalf("the same key from elsewhere: %d, want 429", w.Code)
	}
	keys, err := rdb.Keys(context.Background(), "pkey:*").Result()
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], "sk-live") || !strings.Contains(keys[0], "{"+hasher.Identity("sk-live-secret-1")+"}") {
		t.Fatalf("keys %q, %v; want one, named by the hashed key", keys, err)
	}
	// Without a secret a file keyed by api-key is refused at build.
	_, err = productapi.NewNode(context.Background(), productapi.NodeConfig{
		Redis: rdb, Keys: algorithms.MustKeyspace("pkey"), Limits: productapi.Limits{File: mustPolicy(t, "identity: api-key\n"+one)},
		API: productapi.Config{Backend: productapi.NewBackend(0, 0), Registerer: prometheus.NewRegistry()},
	})
	if err == nil {
		t.Fatal("a node keyed by api-key was built without a secret")
	}
}
