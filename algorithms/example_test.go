package algorithms_test

import (
	"context"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
)

// A limiter shared by every node that talks to one Redis. The example runs on an
// embedded Redis whose clock is set, so that its TIME, and so the output, is fixed.
func ExampleNewRedis() {
	mr, err := miniredis.Run()
	if err != nil {
		panic(err)
	}
	defer mr.Close()
	mr.SetTime(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()

	policy := algorithms.Policy{Limit: 2, Window: time.Second}
	lim, err := algorithms.NewRedis(rdb, algorithms.MustKeyspace("myapp"), algorithms.GCRA, policy)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		d, err := lim.Allow(ctx, "203.0.113.7")
		if err != nil {
			panic(err)
		}
		fmt.Printf("allowed=%v remaining=%d retry-after=%v\n", d.Allowed, d.Remaining, d.RetryAfter)
	}
	key, _ := lim.Key("203.0.113.7")
	fmt.Println(key)
	// Output:
	// allowed=true remaining=1 retry-after=0s
	// allowed=true remaining=0 retry-after=0s
	// allowed=false remaining=0 retry-after=500ms
	// myapp:rl:gcra:2r1s:{203.0.113.7}
}

// An in-memory limiter for one process, here on a clock the example moves by hand.
func ExampleNewLocal() {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	lim, err := algorithms.NewLocal(algorithms.TokenBucket, algorithms.Policy{Limit: 10, Window: time.Second, Burst: 2},
		func() time.Time { return now })
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, step := range []time.Duration{0, 0, 0, 50 * time.Millisecond, 50 * time.Millisecond} {
		now = now.Add(step)
		d, _ := lim.Allow(ctx, "10.0.0.7")
		fmt.Printf("+%-5v allowed=%-5v retry-after=%v\n", step, d.Allowed, d.RetryAfter)
	}
	// Output:
	// +0s    allowed=true  retry-after=0s
	// +0s    allowed=true  retry-after=0s
	// +0s    allowed=false retry-after=100ms
	// +50ms  allowed=false retry-after=50ms
	// +50ms  allowed=true  retry-after=0s
}

// A model is an algorithm as a plain value with an explicit time in microseconds: the
// oracle of ratelab's tests, and a limiter for tests of your own that need neither
// Redis nor a clock. The leaky bucket shapes: it admits a burst and tells each
// request how long to wait so that they leave at L/W.
func ExampleNewModel() {
	m, err := algorithms.NewModel(algorithms.LeakyBucket, algorithms.Policy{Limit: 4, Window: time.Second, Burst: 3})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC).UnixMicro()
	for i := 0; i < 4; i++ {
		d := m.Allow(start)
		fmt.Printf("allowed=%-5v delay=%-6v retry-after=%v\n", d.Allowed, d.Delay, d.RetryAfter)
	}
	d := m.Allow(start + 250_000) // a quarter second later, one request has left
	fmt.Printf("allowed=%-5v delay=%-6v retry-after=%v\n", d.Allowed, d.Delay, d.RetryAfter)
	// Output:
	// allowed=true  delay=0s     retry-after=0s
	// allowed=true  delay=250ms  retry-after=0s
	// allowed=true  delay=500ms  retry-after=0s
	// allowed=false delay=0s     retry-after=250ms
	// allowed=true  delay=500ms  retry-after=0s
}
