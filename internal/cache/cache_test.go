package cache_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/redistest"
)

// source is a slow backend for tests: it reads its value when a load starts and
// answers after delay (a slow query on a snapshot: the worst case for write-back),
// and counts its loads.
type source struct {
	delay time.Duration
	mu    sync.Mutex
	vals  map[string]string
	loads atomic.Int64
}

func newSource(delay time.Duration) *source {
	return &source{delay: delay, vals: map[string]string{}}
}

func (s *source) set(id, v string) {
	s.mu.Lock()
	s.vals[id] = v
	s.mu.Unlock()
}

func (s *source) load(ctx context.Context, id string) ([]byte, error) {
	s.loads.Add(1)
	s.mu.Lock()
	v, ok := s.vals[id]
	s.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(s.delay):
	}
	if !ok {
		return nil, fmt.Errorf("source: %q: %w", id, cache.ErrNotFound)
	}
	return []byte(v), nil
}

// nodes makes n caches on one Redis under one prefix: n nodes of one service.
func nodes(t *testing.T, rdb redis.UniversalClient, prefix string, n int, opts cache.Options) []*cache.Cache {
	t.Helper()
	opts.Keys = algorithms.MustKeyspace(prefix)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(newTLog(t), nil))
	}
	out := make([]*cache.Cache, n)
	for i := range out {
		c, err := cache.New(context.Background(), rdb, opts)
		if err != nil {
			t.Fatalf("cache.New: %v", err)
		}
		t.Cleanup(func() { _ = c.Close() })
		out[i] = c
	}
	return out
}

// tlog writes a cache's logs to its test's log while the test runs. A fill outlives
// the Get that started it (and the cache's Close), so it may log after the test has
// ended, which the testing package forbids (the race detector flags it): those lines
// are dropped.
type tlog struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

// newTLog returns a tlog for t. Its cleanup is registered before the caches', so it
// runs after them: nothing they log while closing is lost.
func newTLog(t *testing.T) *tlog {
	l := &tlog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func mustGet(t *testing.T, c *cache.Cache, id string, load cache.Loader) cache.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Get(ctx, id, load)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return r
}

// TestStampede: 100 concurrent reads of one cold id spread over 3 nodes call the
// backend once; everyone gets the value.
func TestStampede(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			src := newSource(300 * time.Millisecond)
			src.set("42", "v1")
			cs := nodes(t, b.Client, "stampede", 3, cache.Options{})
			var wg sync.WaitGroup
			sources := make([]cache.Source, 100)
			for i := range 100 {
				wg.Go(func() {
					r := mustGet(t, cs[i%3], "42", src.load)
					if string(r.Value) != "v1" {
						t.Errorf("request %d got %q", i, r.Value)
					}
					sources[i] = r.Source
				})
			}
			wg.Wait()
			if n := src.loads.Load(); n != 1 {
				t.Errorf("100 concurrent requests over 3 nodes called the backend %d times; want 1", n)
			}
			count := map[cache.Source]int{}
			for _, s := range sources {
				count[s]++
			}
			waits := int64(0)
			for _, c := range cs {
				waits += c.Stats().LockWaits
			}
			if count[cache.FromLoad] != 1 || waits < 1 {
				t.Errorf("sources %v, lock waits %d: want one fill, the other nodes waiting for it", count, waits)
			}
			t.Logf("sources: %v; lock waits: %d", count, waits)
		})
	}
}

// TestInvalidationReachesEveryNode: right after Invalidate returns, every node, its
// local tier included, answers the new value.
func TestInvalidationReachesEveryNode(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			src := newSource(0)
			cs := nodes(t, b.Client, "inval", 3, cache.Options{LocalTTL: time.Hour})
			for round := range 5 {
				old, next := fmt.Sprintf("v%d", round), fmt.Sprintf("v%d", round+1)
				src.set("7", old)
				for _, c := range cs {
					mustGet(t, c, "7", src.load)
					if r := mustGet(t, c, "7", src.load); r.Source != cache.FromLocal || string(r.Value) != old {
						t.Fatalf("round %d: second read %q from %s; want %q from the local tier", round, r.Value, r.Source, old)
					}
				}
				src.set("7", next)
				if err := cs[round%3].Invalidate(context.Background(), "7"); err != nil {
					t.Fatalf("Invalidate: %v", err)
				}
				for i, c := range cs {
					if r := mustGet(t, c, "7", src.load); string(r.Value) != next {
						t.Errorf("round %d: node %d read %q (from %s) right after the invalidation; want %q", round, i, r.Value, r.Source, next)
					}
				}
			}
		})
	}
}

// TestNoLateWriteBack: a fill that loaded the old value before an invalidation does
// not put it back.
func TestNoLateWriteBack(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			src := newSource(400 * time.Millisecond)
			src.set("9", "old")
			cs := nodes(t, b.Client, "lateback", 2, cache.Options{LocalTTL: time.Hour})
			filled := make(chan cache.Result)
			go func() { filled <- mustGet(t, cs[0], "9", src.load) }()
			// The fill has read "old" and is loading; the change and invalidation land now.
			for src.loads.Load() == 0 {
				time.Sleep(time.Millisecond)
			}
			src.set("9", "new")
			if err := cs[1].Invalidate(context.Background(), "9"); err != nil {
				t.Fatal(err)
			}
			if r := <-filled; string(r.Value) != "old" {
				t.Logf("the racing fill answered %q", r.Value)
			}
			src.delay = 0
			for i, c := range cs {
				for range 2 {
					if r := mustGet(t, c, "9", src.load); string(r.Value) != "new" {
						t.Errorf("node %d read %q from %s after the invalidation; the fill wrote the old value back", i, r.Value, r.Source)
					}
				}
			}
			if n := cs[0].Stats().RejectedFills; n != 1 {
				t.Errorf("rejected fills = %d; want 1", n)
			}
		})
	}
}

// TestNegativeCache: an unknown id is loaded once, then answered from Redis until
// its short TTL ends.
func TestNegativeCache(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			src := newSource(0)
			cs := nodes(t, b.Client, "negative", 2, cache.Options{NegativeTTL: 300 * time.Millisecond})
			for i := range 4 {
				_, err := cs[i%2].Get(context.Background(), "404", src.load)
				if !errors.Is(err, cache.ErrNotFound) {
					t.Fatalf("Get of an unknown id: %v; want ErrNotFound", err)
				}
			}
			if n := src.loads.Load(); n != 1 {
				t.Errorf("4 reads of an unknown id loaded %d times; want 1 (negatively cached)", n)
			}
			time.Sleep(400 * time.Millisecond)
			src.set("404", "now it exists")
			if r := mustGet(t, cs[0], "404", src.load); string(r.Value) != "now it exists" {
				t.Errorf("after the negative TTL: %q", r.Value)
			}
		})
	}
}

// TestEveryKeyHasATTL: values, negative entries, invalidation markers and locks all expire.
func TestEveryKeyHasATTL(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			src := newSource(300 * time.Millisecond)
			src.set("1", "one")
			cs := nodes(t, b.Client, "ttl", 1, cache.Options{})
			mustGet(t, cs[0], "1", src.load)
			_, _ = cs[0].Get(ctx, "2", src.load)
			if err := cs[0].Invalidate(ctx, "3"); err != nil {
				t.Fatal(err)
			}
			// The fill of "4" holds its lock until the test ends; the test looks once
			// the lock is there, however late this machine runs the fill.
			release := make(chan struct{})
			t.Cleanup(func() { close(release) })
			held := func(ctx context.Context, _ string) ([]byte, error) {
				select {
				case <-release:
					return []byte("four"), nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			go func() { _, _ = cs[0].Get(ctx, "4", held) }()
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
				if n, err := b.Client.Exists(ctx, "ttl:lock:product:{4}").Result(); err == nil && n == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the fill of 4 took no lock within a minute")
				}
			}
			keys, err := b.Client.Keys(ctx, "ttl:*").Result()
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]bool{"ttl:product:{1}": true, "ttl:product:{2}": true, "ttl:product:{3}": true, "ttl:lock:product:{4}": true}
			for _, k := range keys {
				delete(want, k)
				if ttl, err := b.Client.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
					t.Errorf("key %s has no TTL (%v, %v)", k, ttl, err)
				}
			}
			if len(want) > 0 {
				t.Errorf("keys missing: %v (have %v)", want, keys)
			}
		})
	}
}

// TestBadIDs never reach Redis.
func TestBadIDs(t *testing.T) {
	b := redistest.Embedded(t)
	cs := nodes(t, b.Client, "bad", 1, cache.Options{})
	for _, id := range []string{"", "a b", "{x}", "a:b", "*", strings.Repeat("x", 65), "é"} {
		if _, err := cs[0].Get(context.Background(), id, newSource(0).load); !errors.Is(err, cache.ErrInvalidID) {
			t.Errorf("Get(%q): %v; want ErrInvalidID", id, err)
		}
		if err := cs[0].Invalidate(context.Background(), id); !errors.Is(err, cache.ErrInvalidID) {
			t.Errorf("Invalidate(%q): %v; want ErrInvalidID", id, err)
		}
	}
	if keys := b.Mini.Keys(); len(keys) != 0 {
		t.Errorf("bad ids wrote keys: %v", keys)
	}
}

// TestLostSubscriptionDropsLocalTier: when a node's subscription is cut, its local
// tier is dropped (it could miss invalidations), and it comes back by itself.
func TestLostSubscriptionDropsLocalTier(t *testing.T) {
	b := redistest.Standalone(t)
	ctx := context.Background()
	src := newSource(0)
	src.set("5", "five")
	cs := nodes(t, b.Client, "sub", 1, cache.Options{LocalTTL: time.Hour})
	mustGet(t, cs[0], "5", src.load)
	if r := mustGet(t, cs[0], "5", src.load); r.Source != cache.FromLocal {
		t.Fatalf("warm read from %s; want local", r.Source)
	}
	if err := b.Client.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cs[0].Stats().LocalDrops == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if cs[0].Stats().LocalDrops == 0 {
		t.Fatal("the subscription was killed, and the local tier was not dropped")
	}
	// Back by itself: local hits again once resubscribed.
	for time.Now().Before(deadline) {
		if r := mustGet(t, cs[0], "5", src.load); r.Source == cache.FromLocal {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Error("the local tier did not come back after resubscribing")
}

// TestRedisDown: without Redis the cache reads the backend directly; with Redis back it caches again.
func TestRedisDown(t *testing.T) {
	b := redistest.Standalone(t)
	src := newSource(0)
	src.set("1", "one")
	cs := nodes(t, b.Client, "down", 1, cache.Options{RedisTimeout: 200 * time.Millisecond})
	mustGet(t, cs[0], "1", src.load)
	b.Server.Stop()
	if r := mustGet(t, cs[0], "1", src.load); r.Source != cache.FromBypass || string(r.Value) != "one" {
		t.Errorf("with Redis down: %q from %s; want the backend's value, bypassing", r.Value, r.Source)
	}
	if err := cs[0].Invalidate(context.Background(), "1"); err == nil || !strings.Contains(err.Error(), "cannot reach Redis") {
		t.Errorf("Invalidate with Redis down: %v; want an explained error", err)
	}
	if err := b.Server.Start(); err != nil {
		t.Fatal(err)
	}
	mustGet(t, cs[0], "1", src.load)
	if r := mustGet(t, cs[0], "1", src.load); r.Source != cache.FromRedis {
		t.Errorf("with Redis back: from %s; want redis", r.Source)
	}
}
