package algorithms_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// BenchmarkMultiCheck sets one combined check of two limits (10/1s burst 20 token
// bucket and 1000/1h sliding log, one script call) beside the same two limits checked
// one after the other (two calls, not atomic) and beside the token bucket alone, serially
// over one connection to a redis-server of its own, over many clients (nearly every
// check admitted, the writing path). The three alternate within one run, so their
// ratios compare like with like on a loaded machine (docs/policies.md has the figures):
//
//	go test ./algorithms -run '^$' -bench '^BenchmarkMultiCheck$' -benchtime 1s -count 5
func BenchmarkMultiCheck(b *testing.B) {
	redistest.RequireServer(b)
	srv := redistest.Standalone(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addrs[0], PoolSize: 1})
	b.Cleanup(func() { _ = rdb.Close() })
	keys := algorithms.MustKeyspace("benchmulti")
	perSecond := algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}
	perHour := algorithms.Policy{Limit: 1000, Window: time.Hour}
	multi, err := algorithms.NewMultiRedis(rdb, keys, "bench", []algorithms.NamedLimit{
		{Name: "per-second", Algorithm: algorithms.TokenBucket, Policy: perSecond},
		{Name: "per-hour", Algorithm: algorithms.SlidingLog, Policy: perHour},
	})
	if err != nil {
		b.Fatal(err)
	}
	tb, err := algorithms.NewRedis(rdb, keys, algorithms.TokenBucket, perSecond)
	if err != nil {
		b.Fatal(err)
	}
	sl, err := algorithms.NewRedis(rdb, keys, algorithms.SlidingLog, perHour)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		check func(id string) error
	}{
		{"combined", func(id string) error {
			_, err := multi.Allow(ctx, id)
			return err
		}},
		{"two-calls", func(id string) error {
			if _, err := tb.Allow(ctx, id); err != nil {
				return err
			}
			_, err := sl.Allow(ctx, id)
			return err
		}},
		{"single", func(id string) error {
			_, err := tb.Allow(ctx, id)
			return err
		}},
	}
	// Each iteration makes one check of every case, in an order that rotates, so load
	// that comes and goes weighs on all three alike.
	spent := make([]time.Duration, len(cases))
	i := 0
	for b.Loop() {
		id := identities[i%manyClients]
		for j := range cases {
			c := (i + j) % len(cases)
			start := time.Now()
			if err := cases[c].check(id); err != nil {
				b.Fatal(err)
			}
			spent[c] += time.Since(start)
		}
		i++
	}
	for c, cs := range cases {
		b.ReportMetric(float64(spent[c].Microseconds())/float64(i), cs.name+"-us/check")
	}
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "two-calls/combined")
	b.ReportMetric(float64(spent[0])/float64(spent[2]), "combined/single")
}
