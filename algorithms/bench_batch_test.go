package algorithms_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// BenchmarkBatching runs each limiter with and without batching (WithBatching's
// defaults) from 1, 16, 64 and 256 callers, each caller a goroutine, over a pool of
// as many connections, against a redis-server of its own, over many identities (the
// writing path). Beside checks/s and p50/p99 it reports the server's CPU per check
// (used_cpu_sys + used_cpu_user of INFO cpu, before and after):
//
//	go test ./algorithms -run '^$' -bench '^BenchmarkBatching$' -benchtime 2s -count 5
//
// RATELAB_BENCH_ALGORITHMS (comma-separated) narrows the algorithms. Batched and
// unbatched runs of one caller count follow each other, so that -count interleaves them.
func BenchmarkBatching(b *testing.B) {
	srv := redistest.StartServer(b)
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	names := algorithms.Names()
	if s := benchAlgorithms(); s != nil {
		names = s
	}
	for _, name := range names {
		for _, callers := range []int{1, 16, 64, 256} {
			for _, batched := range []bool{false, true} {
				mode := "unbatched"
				var opts []algorithms.Option
				if batched {
					mode, opts = "batched", []algorithms.Option{algorithms.WithBatching(0, 0)}
				}
				b.Run(fmt.Sprintf("%s/c%d/%s", name, callers, mode), func(b *testing.B) {
					rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: callers})
					defer rdb.Close()
					lim, err := algorithms.NewRedis(rdb, algorithms.MustKeyspace("bench-batch"), name, benchPolicy, opts...)
					if err != nil {
						b.Fatal(err)
					}
					c := func(ctx context.Context, i int) (bool, error) {
						d, err := lim.Allow(ctx, identities[i%manyClients])
						return d.Allowed, err
					}
					cpu := serverCPU(b, admin)
					if callers == 1 {
						benchSerial(b, c)
					} else {
						benchParallel(b, callers, c)
					}
					b.ReportMetric((serverCPU(b, admin)-cpu)*1e6/float64(b.N), "redis-cpu-µs/check")
					if s := lim.Stats(); batched && s.RoundTrips > 0 {
						b.ReportMetric(float64(s.RedisCalls)/float64(s.RoundTrips), "checks/round-trip")
					}
				})
			}
		}
	}
}

// benchAlgorithms is RATELAB_BENCH_ALGORITHMS as a list, nil when unset.
func benchAlgorithms() []string {
	v := strings.TrimSpace(os.Getenv("RATELAB_BENCH_ALGORITHMS"))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// serverCPU is the server's CPU time so far, system and user, in seconds.
func serverCPU(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu: %q: %v", line, err)
			}
			sum += f
		}
	}
	return sum
}
