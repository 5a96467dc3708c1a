package algorithms_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

func lim(name, algorithm string, limit int64, window time.Duration, burst int64) algorithms.NamedLimit {
	return algorithms.NamedLimit{Name: name, Algorithm: algorithm,
		Policy: algorithms.Policy{Limit: limit, Window: window, Burst: burst}}
}

// multiSets mix every algorithm, short and long windows, and limits that bind at
// different moments, so that each limit of a set is sometimes the one that denies.
var multiSets = [][]algorithms.NamedLimit{
	{lim("per-second", algorithms.TokenBucket, 10, time.Second, 20), lim("per-10s", algorithms.SlidingLog, 50, 10*time.Second, 0)},
	{lim("a", algorithms.GCRA, 7, 250*time.Millisecond, 3), lim("b", algorithms.FixedWindow, 40, 2*time.Second, 0),
		lim("c", algorithms.SlidingCounter, 70, 3*time.Second, 0)},
	{lim("queue", algorithms.LeakyBucket, 10, time.Second, 5), lim("cells", algorithms.GCRA, 3, time.Second, 4)},
	{lim("fw", algorithms.FixedWindow, 10, time.Second, 0), lim("sc", algorithms.SlidingCounter, 10, time.Second, 0),
		lim("log", algorithms.SlidingLog, 100, 20*time.Second, 0), lim("tb", algorithms.TokenBucket, 20, 2*time.Second, 5)},
	{lim("fw", algorithms.FixedWindow, 12, time.Second, 0), lim("log", algorithms.SlidingLog, 15, 2*time.Second, 0),
		lim("sc", algorithms.SlidingCounter, 40, 5*time.Second, 0), lim("tb", algorithms.TokenBucket, 9, time.Second, 3),
		lim("lb", algorithms.LeakyBucket, 20, time.Second, 4), lim("gcra", algorithms.GCRA, 30, 3*time.Second, 10)},
}

// TestMultiScriptMatchesModel is the oracle test of combined checks: for each mixed
// set of limits, random request times through the one script and through the
// composed Go models give the same combined decision and the same decision of every
// limit, on real Redis and on the embedded one.
func TestMultiScriptMatchesModel(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			keys := algorithms.MustKeyspace("oracle-multi")
			total, allowed := 0, 0
			deniedBy := map[string]int{}
			for si, set := range multiSets {
				rng := rand.New(rand.NewPCG(uint64(si), 7))
				m, err := algorithms.NewMultiRedis(b.Client, keys, fmt.Sprintf("set%d", si), set)
				if err != nil {
					t.Fatal(err)
				}
				model, err := algorithms.NewMultiModel(set)
				if err != nil {
					t.Fatal(err)
				}
				identity := fmt.Sprintf("10.9.%d.%d", si, rng.IntN(250))
				for i, now := range requestTimes(rng, set[0].Policy, 2500) {
					got, err := m.AllowAt(ctx, identity, time.UnixMicro(now))
					if err != nil {
						t.Fatalf("set %d request %d: %v", si, i, err)
					}
					want := model.Allow(now)
					if !sameMulti(got, want) {
						t.Fatalf("set %d, request %d at %d:\nscript %+v\nmodel  %+v", si, i, now, got, want)
					}
					total++
					if got.Allowed {
						allowed++
					} else {
						deniedBy[fmt.Sprintf("%d/%s", si, set[got.DeniedBy].Name)]++
					}
				}
			}
			t.Logf("%d decisions, %d allowed; denied by %v", total, allowed, deniedBy)
			if total < 10_000 {
				t.Fatalf("compared %d decisions, want at least 10,000", total)
			}
			if allowed < total/10 || allowed > total*9/10 {
				t.Errorf("%d of %d allowed; the traffic does not exercise both outcomes", allowed, total)
			}
			// Every limit of the first two sets, and most of the others, must deny
			// sometimes, or the composition is not exercised.
			for si, set := range multiSets[:2] {
				for _, l := range set {
					if deniedBy[fmt.Sprintf("%d/%s", si, l.Name)] == 0 {
						t.Errorf("set %d: limit %s never denied", si, l.Name)
					}
				}
			}
		})
	}
}

func sameMulti(a, b algorithms.MultiDecision) bool {
	if a.Allowed != b.Allowed || a.DeniedBy != b.DeniedBy || a.RetryAfter != b.RetryAfter ||
		a.Delay != b.Delay || a.TimeMicros != b.TimeMicros || len(a.Limits) != len(b.Limits) {
		return false
	}
	for i := range a.Limits {
		if a.Limits[i] != b.Limits[i] {
			return false
		}
	}
	return true
}

// TestMultiDenialConsumesNothing checks the state itself: a request that the hour
// limit denies leaves the per-second token bucket's key exactly as it was, and the
// combined RetryAfter is the one after which both admit.
func TestMultiDenialConsumesNothing(t *testing.T) {
	for _, b := range allBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			set := []algorithms.NamedLimit{
				lim("per-second", algorithms.TokenBucket, 10, time.Second, 20),
				lim("per-hour", algorithms.SlidingLog, 50, time.Hour, 0),
			}
			m, err := algorithms.NewMultiRedis(b.Client, algorithms.MustKeyspace("deny"), "GET/products/id@free", set)
			if err != nil {
				t.Fatal(err)
			}
			const id = "10.1.2.3"
			keys, err := m.StateKeys(id)
			if err != nil {
				t.Fatal(err)
			}
			start := time.UnixMicro(1_790_000_000_000_000)
			// 50 requests, one every 200ms: the bucket never runs dry, the hour fills.
			at := start
			for i := range 50 {
				d, err := m.AllowAt(ctx, id, at)
				if err != nil || !d.Allowed {
					t.Fatalf("request %d at +%s: %+v, %v", i, at.Sub(start), d, err)
				}
				at = at.Add(200 * time.Millisecond)
			}
			before := b.Client.HGetAll(ctx, keys[0]).Val()
			logBefore := b.Client.ZCard(ctx, keys[1]).Val()
			d, err := m.AllowAt(ctx, id, at)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || set[d.DeniedBy].Name != "per-hour" {
				t.Fatalf("request 51: %+v; want denied by per-hour", d)
			}
			if !d.Limits[0].Allowed {
				t.Fatalf("the per-second limit alone would have admitted request 51: %+v", d.Limits[0])
			}
			if after := b.Client.HGetAll(ctx, keys[0]).Val(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("the denial changed the per-second state: %v, then %v", before, after)
			}
			if n := b.Client.ZCard(ctx, keys[1]).Val(); n != logBefore {
				t.Fatalf("the denial changed the hour's log: %d, then %d", logBefore, n)
			}
			// The first of the 50 leaves the hour at start+1h: then both admit.
			if want := start.Add(time.Hour).Sub(at); d.RetryAfter != want {
				t.Fatalf("retry after %s, want %s", d.RetryAfter, want)
			}
			if d, err := m.AllowAt(ctx, id, at.Add(d.RetryAfter-time.Microsecond)); err != nil || d.Allowed {
				t.Fatalf("a microsecond before the retry: %+v, %v", d, err)
			}
			if d, err := m.AllowAt(ctx, id, at.Add(d.RetryAfter)); err != nil || !d.Allowed {
				t.Fatalf("at the retry: %+v, %v", d, err)
			}
		})
	}
}

// TestMultiConcurrentExact fires 1,000 goroutines over 3 separate clients at one
// identity at one moment with 10/1s burst 20 and 50/1h: exactly 20 are admitted.
// Then, driven over the next hour with explicit times, never more than 50 in the hour.
// Plain and with batching.
func TestMultiConcurrentExact(t *testing.T) {
	for _, mode := range limiterModes[:2] {
		for _, b := range allBackends(t) {
			t.Run(mode.name+b.Name, func(t *testing.T) { testMultiConcurrentExact(t, b, mode) })
		}
	}
}

func testMultiConcurrentExact(t *testing.T, b redistest.Backend, mode limiterMode) {
	ctx := context.Background()
	set := []algorithms.NamedLimit{
		lim("per-second", algorithms.TokenBucket, 10, time.Second, 20),
		lim("per-hour", algorithms.SlidingLog, 50, time.Hour, 0),
	}
	clients := newClients(t, b, 3)
	limiters := make([]*algorithms.MultiRedis, len(clients))
	for i, c := range clients {
		var err error
		if limiters[i], err = algorithms.NewMultiRedis(c, algorithms.MustKeyspace("exact"+mode.keys()), "r", set, mode.opts...); err != nil {
			t.Fatal(err)
		}
	}
	const id = "2001:db8::/64"
	start := time.UnixMicro(1_790_000_000_000_000)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make(chan error, 1000)
	for g := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			d, err := limiters[g%len(limiters)].AllowAt(ctx, id, start)
			if err != nil {
				errs <- err
				return
			}
			if d.Allowed {
				admitted.Add(1)
			}
		}()
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := admitted.Load(); n != 20 {
		t.Fatalf("%d admitted at once, want exactly 20 (the burst)", n)
	}
	// Over the next two hours, one request every 30 seconds: the hour limit binds.
	var times []time.Time
	for i := range 2*120 + 2 {
		at := start.Add(time.Duration(i+1) * 30 * time.Second)
		d, err := limiters[i%3].AllowAt(ctx, id, at)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			continue
		}
		times = append(times, at)
	}
	all := append(make([]time.Time, 20), times...)
	for i := range 20 {
		all[i] = start
	}
	for i := range all {
		j := i
		for j < len(all) && all[j].Sub(all[i]) < time.Hour {
			j++
		}
		if j-i > 50 {
			t.Fatalf("%d admitted in the hour from +%s, want at most 50", j-i, all[i].Sub(start))
		}
	}
	if len(all) < 100 {
		t.Fatalf("%d admitted in two hours; want the hour limit reached twice (100)", len(all))
	}
	checkMultiStats(t, mode, limiters)
}

func TestRuleLimiterKeyRoundTrip(t *testing.T) {
	t.Parallel()
	ks := algorithms.MustKeyspace("ratelab")
	p := algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}
	key := ks.RuleLimiter(algorithms.TokenBucket, p, "GET/products/id@free", "per-second", "10.0.0.7")
	if key != "ratelab:rl:token-bucket:10r1s-b20:GET/products/id@free:per-second:{10.0.0.7}" {
		t.Fatalf("RuleLimiter = %q", key)
	}
	got, err := ks.Parse(key)
	if err != nil || got.Rule != "GET/products/id@free" || got.Limit != "per-second" || got.Algorithm != algorithms.TokenBucket ||
		*got.Policy != p || got.Identity != "10.0.0.7" {
		t.Fatalf("Parse(%q) = %+v, %v", key, got, err)
	}
	m, err := algorithms.NewMultiRedis(nil, ks, "GET/products/id@free", []algorithms.NamedLimit{{Name: "per-second", Algorithm: algorithms.TokenBucket, Policy: p}})
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := m.StateKeys("::ffff:10.0.0.7"); err != nil || keys[0] != key {
		t.Fatalf("Keys = %q, %v; want %q", keys, err, key)
	}
	for _, odd := range []string{"ratelab:rl:gcra:10r1s:a:b:c:{1.2.3.4}", "ratelab:rl:gcra:10r1s:*:x:{1.2.3.4}", "ratelab:rl:gcra:10r1s:r::{1.2.3.4}"} {
		if _, err := ks.Parse(odd); !errors.Is(err, algorithms.ErrUndecodable) {
			t.Errorf("Parse(%q) = %v, want ErrUndecodable", odd, err)
		}
	}
}

func TestNewMultiRedisRefuses(t *testing.T) {
	t.Parallel()
	ks := algorithms.MustKeyspace("ratelab")
	ok := lim("a", algorithms.GCRA, 10, time.Second, 0)
	for name, c := range map[string]struct {
		scope  string
		limits []algorithms.NamedLimit
	}{
		"none":       {"r", nil},
		"twice":      {"r", []algorithms.NamedLimit{ok, ok}},
		"bad name":   {"r", []algorithms.NamedLimit{lim("a:b", algorithms.GCRA, 10, time.Second, 0)}},
		"bad scope":  {"r{x}", []algorithms.NamedLimit{ok}},
		"bad policy": {"r", []algorithms.NamedLimit{lim("a", algorithms.GCRA, 0, time.Second, 0)}},
		"algorithm":  {"r", []algorithms.NamedLimit{lim("a", "nope", 10, time.Second, 0)}},
	} {
		if _, err := algorithms.NewMultiRedis(nil, ks, c.scope, c.limits); err == nil {
			t.Errorf("%s: NewMultiRedis accepted %v", name, c.limits)
		}
	}
}
