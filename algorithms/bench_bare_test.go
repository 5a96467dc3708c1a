package algorithms

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/internal/redistest"
)

// BenchmarkSerialAgainstBare interleaves, check by check on one connection, a bare
// EVALSHA of an algorithm's script (its fixed ARGV built once), the limiter's Allow,
// and Allow with batching, each for an identity of its own (the writing path), and
// reports each one's p50 and the limiter's over the bare one's:
//
//	go test ./algorithms -run '^$' -bench '^BenchmarkSerialAgainstBare$' -benchtime 20000x -count 5
func BenchmarkSerialAgainstBare(b *testing.B) {
	srv := redistest.StartServer(b)
	p := Policy{Limit: 10, Window: time.Second, Burst: 20}
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("10.1.%d.%d", i>>8, i&0xff)
	}
	for _, name := range order {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 1})
			defer rdb.Close()
			plain, err := NewRedis(rdb, MustKeyspace("bare"), name, p)
			if err != nil {
				b.Fatal(err)
			}
			batched, err := NewRedis(rdb, MustKeyspace("bare"), name, p, WithBatching(0, 0))
			if err != nil {
				b.Fatal(err)
			}
			sha := plain.spec.script.Hash()
			if _, err := plain.Allow(ctx, "10.2.0.1"); err != nil { // loads the script
				b.Fatal(err)
			}
			hist := func() *hdrhistogram.Histogram { return hdrhistogram.New(1, int64(time.Second), 3) }
			bare, lim, bat := hist(), hist(), hist()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id := ids[(3*i)%len(ids)]
				t0 := time.Now()
				if err := rdb.EvalSha(ctx, sha, []string{plain.keyHead + id + "}"}, plain.args...).Err(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := plain.Allow(ctx, ids[(3*i+1)%len(ids)]); err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if _, err := batched.Allow(ctx, ids[(3*i+2)%len(ids)]); err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				_ = bare.RecordValue(int64(t1.Sub(t0)))
				_ = lim.RecordValue(int64(t2.Sub(t1)))
				_ = bat.RecordValue(int64(t3.Sub(t2)))
			}
			b.StopTimer()
			p50 := func(h *hdrhistogram.Histogram) float64 { return float64(h.ValueAtQuantile(50)) / 1e3 }
			b.ReportMetric(p50(bare), "bare-p50-µs")
			b.ReportMetric(p50(lim), "allow-p50-µs")
			b.ReportMetric(p50(bat), "batched-p50-µs")
			b.ReportMetric(p50(lim)/p50(bare), "allow/bare")
			b.ReportMetric(p50(bat)/p50(bare), "batched/bare")
			b.ReportMetric(p50(bat)/p50(lim), "batched/allow")
		})
	}
}
