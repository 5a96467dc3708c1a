package algorithms_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// fakeClock is a settable clock for Local limiters.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// TestLocalMatchesModel: the in-memory limiter makes the model's decisions, also
// after its idle state has been swept and rebuilt.
func TestLocalMatchesModel(t *testing.T) {
	t.Parallel()
	for _, name := range algorithms.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for pi, p := range oraclePolicies {
				clock := &fakeClock{}
				local, err := algorithms.NewLocal(name, p, clock.Now)
				if err != nil {
					t.Fatal(err)
				}
				model, _ := algorithms.NewModel(name, p)
				rng := rand.New(rand.NewPCG(uint64(pi), 7))
				for i, now := range requestTimes(rng, p, 5000) {
					clock.Set(time.UnixMicro(now))
					got, err := local.Allow(context.Background(), "10.1.1.1")
					if err != nil {
						t.Fatal(err)
					}
					if want := model.Allow(now); got != want {
						t.Fatalf("%s request %d: local %+v, model %+v", p, i, got, want)
					}
				}
			}
		})
	}
}

// TestLocalPerNodeLetsThroughNTimes: three nodes with their own in-memory limiters,
// a client spread over them round-robin, is admitted three times the limit.
func TestLocalPerNodeLetsThroughNTimes(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 10, Window: time.Hour}
	clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
	nodes := make([]*algorithms.Local, 3)
	for i := range nodes {
		nodes[i], _ = algorithms.NewLocal(algorithms.SlidingLog, p, clock.Now)
	}
	allowed := 0
	for i := 0; i < 100; i++ {
		d, err := nodes[i%3].Allow(context.Background(), "10.9.9.9")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 30 {
		t.Fatalf("3 nodes admitted %d, want 3 × 10", allowed)
	}
}

// TestLocalForgetsIdleIdentities: state past its reset is dropped, so memory follows
// the active identities, not every identity ever seen.
func TestLocalForgetsIdleIdentities(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 5, Window: time.Second}
	clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
	l, _ := algorithms.NewLocal(algorithms.TokenBucket, p, clock.Now)
	for i := 0; i < 20_000; i++ {
		if _, err := l.Allow(context.Background(), fmt.Sprintf("10.2.%d.%d", i/250, i%250)); err != nil {
			t.Fatal(err)
		}
	}
	if l.Len() != 20_000 {
		t.Fatalf("holding %d identities, want 20000", l.Len())
	}
	clock.Set(clock.Now().Add(time.Minute))
	for i := 0; i < 200_000; i++ {
		if _, err := l.Allow(context.Background(), "10.3.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	if l.Len() > 1 {
		t.Fatalf("holding %d identities a minute later, want only the active one", l.Len())
	}
}

func TestNewLimiterRefusesBadInput(t *testing.T) {
	t.Parallel()
	good := algorithms.Policy{Limit: 1, Window: time.Second}
	if _, err := algorithms.NewLocal("fixed_window", good, nil); err == nil {
		t.Error("unknown algorithm accepted")
	}
	if _, err := algorithms.NewLocal(algorithms.GCRA, algorithms.Policy{Limit: 0, Window: time.Second}, nil); err == nil {
		t.Error("limit 0 accepted")
	}
	if _, err := algorithms.NewModel(algorithms.GCRA, algorithms.Policy{Limit: 1}); err == nil {
		t.Error("window 0 accepted")
	}
	if _, err := algorithms.NewRedis(nil, algorithms.Keyspace{}, algorithms.GCRA, good); err == nil {
		t.Error("a keyspace without prefix accepted")
	}
}

// TestLocalEvictsLeastRecentlyUsed: at its bound a Local forgets the identity used
// least recently, counts it, and that identity starts fresh.
func TestLocalEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
	l, err := algorithms.NewLocal(algorithms.FixedWindow, algorithms.Policy{Limit: 1, Window: time.Hour}, clock.Now,
		algorithms.WithMaxIdentities(3))
	if err != nil {
		t.Fatal(err)
	}
	// Each step: an identity, whether it is admitted (a remembered one is denied: its
	// one request an hour is used; a forgotten one is admitted), and the evictions after.
	steps := []struct {
		id        string
		allowed   bool
		evictions int64
	}{
		{"10.0.0.1", true, 0}, {"10.0.0.2", true, 0}, {"10.0.0.3", true, 0}, // order 1 2 3
		{"10.0.0.1", false, 0}, // 2 3 1
		{"10.0.0.4", true, 1},  // 2 forgotten: 3 1 4
		{"10.0.0.2", true, 2},  // starts fresh; 3 forgotten: 1 4 2
		{"10.0.0.1", false, 2}, // still remembered: 4 2 1
		{"10.0.0.3", true, 3},  // 4 forgotten: 2 1 3
		{"10.0.0.2", false, 3}, // 1 3 2
		{"10.0.0.4", true, 4},  // 1 forgotten: 3 2 4
	}
	for i, s := range steps {
		d, err := l.Allow(context.Background(), s.id)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != s.allowed || l.Evictions() != s.evictions || l.Len() > 3 {
			t.Fatalf("step %d (%s): allowed %v, %d evictions, %d held; want allowed %v, %d evictions, at most 3 held",
				i, s.id, d.Allowed, l.Evictions(), l.Len(), s.allowed, s.evictions)
		}
	}
}

// TestLocalEvictedIdentityStartsFresh: for every algorithm, an identity forgotten at
// the bound decides as a fresh one does, and the forgetting is counted.
func TestLocalEvictedIdentityStartsFresh(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 3, Window: time.Minute, Burst: 2}
	for _, name := range algorithms.Names() {
		clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
		l, err := algorithms.NewLocal(name, p, clock.Now, algorithms.WithMaxIdentities(1))
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for {
			d, _ := l.Allow(ctx, "10.0.0.1")
			if !d.Allowed {
				break
			}
		}
		if _, err := l.Allow(ctx, "10.0.0.2"); err != nil {
			t.Fatal(err)
		}
		if l.Evictions() != 1 || l.Len() != 1 {
			t.Fatalf("%s: %d evictions, %d held; want 1 and 1", name, l.Evictions(), l.Len())
		}
		fresh, _ := algorithms.NewModel(name, p)
		now := clock.Now().UnixMicro()
		for i := 0; i < 4; i++ {
			got, _ := l.Allow(ctx, "10.0.0.1")
			if want := fresh.Allow(now); got != want {
				t.Fatalf("%s: request %d after eviction %+v, a fresh identity's %+v", name, i, got, want)
			}
		}
	}
}

// TestLocalFreshStateIsNotAnEviction: making room by dropping state that is back to
// fresh forgets nothing and is not counted.
func TestLocalFreshStateIsNotAnEviction(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
	l, _ := algorithms.NewLocal(algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Second}, clock.Now, algorithms.WithMaxIdentities(2))
	ctx := context.Background()
	l.Allow(ctx, "10.0.0.1")
	l.Allow(ctx, "10.0.0.2")
	clock.Set(clock.Now().Add(time.Hour))
	l.Allow(ctx, "10.0.0.3")
	l.Allow(ctx, "10.0.0.4")
	if l.Evictions() != 0 || l.Len() > 2 {
		t.Fatalf("%d evictions, %d held; want 0 and at most 2", l.Evictions(), l.Len())
	}
}

// TestLocalDefaultBound: without WithMaxIdentities a Local holds DefaultMaxIdentities.
func TestLocalDefaultBound(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
	l, _ := algorithms.NewLocal(algorithms.TokenBucket, algorithms.Policy{Limit: 1, Window: time.Hour}, clock.Now)
	ctx := context.Background()
	for i := 0; i <= algorithms.DefaultMaxIdentities; i++ {
		if _, err := l.Allow(ctx, fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)); err != nil {
			t.Fatal(err)
		}
	}
	if l.Len() != algorithms.DefaultMaxIdentities || l.Evictions() != 1 {
		t.Fatalf("%d held, %d evictions; want %d and 1", l.Len(), l.Evictions(), algorithms.DefaultMaxIdentities)
	}
	if _, err := algorithms.NewLocal(algorithms.GCRA, algorithms.Policy{Limit: 1, Window: time.Second}, nil, algorithms.WithMaxIdentities(0)); err == nil {
		t.Error("a bound of 0 identities was accepted")
	}
}

// TestLocalGiveBack: Local gives back what its model gives back, and nothing of an
// identity it has forgotten since, even when the identity comes back in the very
// microsecond with a queue that looks the same.
func TestLocalGiveBack(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 10, Window: time.Second}
	clock := &fakeClock{now: time.Unix(1_790_000_000, 0)}
	l, _ := algorithms.NewLocal(algorithms.LeakyBucket, p, clock.Now, algorithms.WithMaxIdentities(1))
	ctx := context.Background()
	l.Allow(ctx, "10.0.0.1")
	d, _ := l.Allow(ctx, "10.0.0.1")
	if d.Delay != 100*time.Millisecond {
		t.Fatalf("%+v", d)
	}
	if ok, err := l.GiveBack(ctx, "10.0.0.1", d); !ok || err != nil {
		t.Fatalf("give-back of a waiting request: %v, %v", ok, err)
	}
	d, _ = l.Allow(ctx, "10.0.0.1") // takes the slot again, delay 100ms
	l.Allow(ctx, "10.0.0.2")        // evicts 10.0.0.1
	for i := 0; i < 3; i++ {        // evicts 10.0.0.2: a new queue, begun in the same µs as
		l.Allow(ctx, "10.0.0.1") // the old one, whose third request has d's place in it
	}
	if ok, _ := l.GiveBack(ctx, "10.0.0.1", d); ok {
		t.Fatal("a request of a forgotten queue took a slot off the new one")
	}
	if ok, _ := l.GiveBack(ctx, "10.0.0.3", d); ok {
		t.Fatal("an identity without state gave back a slot")
	}
	for _, name := range algorithms.Names() {
		if name == algorithms.LeakyBucket {
			continue
		}
		o, _ := algorithms.NewLocal(name, p, clock.Now)
		d, _ := o.Allow(ctx, "10.0.0.1")
		if ok, _ := o.GiveBack(ctx, "10.0.0.1", d); ok {
			t.Errorf("%s gave back a slot", name)
		}
	}
}
