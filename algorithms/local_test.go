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
