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

// multiSubset are the sets the batching and deny-cache modes of the combined oracle
// run on: every algorithm, a leaky bucket included, kept small for -race.
var multiSubset = []int{0, 1, 2, 3}

// checkMultiStats fails the test if the mode's options did nothing over the run.
func checkMultiStats(t *testing.T, mode limiterMode, limiters []*algorithms.MultiRedis) {
	t.Helper()
	var s algorithms.Stats
	for _, l := range limiters {
		st := l.Stats()
		s.Local += st.Local
		s.RedisCalls += st.RedisCalls
		s.RoundTrips += st.RoundTrips
	}
	if mode.batch && s.RoundTrips >= s.RedisCalls {
		t.Errorf("batching: %d round trips for %d calls; no round trip was shared", s.RoundTrips, s.RedisCalls)
	}
	if !mode.batch && s.RoundTrips != 0 {
		t.Errorf("%d round trips counted without batching", s.RoundTrips)
	}
	if mode.deny && s.Local == 0 {
		t.Errorf("deny cache: no check was answered locally (%d calls to Redis)", s.RedisCalls)
	}
	if !mode.deny && s.Local != 0 {
		t.Errorf("%d checks answered locally without a deny cache", s.Local)
	}
	t.Logf("%s %d calls to Redis, %d round trips, %d answered locally", mode.name, s.RedisCalls, s.RoundTrips, s.Local)
}

// TestMultiScriptMatchesModelBatched is the combined oracle with batching on: per
// set, one limiter checks four identities at once from as many goroutines (with one
// round trip in flight, so that their checks queue and share it), each identity's
// random request times in order against a model of its own; every decision must
// equal the model's, every limit's field by field, on redis-server, the cluster and
// the embedded Redis.
func TestMultiScriptMatchesModelBatched(t *testing.T) {
	const identitiesN, requests = 4, 400
	mode := limiterModes[1]
	for _, b := range allBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			keys := algorithms.MustKeyspace("oracle-multi" + mode.keys())
			var limiters []*algorithms.MultiRedis
			for _, si := range multiSubset {
				set := multiSets[si]
				m, err := algorithms.NewMultiRedis(b.Client, keys, fmt.Sprintf("set%d", si), set, mode.opts...)
				if err != nil {
					t.Fatal(err)
				}
				limiters = append(limiters, m)
				var g errgroup.Group
				for k := range identitiesN {
					g.Go(func() error {
						model, err := algorithms.NewMultiModel(set)
						if err != nil {
							return err
						}
						rng := rand.New(rand.NewPCG(uint64(si), uint64(k)+11))
						identity := fmt.Sprintf("10.8.%d.%d", si, k)
						for i, now := range requestTimes(rng, set[0].Policy, requests) {
							got, err := m.AllowAt(context.Background(), identity, time.UnixMicro(now))
							if err != nil {
								return fmt.Errorf("set %d request %d: %w", si, i, err)
							}
							if want := model.Allow(now); !sameMulti(got, want) {
								return fmt.Errorf("set %d, %s, request %d at %d:\nscript %+v\nmodel  %+v", si, identity, i, now, got, want)
							}
						}
						return nil
					})
				}
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
			}
			checkMultiStats(t, mode, limiters)
		})
	}
}

// TestMultiScriptMatchesModelCached is the combined oracle with the deny cache on.
// Every answer Redis gives equals the model's field by field. Every answer the cache
// gives has the model's verdict, DeniedBy, RetryAfter, time and the Decision of every
// limit still denying (so the headers are Redis's); a limit whose own wait is over
// admits in both, and an admitting limit's Remaining is at least 1 and at most the
// model's (the cache's is what Redis last said: a lower bound; its ResetAfter, also
// Redis's last, is not compared).
func TestMultiScriptMatchesModelCached(t *testing.T) {
	const requests = 1500
	mode := limiterModes[2]
	for _, b := range allBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			keys := algorithms.MustKeyspace("oracle-multi" + mode.keys())
			var limiters []*algorithms.MultiRedis
			local := 0
			for _, si := range multiSubset {
				set := multiSets[si]
				m, err := algorithms.NewMultiRedis(b.Client, keys, fmt.Sprintf("set%d", si), set, mode.opts...)
				if err != nil {
					t.Fatal(err)
				}
				limiters = append(limiters, m)
				model, err := algorithms.NewMultiModel(set)
				if err != nil {
					t.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(uint64(si), 13))
				identity := fmt.Sprintf("10.7.%d.%d", si, rng.IntN(250))
				for i, now := range requestTimes(rng, set[0].Policy, requests) {
					before := m.Stats().Local
					got, err := m.AllowAt(ctx, identity, time.UnixMicro(now))
					if err != nil {
						t.Fatalf("set %d request %d: %v", si, i, err)
					}
					want := model.Allow(now)
					cached := m.Stats().Local > before
					if cached {
						local++
						if msg := sameCachedMulti(got, want); msg != "" {
							t.Fatalf("set %d, request %d at %d, answered locally: %s\ncache %+v\nmodel %+v", si, i, now, msg, got, want)
						}
					} else if !sameMulti(got, want) {
						t.Fatalf("set %d, request %d at %d:\nscript %+v\nmodel  %+v", si, i, now, got, want)
					}
				}
			}
			checkMultiStats(t, mode, limiters)
			if local < 100 {
				t.Errorf("%d answers from the deny cache; the traffic does not exercise it", local)
			}
		})
	}
}

// sameCachedMulti says how a locally answered denial differs from the model's
// decision where it must not ("" when it does not).
func sameCachedMulti(got, want algorithms.MultiDecision) string {
	if got.Allowed || want.Allowed {
		return "the cache answers denials only, and the model must deny too"
	}
	if got.DeniedBy != want.DeniedBy || got.RetryAfter != want.RetryAfter || got.TimeMicros != want.TimeMicros ||
		got.Delay != 0 || len(got.Limits) != len(want.Limits) {
		return "DeniedBy, RetryAfter, Delay or time differ"
	}
	for i, g := range got.Limits {
		w := want.Limits[i]
		switch {
		case !g.Allowed && g != w:
			return fmt.Sprintf("limit %d denies: its decision differs", i)
		case g.Allowed && (!w.Allowed || g.Limit != w.Limit || g.Remaining < 1 || g.Remaining > w.Remaining ||
			g.RetryAfter != 0 || g.Delay != 0 || g.TimeMicros != w.TimeMicros):
			return fmt.Sprintf("limit %d admits: its decision differs beyond Remaining's lower bound", i)
		}
	}
	return ""
}
