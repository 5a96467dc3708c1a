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

// BenchmarkBatching runs each limiter without batching, with batching (WithBatching's
// defaults: on a standalone server, one call of the batch script per round trip) and
// with batches sent as pipelines of the script's calls (as on a cluster), from 1, 16,
// 64 and 256 callers, each caller a goroutine, over a pool of
// as many connections, against a redis-server of its own, over many identities (the
// writing path). Beside checks/s and p50/p99 it reports the server's CPU per check
// (used_cpu_sys + used_cpu_user of INFO cpu, before and after):
//
//	go test ./algorithms -run '^$' -bench '^BenchmarkBatching$' -benchtime 2s -count 5
//
// RATELAB_BENCH_ALGORITHMS (comma-separated) narrows the algorithms. The modes' runs
// of one caller count follow each other, so that -count interleaves them.
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
			for _, mode := range []string{"unbatched", "batched", "pipelined"} {
				batched := mode != "unbatched"
				var opts []algorithms.Option
				if batched {
					opts = []algorithms.Option{algorithms.WithBatching(benchInFlight(b), 0)}
				}
				if mode == "pipelined" {
					if callers == 1 {
						continue // a lone check goes alone either way
					}
					opts = append(opts, algorithms.PipelinedBatches())
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
					if err := admin.ConfigResetStat(context.Background()).Err(); err != nil {
						b.Fatal(err)
					}
					cpu := serverCPU(b, admin)
					if callers == 1 {
						benchSerial(b, c)
					} else {
						benchParallel(b, callers, c)
					}
					b.ReportMetric((serverCPU(b, admin)-cpu)*1e6/float64(b.N), "redis-cpu-µs/check")
					b.ReportMetric(scriptMicros(b, admin)/float64(b.N), "script-µs/check")
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

// benchInFlight is RATELAB_BENCH_INFLIGHT, the batcher's round trips in flight; 0
// (WithBatching's default) when unset.
func benchInFlight(b *testing.B) int {
	v := strings.TrimSpace(os.Getenv("RATELAB_BENCH_INFLIGHT"))
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("RATELAB_BENCH_INFLIGHT=%q: want a whole number of at least 1", v)
	}
	return n
}

// scriptMicros is the server's time in script calls (EVALSHA and EVAL) since the
// last CONFIG RESETSTAT, in µs: INFO commandstats' usec.
func scriptMicros(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	f := infoFields(b, rdb, "commandstats")
	return infoNumber(b, f, "cmdstat_evalsha", "usec") + infoNumber(b, f, "cmdstat_eval", "usec")
}

// serverCPU is the server's CPU time so far, system and user, in seconds.
func serverCPU(b *testing.B, rdb *redis.Client) float64 {
	b.Helper()
	f := infoFields(b, rdb, "cpu")
	return infoNumber(b, f, "used_cpu_sys", "") + infoNumber(b, f, "used_cpu_user", "")
}
