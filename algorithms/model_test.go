package algorithms_test

import (
	"math/rand/v2"
	"testing"

	"github.com/ratelab/ratelab/algorithms"
)

// replay returns a model of name under p that has seen the requests at times.
func replay(t *testing.T, name string, p algorithms.Policy, times []int64) algorithms.Model {
	t.Helper()
	m, err := algorithms.NewModel(name, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, at := range times {
		m.Allow(at)
	}
	return m
}

// TestRetryAfterIsExact: a denied request's retry-after is never 0, waiting exactly that
// long is admitted, and one microsecond less is still denied. The scripts make the
// models' decisions (TestScriptsMatchModels), so this holds for them too.
func TestRetryAfterIsExact(t *testing.T) {
	t.Parallel()
	for _, name := range algorithms.Names() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for pi, p := range oraclePolicies {
				rng := rand.New(rand.NewPCG(uint64(pi), 99))
				times := requestTimes(rng, p, 400)
				m := replay(t, name, p, nil)
				denials := 0
				for i, now := range times {
					d := m.Allow(now)
					if d.Remaining < 0 {
						t.Fatalf("%s request %d: remaining %d", p, i, d.Remaining)
					}
					if d.Allowed {
						if d.RetryAfter != 0 {
							t.Fatalf("%s request %d: allowed with retry-after %v", p, i, d.RetryAfter)
						}
						continue
					}
					denials++
					retry := d.RetryAfter.Microseconds()
					if retry <= 0 {
						t.Fatalf("%s request %d: denied with retry-after %v", p, i, d.RetryAfter)
					}
					if !replay(t, name, p, times[:i]).Allow(now + retry).Allowed {
						t.Fatalf("%s request %d at %d: denied, retry after %dµs, and denied again then", p, i, now, retry)
					}
					if retry > 1 && replay(t, name, p, times[:i]).Allow(now+retry-1).Allowed {
						t.Fatalf("%s request %d at %d: retry after %dµs, but admitted 1µs earlier", p, i, now, retry)
					}
				}
				if denials == 0 {
					t.Fatalf("%s: no request was denied; the traffic proves nothing", p)
				}
			}
		})
	}
}

// TestDeniedConsumesNothing: a denial leaves the state as it was, so a stream of
// denied requests does not push the next admission further away.
func TestDeniedConsumesNothing(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 4, Window: 1_000_000_000, Burst: 4} // 1s
	for _, name := range algorithms.Names() {
		m := replay(t, name, p, nil)
		now := int64(1_790_000_000_000_000)
		var first algorithms.Decision
		for i := 0; i < 20; i++ {
			d := m.Allow(now)
			if i == 4 {
				first = d
			}
			if i >= 4 && (d.Allowed || d.RetryAfter != first.RetryAfter) {
				t.Fatalf("%s: denial %d gives %+v, the first gave %+v", name, i-4, d, first)
			}
		}
		if !m.Allow(now + first.RetryAfter.Microseconds()).Allowed {
			t.Fatalf("%s: 16 denials moved the next admission", name)
		}
	}
}
