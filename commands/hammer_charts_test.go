package commands

import (
	"context"
	"testing"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/scenario"
)

func percentiles(ps []scenario.Percentile) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = p.Percentile
	}
	return out
}

// The report carries what the HTML page draws: every decision per W/10 from the run's
// start, and the latency distributions, ending at the maxima.
func TestHammerReportHasChartData(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			h, err := hammerJSON(t, context.Background(), boundaryOptions(b.URL(), 10, algorithms.SlidingLog))
			if err != nil {
				t.Fatal(err)
			}
			a := byName(t, h, algorithms.SlidingLog)
			d := a.Decisions
			if d == nil || d.BucketMs != 100 || len(d.Allowed) != len(d.Denied) {
				t.Fatalf("decisions %+v", d)
			}
			// Every decision falls after the run's start: the sums are the checks.
			if sum(d.Allowed) != a.Checks.Allowed || sum(d.Denied) != a.Checks.Denied || a.Checks.Allowed == 0 || a.Checks.Denied == 0 {
				t.Errorf("decisions per W/10 sum to %d allowed, %d denied; the checks were %+v", sum(d.Allowed), sum(d.Denied), a.Checks)
			}
			for name, ps := range map[string][]float64{"check": percentiles(a.CheckPercentiles), "e2e": percentiles(a.E2EPercentiles)} {
				if len(ps) < 3 || ps[0] != 0 || ps[len(ps)-1] != 100 {
					t.Errorf("%s distribution %v", name, ps)
				}
			}
			if last := a.CheckPercentiles[len(a.CheckPercentiles)-1]; last.Us != a.CheckLatencyUs.Max {
				t.Errorf("the check distribution ends at %d µs, the max is %d", last.Us, a.CheckLatencyUs.Max)
			}
		})
	}
}
