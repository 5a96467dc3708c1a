package algorithms_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ratelab/ratelab/algorithms"
)

// TestScriptsMatchModelsBatchedAndCached is the oracle test with batching and the
// deny cache on: per policy, one limiter checks several identities at once from as
// many goroutines (so that their checks share round trips), each identity's random
// request times in order against a model of its own. Every decision, those the deny
// cache answers included, must equal the model's field by field, on redis-server,
// the cluster and the embedded Redis.
func TestScriptsMatchModelsBatchedAndCached(t *testing.T) {
	const identitiesN, requests = 4, 625 // 10,000 decisions per algorithm and backend
	for _, b := range allBackends(t) {
		for _, name := range algorithms.Names() {
			t.Run(b.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				keys := algorithms.MustKeyspace("oracle-batch")
				var limiters []*algorithms.Redis
				for pi, p := range oraclePolicies {
					lim, err := algorithms.NewRedis(b.Client, keys, name, p, batchAndDeny.opts...)
					if err != nil {
						t.Fatal(err)
					}
					limiters = append(limiters, lim)
					var g errgroup.Group
					for k := 0; k < identitiesN; k++ {
						g.Go(func() error {
							return oracleRun(lim, name, p, fmt.Sprintf("10.9.%d.%d", pi, k), rand.New(rand.NewPCG(uint64(pi), uint64(k)+7)), requests)
						})
					}
					if err := g.Wait(); err != nil {
						t.Fatal(err)
					}
				}
				batchAndDeny.check(t, limiters)
			})
		}
	}
}

// oracleRun sends n random request times of one identity through lim and a fresh
// model and says where they first differ.
func oracleRun(lim *algorithms.Redis, name string, p algorithms.Policy, identity string, rng *rand.Rand, n int) error {
	model, err := algorithms.NewModel(name, p)
	if err != nil {
		return err
	}
	allowed := 0
	for i, now := range requestTimes(rng, p, n) {
		got, err := lim.AllowAt(context.Background(), identity, time.UnixMicro(now))
		if err != nil {
			return fmt.Errorf("%s, request %d: %w", p, i, err)
		}
		if want := model.Allow(now); got != want {
			return fmt.Errorf("%s, request %d at %d: limiter %+v, model %+v", p, i, now, got, want)
		}
		if got.Allowed {
			allowed++
		}
	}
	if allowed < n/10 || allowed > n*9/10 {
		return fmt.Errorf("%s: %d of %d allowed; the generated traffic does not exercise both outcomes", p, allowed, n)
	}
	return nil
}

// TestLeakyBucketGiveBackMatchesModelBatched is the give-back oracle with batching:
// several identities at once from as many goroutines, each its own random request
// times with give-backs of random earlier admissions between them, against a model of
// its own, so that decisions and give-backs share round trips (on a standalone server
// one call of the batch script, where a give-back's call carries more values than a
// decision's; on the cluster a pipeline). Every decision and every give-back must
// equal the model's.
func TestLeakyBucketGiveBackMatchesModelBatched(t *testing.T) {
	const identitiesN, requests = 4, 500
	for _, b := range allBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			keys := algorithms.MustKeyspace("oracle-gb-batch")
			var limiters []*algorithms.Redis
			for pi, p := range oraclePolicies {
				spacing := p.Window / time.Duration(p.Limit)
				opts := []algorithms.Option{algorithms.WithMaxDelay(3 * spacing), algorithms.WithBatching(1, 0)}
				lim, err := algorithms.NewRedis(b.Client, keys, algorithms.LeakyBucket, p, opts...)
				if err != nil {
					t.Fatal(err)
				}
				limiters = append(limiters, lim)
				var g errgroup.Group
				for k := range identitiesN {
					g.Go(func() error {
						model, err := algorithms.NewModel(algorithms.LeakyBucket, p, opts...)
						if err != nil {
							return err
						}
						identity := fmt.Sprintf("10.6.%d.%d", pi, k)
						rng := rand.New(rand.NewPCG(uint64(pi), uint64(k)+23))
						var admitted []algorithms.Decision
						for i, now := range requestTimes(rng, p, requests) {
							if len(admitted) > 0 && rng.IntN(4) == 0 {
								j := len(admitted) - 1 - rng.IntN(min(len(admitted), 8))
								d := admitted[j]
								admitted = append(admitted[:j], admitted[j+1:]...)
								got, err := lim.GiveBackAt(context.Background(), identity, d, time.UnixMicro(now))
								if err != nil {
									return fmt.Errorf("%s: give-back %d: %w", identity, i, err)
								}
								if want := model.GiveBack(d, now); got != want {
									return fmt.Errorf("%s %s, give-back at %d of %+v: script %v, model %v", identity, p, now, d, got, want)
								}
							}
							got, err := lim.AllowAt(context.Background(), identity, time.UnixMicro(now))
							if err != nil {
								return fmt.Errorf("%s: request %d: %w", identity, i, err)
							}
							if want := model.Allow(now); got != want {
								return fmt.Errorf("%s %s, request %d at %d: script %+v, model %+v", identity, p, i, now, got, want)
							}
							if got.Allowed {
								admitted = append(admitted, got)
							}
						}
						return nil
					})
				}
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			limiterMode{batch: true}.check(t, limiters)
		})
	}
}
