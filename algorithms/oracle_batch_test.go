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
