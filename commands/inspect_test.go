package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/report"
)

// backendsWithCluster are the backends of the inspect and flush suites: redis-server,
// a 3-master cluster and the embedded Redis (the real ones only where installed).
func backendsWithCluster(t *testing.T) []redistest.Backend {
	t.Helper()
	b := redistest.All(t)
	if len(b) > 1 {
		b = append(b, redistest.Cluster(t))
	}
	return b
}

// runInspect runs inspect as cmd does: options normalized, validated, then Inspect.
func runInspect(t *testing.T, opts commands.InspectOptions) (string, string, error) {
	t.Helper()
	ios, _, out, errOut := commands.TestIO()
	opts.Normalize()
	if err := opts.Validate(); err != nil {
		return "", "", err
	}
	err := commands.Inspect(context.Background(), opts, ios)
	return out.String(), errOut.String(), err
}

// inspectJSON inspects key as JSON and decodes the answer.
func inspectJSON(t *testing.T, b redistest.Backend, prefix, key string) report.InspectKey {
	t.Helper()
	out, errOut, err := runInspect(t, commands.InspectOptions{
		Global: commands.Global{RedisURL: b.URL(), Prefix: prefix}, Key: key, Output: "json"})
	if err != nil {
		t.Fatalf("inspect %s: %v (%s)", key, err, errOut)
	}
	var k report.InspectKey
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatalf("inspect %s: %v in %s", key, err, out)
	}
	return k
}

// serverTime is the Redis server's clock, in µs, from the master that holds key.
func serverTime(t *testing.T, rdb redis.UniversalClient, key string) int64 {
	t.Helper()
	ctx := context.Background()
	var tm time.Time
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		var m *redis.Client
		if m, err = cc.MasterForKey(ctx, key); err == nil {
			tm, err = m.Time(ctx).Result()
		}
	} else {
		tm, err = rdb.Time(ctx).Result()
	}
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMicro()
}

var inspectPolicies = map[string]algorithms.Policy{
	algorithms.FixedWindow:    {Limit: 10, Window: time.Second},
	algorithms.SlidingLog:     {Limit: 10, Window: time.Second},
	algorithms.SlidingCounter: {Limit: 10, Window: time.Second},
	algorithms.TokenBucket:    {Limit: 10, Window: time.Second, Burst: 20},
	algorithms.LeakyBucket:    {Limit: 10, Window: time.Second, Burst: 5},
	algorithms.GCRA:           {Limit: 7, Window: time.Second, Burst: 12},
}

// TestInspectDecodesEveryAlgorithm writes state with each algorithm's own script at
// known times just before the server's now, inspects the key (which decodes it at the
// server's TIME), and holds the numbers against the Decision the algorithm's model,
// fed the same requests, makes at that same moment.
func TestInspectDecodesEveryAlgorithm(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		for _, name := range algorithms.Names() {
			t.Run(b.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				keys := algorithms.MustKeyspace("insp")
				p := inspectPolicies[name]
				lim, err := algorithms.NewRedis(b.Client, keys, name, p)
				if err != nil {
					t.Fatal(err)
				}
				hasher, err := algorithms.NewAPIKeyHasher([]byte("the secret of this test"))
				if err != nil {
					t.Fatal(err)
				}
				for round, identity := range []string{"10.0.0.7", "2001:db8::7", hasher.Identity("secret"), "2001:db8::/64"} {
					key, _ := lim.Key(identity)
					model, _ := algorithms.NewModel(name, p)
					// 4, 9 and 14 requests 20 ms apart, the last at the server's now:
					// partly used, nearly full and over the limit.
					n := 4 + 5*round
					now := serverTime(t, b.Client, key)
					for i := 0; i < n; i++ {
						at := now - int64(n-1-i)*20_000
						got, err := lim.AllowAt(ctx, identity, time.UnixMicro(at))
						if err != nil {
							t.Fatal(err)
						}
						if want := model.Allow(at); got != want {
							t.Fatalf("request %d: script %+v, model %+v", i, got, want)
						}
					}
					k := inspectJSON(t, b, "insp", key)
					if k.Kind != algorithms.KindLimiter || k.Algorithm != name || k.Identity != identity || k.Policy != p.String() {
						t.Fatalf("decoded name: %+v", k)
					}
					if k.TTLMillis <= 0 || k.State == nil || k.TimeMicros < now {
						t.Fatalf("inspect %s: %+v", key, k)
					}
					s := *k.State
					d := model.Allow(k.TimeMicros)
					if d.Allowed != (s.Remaining > 0) ||
						(d.Allowed && (d.Remaining != s.Remaining-1 || d.Delay != s.Delay)) ||
						(!d.Allowed && (d.RetryAfter != s.RetryAfter || d.ResetAfter != s.ResetAfter)) {
						t.Fatalf("state %+v at %d; the model's decision at that moment is %+v", s, k.TimeMicros, d)
					}
					if !strings.HasPrefix(k.Summary, name+" "+p.Describe()+" for "+identity+": ") {
						t.Fatalf("summary %q", k.Summary)
					}
					left := fmt.Sprintf("%d left", s.Remaining)
					if s.Remaining == 0 {
						left = "none left"
					}
					if name != algorithms.TokenBucket && !strings.Contains(k.Summary, left) {
						t.Fatalf("summary %q does not say %q", k.Summary, left)
					}
					if name == algorithms.SlidingLog && s.Used != float64(min(n, 10)) {
						t.Errorf("used %v after %d requests", s.Used, n)
					}
					if name == algorithms.SlidingLog && len(k.ZSet) != min(n, 10) {
						t.Errorf("zset has %d members after %d requests", len(k.ZSet), n)
					}
					switch name {
					case algorithms.SlidingLog:
					case algorithms.GCRA:
						if k.Type != "string" || k.Value == nil || *k.Value == "" {
							t.Errorf("no raw string content: %+v", k)
						}
					default:
						if len(k.Hash) == 0 {
							t.Errorf("no raw hash content: %+v", k)
						}
					}
				}
			})
		}
	}
}

// TestInspectText shows the sentence for a fixed window, in the text output.
func TestInspectText(t *testing.T) {
	b := redistest.Embedded(t)
	ctx := context.Background()
	keys := algorithms.MustKeyspace("ratelab")
	lim, _ := algorithms.NewRedis(b.Client, keys, algorithms.FixedWindow, algorithms.Policy{Limit: 10, Window: time.Minute})
	for i := 0; i < 7; i++ {
		if _, err := lim.Allow(ctx, "10.0.0.7"); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := lim.Key("10.0.0.7")
	out, _, err := runInspect(t, commands.InspectOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: "ratelab"}, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type     hash", "fixed-window 10/1m for 10.0.0.7: 7 used, 3 left, window resets in ", "n=7 w="} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestInspectProduct shows a cached product's JSON and TTL, and whether its fill lock is held.
func TestInspectProduct(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("insp")
			doc := `{"id":"42","name":"Widget","price_cents":1999}`
			// As the cache's write.lua writes an entry: value, expiry (server ms), generation.
			nowMs := serverTime(t, b.Client, keys.Product("42")) / 1000
			b.Client.HSet(ctx, keys.Product("42"), "v", doc, "x", nowMs+30_000, "g", "3")
			if err := b.Client.PExpire(ctx, keys.Product("42"), time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			k := inspectJSON(t, b, "insp", keys.Product("42"))
			if k.Kind != algorithms.KindProduct || k.ProductID != "42" || k.Product == nil || k.Product.Value == nil ||
				*k.Product.Value != doc || k.Product.Generation != "3" || k.Product.ExpiresInMillis == nil ||
				*k.Product.ExpiresInMillis <= 0 || *k.Product.ExpiresInMillis > 30_000 ||
				k.TTLMillis <= 0 || k.TTLMillis > 60_000 || k.Lock == nil || k.Lock.Held {
				t.Fatalf("unlocked product: %+v %+v", k, k.Product)
			}
			if !strings.Contains(k.Summary, "product 42: cached, served for ") {
				t.Fatalf("summary %q", k.Summary)
			}
			if err := b.Client.Set(ctx, keys.ProductLock("42"), "node-a:1", 5*time.Second).Err(); err != nil {
				t.Fatal(err)
			}
			k = inspectJSON(t, b, "insp", keys.Product("42"))
			if !k.Lock.Held || k.Lock.Owner != "node-a:1" || k.Lock.TTLMillis <= 0 || k.Lock.Key != keys.ProductLock("42") ||
				!strings.Contains(k.Summary, "fill lock held") {
				t.Fatalf("locked product: %+v %+v", k, k.Lock)
			}
			// After an invalidation only the generation is left.
			b.Client.HSet(ctx, keys.Product("7"), "g", "4")
			b.Client.PExpire(ctx, keys.Product("7"), time.Minute)
			k = inspectJSON(t, b, "insp", keys.Product("7"))
			if k.Product == nil || k.Product.Value != nil || k.Product.ExpiresInMillis != nil || !strings.Contains(k.Summary, "invalidated") {
				t.Fatalf("invalidated product: %+v %+v", k, k.Product)
			}
			k = inspectJSON(t, b, "insp", keys.ProductLock("42"))
			if k.Kind != algorithms.KindLock || k.ProductID != "42" || k.Value == nil || *k.Value != "node-a:1" {
				t.Fatalf("lock: %+v", k)
			}
		})
	}
}

// TestInspectBadInput: a missing key, a foreign key, a key it cannot decode, a bad
// prefix and an unreachable Redis each get a clear message and their own exit status.
func TestInspectBadInput(t *testing.T) {
	b := redistest.All(t)[0]
	ctx := context.Background()
	keys := algorithms.MustKeyspace("ratelab")
	p := algorithms.Policy{Limit: 10, Window: time.Second}
	junkHash := keys.Limiter(algorithms.FixedWindow, p, "10.9.9.9")
	if err := b.Client.HSet(ctx, junkHash, "w", "0", "n", "lots").Err(); err != nil {
		t.Fatal(err)
	}
	wrongType := keys.Limiter(algorithms.TokenBucket, p, "10.9.9.9")
	if err := b.Client.Set(ctx, wrongType, "x", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	b.Client.Set(ctx, keys.Product("str"), "{}", time.Minute)
	g := commands.Global{RedisURL: b.URL(), Prefix: "ratelab"}
	cases := []struct {
		name string
		opts commands.InspectOptions
		code int
		want []string
	}{
		{"no such key", commands.InspectOptions{Global: g, Key: keys.Limiter(algorithms.GCRA, p, "10.0.0.1")}, commands.ExitMissing,
			[]string{"no such key", "expired"}},
		{"other prefix", commands.InspectOptions{Global: g, Key: "sessions:{abc}"}, commands.ExitForeign,
			[]string{"not a ratelab key", `not under the prefix "ratelab:"`, "--prefix"}},
		{"look-alike prefix", commands.InspectOptions{Global: g, Key: "ratelabx:rl:gcra:10r1s:{10.0.0.7}"}, commands.ExitForeign,
			[]string{"not a ratelab key"}},
		{"unknown algorithm", commands.InspectOptions{Global: g, Key: "ratelab:rl:magic:10r1s:{10.0.0.7}"}, commands.ExitUndecodable,
			[]string{"cannot decode", `"magic" is not an algorithm`, "ratelab writes"}},
		{"unknown kind", commands.InspectOptions{Global: g, Key: "ratelab:junk"}, commands.ExitUndecodable,
			[]string{"cannot decode"}},
		{"content not as written", commands.InspectOptions{Global: g, Key: junkHash}, commands.ExitUndecodable,
			[]string{"cannot decode", `n="lots" is not an integer`}},
		{"wrong type", commands.InspectOptions{Global: g, Key: wrongType}, commands.ExitUndecodable,
			[]string{"cannot decode", "token-bucket state is a hash, this is a string"}},
		{"product not a hash", commands.InspectOptions{Global: g, Key: keys.Product("str")}, commands.ExitUndecodable,
			[]string{"cannot decode", "a cached product is a hash"}},
		{"empty prefix", commands.InspectOptions{Global: commands.Global{RedisURL: b.URL()}}, commands.ExitUsage,
			[]string{"prefix is empty"}},
		{"wildcard prefix", commands.InspectOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: "*"}}, commands.ExitUsage,
			[]string{"glob characters"}},
		{"bad output", commands.InspectOptions{Global: g, Output: "xml"}, commands.ExitUsage, []string{"inspect writes table or json"}},
		{"markdown", commands.InspectOptions{Global: g, Output: "markdown"}, commands.ExitUsage, []string{`--output "markdown"`, "table or json"}},
		{"key and identity", commands.InspectOptions{Global: g, Key: junkHash, Identity: "10.0.0.7"}, commands.ExitUsage, []string{"not both"}},
		{"unreachable", commands.InspectOptions{Global: commands.Global{RedisURL: "redis://127.0.0.1:1", Prefix: "ratelab"}}, commands.ExitFailure,
			[]string{"cannot reach Redis", "connection refused", "start redis-server"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runInspect(t, tc.opts)
			if got := commands.ExitCode(err); got != tc.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

// TestInspectIdentity lists every limiter key of one identity, and only those.
func TestInspectIdentity(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("ident")
			want := map[string]bool{}
			for _, name := range algorithms.Names() {
				lim, _ := algorithms.NewRedis(b.Client, keys, name, algorithms.Policy{Limit: 5, Window: time.Minute})
				for _, id := range []string{"10.0.0.7", "10.0.0.70", "10.0.0.8"} {
					if _, err := lim.Allow(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
				k, _ := lim.Key("10.0.0.7")
				want[k] = true
			}
			out, _, err := runInspect(t, commands.InspectOptions{
				Global: commands.Global{RedisURL: b.URL(), Prefix: "ident"}, Identity: "10.0.0.7", Output: "json"})
			if err != nil {
				t.Fatal(err)
			}
			var r report.InspectIdentity
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if len(r.Keys) != len(want) {
				t.Fatalf("%d keys, want %d: %+v", len(r.Keys), len(want), r.Keys)
			}
			for _, k := range r.Keys {
				if !want[k.Key] || k.State == nil || k.State.Remaining != 4 {
					t.Errorf("unexpected %+v", k)
				}
			}
			out, _, err = runInspect(t, commands.InspectOptions{
				Global: commands.Global{RedisURL: b.URL(), Prefix: "ident"}, Identity: "10.0.0.9"})
			if err != nil || !strings.Contains(out, "no limiter keys for 10.0.0.9") {
				t.Fatalf("%v %q", err, out)
			}
		})
	}
}

// TestInspectSummary counts keys per kind and algorithm, estimates memory from a
// sample, and names loudly the keys without a TTL.
func TestInspectSummary(t *testing.T) {
	for _, b := range backendsWithCluster(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("summ")
			for _, name := range []string{algorithms.GCRA, algorithms.SlidingLog} {
				lim, _ := algorithms.NewRedis(b.Client, keys, name, algorithms.Policy{Limit: 5, Window: time.Minute})
				for i := 0; i < 40; i++ {
					if _, err := lim.Allow(ctx, fmt.Sprintf("10.2.0.%d", i)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := 0; i < 5; i++ {
				b.Client.Set(ctx, keys.Product(fmt.Sprint(i)), `{"id":1}`, time.Minute)
			}
			b.Client.Set(ctx, "summ:product:{leaky}", "never expires", 0)
			b.Client.Set(ctx, "summ:oops", "undecodable", time.Minute)
			b.Client.Set(ctx, "summx:product:{1}", "look-alike", 0)
			run := func(sample int) report.InspectSummary {
				out, _, err := runInspect(t, commands.InspectOptions{
					Global: commands.Global{RedisURL: b.URL(), Prefix: "summ"}, Output: "json", MemorySample: sample})
				if err != nil {
					t.Fatal(err)
				}
				var s report.InspectSummary
				if err := json.Unmarshal([]byte(out), &s); err != nil {
					t.Fatal(err)
				}
				return s
			}
			s := run(0)
			if s.Keys != 87 || s.ByKind["rl"] != 80 || s.ByKind["product"] != 6 || s.ByKind["undecodable"] != 1 ||
				s.ByAlgorithm[algorithms.GCRA] != 40 || s.ByAlgorithm[algorithms.SlidingLog] != 40 {
				t.Fatalf("counts: %+v", s)
			}
			if s.WithoutTTL != 1 || len(s.WithoutTTLKeys) != 1 || s.WithoutTTLKeys[0] != "summ:product:{leaky}" {
				t.Fatalf("keys without TTL: %+v", s)
			}
			if s.MemoryBytes <= 0 || s.MemoryEstimated || s.MemorySampled != 87 {
				t.Fatalf("memory: %+v", s)
			}
			sampled := run(10)
			if !sampled.MemoryEstimated || sampled.MemorySampled != 10 || sampled.MemoryBytes <= 0 {
				t.Fatalf("sampled memory: %+v", sampled)
			}
			t.Logf("memory %d B exact, %d B estimated from 10 keys", s.MemoryBytes, sampled.MemoryBytes)
			out, _, err := runInspect(t, commands.InspectOptions{Global: commands.Global{RedisURL: b.URL(), Prefix: "summ"}})
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"87 keys under summ:", "1 KEYS HAVE NO TTL", "summ:product:{leaky}", "gcra", "summ:oops"} {
				if !strings.Contains(out, want) {
					t.Errorf("text lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestInspectHealthProbe: the key a serve node's /healthz writes is ratelab's, and
// inspect says what it is.
func TestInspectHealthProbe(t *testing.T) {
	b := redistest.Embedded(t)
	conn, err := redisconn.Open(context.Background(), b.URL(), redisconn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := algorithms.MustKeyspace("insp").Health("00ff")
	if err := conn.Probe(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	k := inspectJSON(t, b, "insp", key)
	if k.Kind != algorithms.KindHealth || k.TTLMillis <= 0 || !strings.Contains(k.Summary, "health probe") {
		t.Errorf("inspect %s: %+v; want a health probe with a TTL", key, k)
	}
}
