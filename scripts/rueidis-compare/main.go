// Command rueidis-compare runs ratelab's limiter checks unbatched and batched (go-redis
// v9 under ratelab's batcher) against the same scripts sent through rueidis's automatic
// pipelining, from 1, 16, 64 and 256 goroutines over 65,536 identities, three rounds
// with the three clients interleaved, on a redis-server of its own on 127.0.0.1:6421:
//
//	cd scripts/rueidis-compare && go run .
//
// It is a module of its own, so that rueidis stays out of ratelab's go.mod; the
// figures and what they decided are in docs/benchmarks.md ("go-redis pipelines or
// rueidis").
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/ratelab/ratelab/algorithms"
)

const ids = 65536

// srv is the redis-server of the run, killed at the end and by fatal.
var srv *exec.Cmd

func main() {
	port := "6421"
	srv = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		fatal(err)
	}
	defer srv.Process.Kill()
	addr := "127.0.0.1:" + port
	admin := redis.NewClient(&redis.Options{Addr: addr})
	for i := 0; admin.Ping(context.Background()).Err() != nil; i++ {
		if i == 100 {
			fatal(fmt.Errorf("redis-server on %s did not answer PING", addr))
		}
		time.Sleep(50 * time.Millisecond)
	}
	admin.Close()
	p := algorithms.Policy{Limit: 10, Window: time.Second, Burst: 20}
	identities := make([]string, ids)
	for i := range identities {
		identities[i] = fmt.Sprintf("10.0.%d.%d", i/256, i%256)
	}
	dur := time.Second
	for _, name := range []string{"gcra", "sliding-log"} {
		for _, callers := range []int{1, 16, 64, 256} {
			for rep := 0; rep < 3; rep++ {
				for _, mode := range []string{"unbatched", "batched", "rueidis"} {
					var check func(ctx context.Context, i int) error
					var closeFn func()
					switch mode {
					case "unbatched", "batched":
						rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: callers})
						var opts []algorithms.Option
						if mode == "batched" {
							opts = append(opts, algorithms.WithBatching(0, 0))
						}
						lim, err := algorithms.NewRedis(rdb, algorithms.MustKeyspace("rb-"+mode), name, p, opts...)
						if err != nil {
							fatal(err)
						}
						check = func(ctx context.Context, i int) error { _, err := lim.Allow(ctx, identities[i%ids]); return err }
						closeFn = func() { rdb.Close() }
					case "rueidis":
						c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
						if err != nil {
							fatal(err)
						}
						s := rueidis.NewLuaScript(algorithms.ScriptSource(name))
						args := []string{strconv.FormatInt(p.Limit, 10), strconv.FormatInt(p.WindowMicros(), 10), strconv.FormatInt(p.EffectiveBurst(), 10), ""}
						check = func(ctx context.Context, i int) error {
							_, err := s.Exec(ctx, c, []string{"rb-rueidis:rl:" + name + ":{" + identities[i%ids] + "}"}, args).AsIntSlice()
							return err
						}
						closeFn = c.Close
					}
					n, p50, p99, errs := run(check, callers, dur)
					fmt.Printf("%s c%d %s rep%d: %.0f checks/s p50 %.0f µs p99 %.0f µs errors %d\n", name, callers, mode, rep, float64(n)/dur.Seconds(), p50, p99, errs)
					closeFn()
				}
			}
		}
	}
	_ = os.Stdout.Sync()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "rueidis-compare:", err)
	if srv != nil && srv.Process != nil {
		_ = srv.Process.Kill()
	}
	os.Exit(1)
}

func run(check func(context.Context, int) error, callers int, d time.Duration) (int64, float64, float64, int64) {
	var n, errs atomic.Int64
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			var mine []time.Duration
			ctx := context.Background()
			for time.Now().Before(stop) {
				i := int(next.Add(1))
				t := time.Now()
				if err := check(ctx, i); err != nil {
					errs.Add(1)
				}
				mine = append(mine, time.Since(t))
				n.Add(1)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) }
	return n.Load(), q(0.5), q(0.99), errs.Load()
}
