package algorithms_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// oraclePolicies mix whole and fractional emission intervals (1s/3, 250ms/7), bursts
// above, equal to and below the limit.
var oraclePolicies = []algorithms.Policy{
	{Limit: 10, Window: time.Second},
	{Limit: 3, Window: time.Second, Burst: 1},
	{Limit: 7, Window: 250 * time.Millisecond, Burst: 20},
	{Limit: 20, Window: 2 * time.Second, Burst: 5},
}

// requestTimes returns n non-decreasing request times (µs) for policy p: runs of
// identical timestamps, gaps up to one and up to three times the average spacing W/L,
// and idle gaps of a few windows: traffic that keeps crossing the limit.
func requestTimes(rng *rand.Rand, p algorithms.Policy, n int) []int64 {
	w := p.WindowMicros()
	spacing := w / p.Limit
	now := int64(1_790_000_000_000_000) + rng.Int64N(w)
	times := make([]int64, n)
	for i := range times {
		switch r := rng.IntN(100); {
		case r < 25: // same microsecond as the last one
		case r < 85:
			now += rng.Int64N(spacing + 1)
		case r < 99:
			now += rng.Int64N(3*spacing + 1)
		default: // idle for a few windows
			now += w + rng.Int64N(2*w)
		}
		times[i] = now
	}
	return times
}

// TestScriptsMatchModels is the oracle test: for every algorithm, 10,000 random
// request times through the Lua script and through the Go model give the same
// decision, field by field, on real Redis and on the embedded one.
func TestScriptsMatchModels(t *testing.T) {
	for _, b := range redistest.All(t) {
		for _, name := range algorithms.Names() {
			t.Run(b.Name+"/"+name, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				keys := algorithms.MustKeyspace("oracle")
				total := 0
				for pi, p := range oraclePolicies {
					rng := rand.New(rand.NewPCG(uint64(pi), 42))
					lim, err := algorithms.NewRedis(b.Client, keys, name, p)
					if err != nil {
						t.Fatal(err)
					}
					model, err := algorithms.NewModel(name, p)
					if err != nil {
						t.Fatal(err)
					}
					identity := fmt.Sprintf("10.0.%d.%d", pi, rng.IntN(250))
					allowed := 0
					for i, now := range requestTimes(rng, p, 2500) {
						got, err := lim.AllowAt(ctx, identity, time.UnixMicro(now))
						if err != nil {
							t.Fatalf("request %d: %v", i, err)
						}
						want := model.Allow(now)
						if got != want {
							t.Fatalf("%s, request %d at %d: script %+v, model %+v", p, i, now, got, want)
						}
						if got.Allowed {
							allowed++
						}
						total++
					}
					// Both outcomes must be well represented, or the comparison proves little.
					if allowed < 250 || allowed > 2250 {
						t.Errorf("%s: %d of 2500 allowed; the generated traffic does not exercise both outcomes", p, allowed)
					}
				}
				if total < 10_000 {
					t.Fatalf("compared %d decisions, want at least 10,000", total)
				}
			})
		}
	}
}

// TestLeakyBucketGiveBackMatchesModel extends the oracle test to the leaky bucket's
// max delay and give-backs: random request times, with a max delay that binds for
// some policies, and at random points a give-back of a random earlier admission (some
// still waiting, some already gone, each at most once). Script and model must agree
// on every decision and on every give-back, on real Redis and on the embedded one,
// also with the deny cache on.
func TestLeakyBucketGiveBackMatchesModel(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			keys := algorithms.MustKeyspace("oracle-gb")
			var decisions, giveBacks, returned, delayDenials int
			for pi, p := range oraclePolicies {
				spacing := p.Window / time.Duration(p.Limit)
				// The last set adds the deny cache: a give-back that returns a slot must
				// drop the identity's cached denial, or the next decision would differ.
				for oi, opts := range [][]algorithms.Option{nil, {algorithms.WithMaxDelay(3 * spacing)}, {algorithms.WithMaxDelay(0)},
					{algorithms.WithMaxDelay(3 * spacing), algorithms.WithDenyCache(0)}} {
					rng := rand.New(rand.NewPCG(uint64(pi), uint64(oi)+11))
					lim, err := algorithms.NewRedis(b.Client, keys, algorithms.LeakyBucket, p, opts...)
					if err != nil {
						t.Fatal(err)
					}
					model, err := algorithms.NewModel(algorithms.LeakyBucket, p, opts...)
					if err != nil {
						t.Fatal(err)
					}
					identity := fmt.Sprintf("10.5.%d.%d", pi, oi)
					var admitted []algorithms.Decision
					for i, now := range requestTimes(rng, p, 1500) {
						if len(admitted) > 0 && rng.IntN(4) == 0 {
							j := len(admitted) - 1 - rng.IntN(min(len(admitted), 8))
							d := admitted[j]
							admitted = append(admitted[:j], admitted[j+1:]...)
							got, err := lim.GiveBackAt(ctx, identity, d, time.UnixMicro(now))
							if err != nil {
								t.Fatalf("give-back %d: %v", i, err)
							}
							if want := model.GiveBack(d, now); got != want {
								t.Fatalf("%s %d, give-back at %d of %+v: script %v, model %v", p, oi, now, d, got, want)
							}
							giveBacks++
							if got {
								returned++
							}
						}
						got, err := lim.AllowAt(ctx, identity, time.UnixMicro(now))
						if err != nil {
							t.Fatalf("request %d: %v", i, err)
						}
						want := model.Allow(now)
						if got != want {
							t.Fatalf("%s %d, request %d at %d: script %+v, model %+v", p, oi, i, now, got, want)
						}
						// A denial while the queue has room for one more (its level, at most
						// ResetAfter·L, is at most (B−1) requests) is the max delay's.
						if !got.Allowed && got.ResetAfter.Microseconds()*p.Limit <= (p.EffectiveBurst()-1)*p.WindowMicros() {
							delayDenials++
						}
						if got.Allowed {
							admitted = append(admitted, got)
						}
						decisions++
					}
				}
			}
			t.Logf("%d decisions, %d give-backs of which %d returned a slot, %d denials by the max delay", decisions, giveBacks, returned, delayDenials)
			if decisions < 18_000 || returned < 300 || giveBacks-returned < 300 || delayDenials < 300 {
				t.Fatalf("%d decisions, %d give-backs of which %d returned a slot, %d denials by the max delay: the traffic does not exercise them all",
					decisions, giveBacks, returned, delayDenials)
			}
		})
	}
}
