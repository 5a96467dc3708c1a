package algorithms_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// newClients returns n separate clients (separate connection pools) to backend b.
func newClients(t *testing.T, b redistest.Backend, n int) []redis.UniversalClient {
	t.Helper()
	clients := make([]redis.UniversalClient, n)
	for i := range clients {
		if b.Name == "cluster" {
			clients[i] = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs})
		} else {
			clients[i] = redis.NewClient(&redis.Options{Addr: b.Addrs[0]})
		}
		c := clients[i]
		t.Cleanup(func() { _ = c.Close() })
	}
	return clients
}

// limiterMode is a set of limiter options a suite also runs with.
type limiterMode struct {
	name string // "" for the plain limiter, else "<name>/"
	opts []algorithms.Option
	// batch and deny say what the options turn on, for check.
	batch, deny bool
}

// limiterModes are the plain limiter, batching (one round trip in flight, so that
// checks queue and share it) and the deny cache.
var limiterModes = []limiterMode{
	{name: ""},
	{name: "batch/", opts: []algorithms.Option{algorithms.WithBatching(1, 0)}, batch: true},
	{name: "deny-cache/", opts: []algorithms.Option{algorithms.WithDenyCache(0)}, deny: true},
}

// keys is a suffix for key prefixes: no two modes share state.
func (m limiterMode) keys() string {
	if m.name == "" {
		return ""
	}
	return "-" + strings.NewReplacer("/", "", "+", "-").Replace(m.name)
}

// batchAndDeny turns both on.
var batchAndDeny = limiterMode{name: "batch+deny-cache/", opts: []algorithms.Option{algorithms.WithBatching(1, 0), algorithms.WithDenyCache(0)}, batch: true, deny: true}

// check fails the test if the mode's options did nothing over the limiters' run:
// batching that never shared a round trip, a deny cache that never answered.
func (m limiterMode) check(t *testing.T, limiters []*algorithms.Redis) {
	t.Helper()
	var s algorithms.Stats
	for _, l := range limiters {
		st := l.Stats()
		s.Local += st.Local
		s.RedisCalls += st.RedisCalls
		s.RoundTrips += st.RoundTrips
	}
	if m.batch && s.RoundTrips >= s.RedisCalls {
		t.Errorf("batching: %d round trips for %d calls; no round trip was shared", s.RoundTrips, s.RedisCalls)
	}
	if m.deny && s.Local == 0 {
		t.Errorf("deny cache: no check was answered locally (%d calls to Redis)", s.RedisCalls)
	}
	if !m.deny && s.Local != 0 {
		t.Errorf("%d checks answered locally without a deny cache", s.Local)
	}
}

func allBackends(t *testing.T) []redistest.Backend {
	t.Helper()
	backends := redistest.All(t)
	if len(backends) > 1 { // a real redis-server is installed: add a cluster
		backends = append(backends, redistest.Cluster(t))
	}
	return backends
}

// TestConcurrentAdmitsExactly fires 1,000 goroutines over 5 separate clients at one
// identity at once, then 100 more: the counting algorithms admit exactly L, the
// buckets exactly B, plain, with batching and with the deny cache.
// The window is long enough that nothing refills during the test; a run that
// straddles a fixed window's edge is repeated.
func TestConcurrentAdmitsExactly(t *testing.T) {
	const clientsN = 5
	policy := algorithms.Policy{Limit: 100, Window: time.Hour, Burst: 150}
	want := map[string]int64{
		algorithms.FixedWindow: 100, algorithms.SlidingLog: 100, algorithms.SlidingCounter: 100,
		algorithms.TokenBucket: 150, algorithms.LeakyBucket: 150, algorithms.GCRA: 150,
	}
	for _, b := range allBackends(t) {
		clients := newClients(t, b, clientsN)
		modes := limiterModes
		if b.Name == "embedded" { // the slowest backend runs the extra options together
			modes = []limiterMode{limiterModes[0], batchAndDeny}
		}
		for _, mode := range modes {
			for _, name := range algorithms.Names() {
				t.Run(b.Name+"/"+mode.name+name, func(t *testing.T) {
					concurrentAdmitsExactly(t, clients, mode, name, policy, want[name])
				})
			}
		}
	}
}

// concurrentAdmitsExactly is one algorithm's part of TestConcurrentAdmitsExactly.
func concurrentAdmitsExactly(t *testing.T, clients []redis.UniversalClient, mode limiterMode, name string, policy algorithms.Policy, want int64) {
	const goroutines, rounds = 1000, 3
	clientsN := len(clients)
	ctx := context.Background()
	limiters := make([]*algorithms.Redis, clientsN)
	for i, c := range clients {
		// The leaky bucket's queue of 150 at 100/h makes the last request wait
		// 90 minutes; a max delay above that keeps the test about atomicity.
		l, err := algorithms.NewRedis(c, algorithms.MustKeyspace("conc"+mode.keys()), name, policy, append(mode.opts, algorithms.WithMaxDelay(2*time.Hour))...)
		if err != nil {
			t.Fatal(err)
		}
		limiters[i] = l
	}
	attempts := 0
	for round := 0; round < rounds; round++ {
		// A fresh identity per attempt: a repeated round must not meet the
		// state its straddling attempt left (an empty bucket).
		attempts++
		identity := fmt.Sprintf("192.0.2.%d", attempts)
		var allowed, errs atomic.Int64
		var minT, maxT atomic.Int64
		minT.Store(1 << 62)
		// A second wave after the first has been answered meets the denials: it
		// must admit nothing more (and the deny cache answers it).
		for _, n := range []int{goroutines, goroutines / 10} {
			start := make(chan struct{})
			var wg sync.WaitGroup
			for g := 0; g < n; g++ {
				wg.Add(1)
				go func(l *algorithms.Redis) {
					defer wg.Done()
					<-start
					d, err := l.Allow(ctx, identity)
					if err != nil {
						errs.Add(1)
						return
					}
					if d.Allowed {
						allowed.Add(1)
					}
					for v := minT.Load(); d.TimeMicros < v && !minT.CompareAndSwap(v, d.TimeMicros); v = minT.Load() {
					}
					for v := maxT.Load(); d.TimeMicros > v && !maxT.CompareAndSwap(v, d.TimeMicros); v = maxT.Load() {
					}
				}(limiters[g%clientsN])
			}
			close(start)
			wg.Wait()
		}
		if errs.Load() > 0 {
			t.Fatalf("round %d: %d checks failed", round, errs.Load())
		}
		w := policy.WindowMicros()
		if minT.Load()/w != maxT.Load()/w {
			t.Logf("round %d straddled a window edge; repeating", round)
			round--
			continue
		}
		if got := allowed.Load(); got != want {
			t.Fatalf("round %d: %d of %d admitted, want exactly %d", round, got, goroutines*11/10, want)
		}
	}
	mode.check(t, limiters)
}

// TestEveryKeyHasTTL runs mixed traffic (all algorithms, allowed and denied, many
// identities) and then checks with SCAN and PTTL that every key it wrote expires.
// On the cluster the same run must raise no CROSSSLOT error.
func TestEveryKeyHasTTL(t *testing.T) {
	for _, b := range allBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			keys := algorithms.MustKeyspace("ttl")
			// Windows far longer than the test: a key's TTL follows its window, and a
			// loaded machine must not see one expire before the scan counts it.
			policies := []algorithms.Policy{
				{Limit: 3, Window: time.Minute},
				{Limit: 5, Window: 30 * time.Second, Burst: 2},
			}
			checks := 0
			for _, name := range algorithms.Names() {
				for _, p := range policies {
					l, err := algorithms.NewRedis(b.Client, keys, name, p)
					if err != nil {
						t.Fatal(err)
					}
					for i := 0; i < 40; i++ {
						id := fmt.Sprintf("2001:db8::%x", i%7)
						if i%3 == 0 {
							id = fmt.Sprintf("198.51.100.%d", i%5)
						}
						if _, err := l.Allow(ctx, id); err != nil {
							t.Fatalf("%s %s: %v", name, p, err)
						}
						checks++
					}
				}
			}
			seen := 0
			scan := func(ctx context.Context, c *redis.Client) error {
				iter := c.Scan(ctx, 0, keys.Match(), 100).Iterator()
				for iter.Next(ctx) {
					key := iter.Val()
					ttl, err := c.PTTL(ctx, key).Result()
					if err != nil {
						return err
					}
					if ttl <= 0 {
						t.Errorf("key %s has PTTL %v; every key must expire", key, ttl)
					}
					if _, err := keys.Parse(key); err != nil {
						t.Errorf("key %s does not parse back: %v", key, err)
					}
					seen++
				}
				return iter.Err()
			}
			var err error
			if cc, ok := b.Client.(*redis.ClusterClient); ok {
				var mu sync.Mutex
				err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
					mu.Lock()
					defer mu.Unlock()
					return scan(ctx, c)
				})
			} else {
				err = scan(ctx, b.Client.(*redis.Client))
			}
			if err != nil {
				t.Fatal(err)
			}
			// 6 algorithms × 2 policies × 12 identities (7 IPv6, 5 IPv4).
			if want := 6 * 2 * 12; seen != want {
				t.Fatalf("found %d keys after %d checks, want %d", seen, checks, want)
			}
		})
	}
}

// TestScriptFlushCostsNoCheck flushes the script cache in the middle of a run: the
// next call reloads the script (EVALSHA, NOSCRIPT, EVAL) and no check fails.
func TestScriptFlushCostsNoCheck(t *testing.T) {
	for _, b := range allBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			p := algorithms.Policy{Limit: 1000, Window: time.Second}
			for _, name := range algorithms.Names() {
				l, err := algorithms.NewRedis(b.Client, algorithms.MustKeyspace("flush"), name, p)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 20; i++ {
					if i == 10 {
						flush := func(ctx context.Context, c *redis.Client) error { return c.ScriptFlush(ctx).Err() }
						if cc, ok := b.Client.(*redis.ClusterClient); ok {
							err = cc.ForEachMaster(ctx, flush)
						} else {
							err = flush(ctx, b.Client.(*redis.Client))
						}
						if err != nil {
							t.Fatal(err)
						}
					}
					if _, err := l.Allow(ctx, "203.0.113.9"); err != nil {
						t.Fatalf("%s: check %d after SCRIPT FLUSH failed: %v", name, i, err)
					}
				}
			}
		})
	}
}

// TestHostileIdentitiesNeverReachRedis: identities that could break out of the hash
// tag, add key fields or act as globs are refused before any Redis call.
func TestHostileIdentitiesNeverReachRedis(t *testing.T) {
	b := redistest.Embedded(t)
	l, err := algorithms.NewRedis(b.Client, algorithms.MustKeyspace("hostile"), algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", "a}b", "{x}", "x*", "a b", "a\nb", "a\x00b", "ä", string(make([]byte, 200))} {
		if _, err := l.Allow(context.Background(), id); err == nil {
			t.Errorf("identity %q was accepted", id)
		}
	}
	if n := len(b.Mini.Keys()); n != 0 {
		t.Fatalf("hostile identities wrote %d keys: %v", n, b.Mini.Keys())
	}
}

// TestRedisGiveBack: on the server's clock, a waiting leaky-bucket request gives its
// slot back and the next request takes it; the other algorithms give nothing back.
func TestRedisGiveBack(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			p := algorithms.Policy{Limit: 1, Window: time.Hour, Burst: 3}
			keys := algorithms.MustKeyspace("giveback")
			l, err := algorithms.NewRedis(b.Client, keys, algorithms.LeakyBucket, p, algorithms.WithMaxDelay(3*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			const id = "198.51.100.20"
			first, _ := l.Allow(ctx, id)
			second, err := l.Allow(ctx, id)
			if err != nil || !first.Allowed || !second.Allowed || second.Delay <= 0 {
				t.Fatalf("%+v, %+v, %v", first, second, err)
			}
			if ok, err := l.GiveBack(ctx, id, first); ok || err != nil {
				t.Fatalf("a request that did not wait was given back: %v, %v", ok, err)
			}
			if ok, err := l.GiveBack(ctx, id, second); !ok || err != nil {
				t.Fatalf("a request waiting an hour was not given back: %v, %v", ok, err)
			}
			third, _ := l.Allow(ctx, id)
			if !third.Allowed || third.Remaining != second.Remaining || third.Delay > second.Delay {
				t.Fatalf("after the give-back %+v; the request given back got %+v", third, second)
			}
			for _, name := range algorithms.Names() {
				if name == algorithms.LeakyBucket {
					continue
				}
				o, _ := algorithms.NewRedis(b.Client, keys, name, p)
				d, _ := o.Allow(ctx, id)
				if ok, err := o.GiveBack(ctx, id, d); ok || err != nil {
					t.Errorf("%s: give-back %v, %v", name, ok, err)
				}
			}
		})
	}
}
