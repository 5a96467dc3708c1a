package algorithms_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// BenchmarkMultiBatching runs one combined check of two limits (token bucket 10/1s
// burst 20 and sliding log 1000/1h) without batching, with batching (WithBatching's
// defaults: one call of the batch script per round trip) and with batches sent as
// pipelines (as on a cluster) from 64 callers, each a goroutine, over a pool of 64 connections to a
// redis-server of its own, over many identities (nearly every check admitted, the
// writing path). Beside checks/s and p50/p99 it reports the server's CPU per check
// and, batched, checks per round trip. The three modes follow each other in
// one run; -count would repeat each before the other, so repeat the run instead and
// take each run's ratio (docs/policies.md has the figures):
//
//	for i in 1 2 3 4 5; do go test ./algorithms -run '^$' -bench '^BenchmarkMultiBatching$' -benchtime 2s; done
func BenchmarkMultiBatching(b *testing.B) {
	const callers = 64
	srv := redistest.StartServer(b)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	set := []algorithms.NamedLimit{
		lim("per-second", algorithms.TokenBucket, 10, time.Second, 20),
		lim("per-hour", algorithms.SlidingLog, 1000, time.Hour, 0),
	}
	for _, mode := range []string{"unbatched", "batched", "pipelined"} {
		batched := mode != "unbatched"
		var opts []algorithms.Option
		if batched {
			opts = []algorithms.Option{algorithms.WithBatching(0, 0)}
		}
		if mode == "pipelined" {
			opts = append(opts, algorithms.PipelinedBatches())
		}
		b.Run("c64/"+mode, func(b *testing.B) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: callers})
			defer rdb.Close()
			m, err := algorithms.NewMultiRedis(rdb, algorithms.MustKeyspace("bench-multi-batch"), "bench", set, opts...)
			if err != nil {
				b.Fatal(err)
			}
			cpu := serverCPU(b, admin)
			benchParallel(b, callers, func(ctx context.Context, i int) (bool, error) {
				d, err := m.Allow(ctx, identities[i%manyClients])
				return d.Allowed, err
			})
			b.ReportMetric((serverCPU(b, admin)-cpu)*1e6/float64(b.N), "redis-cpu-µs/check")
			if s := m.Stats(); batched && s.RoundTrips > 0 {
				b.ReportMetric(float64(s.RedisCalls)/float64(s.RoundTrips), "checks/round-trip")
			}
		})
	}
}
