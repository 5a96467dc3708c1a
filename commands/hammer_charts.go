package commands

import (
	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// chartData adds to a what the HTML report draws: the decisions per W/10 over the
// run and the latency distributions.
func chartData(a *report.Algorithm, d scenario.Decisions, check, e2e *hdrhistogram.Histogram) {
	if d.BucketMicros > 0 && len(d.Allowed) > 0 {
		a.Decisions = &report.Decisions{BucketMs: float64(d.BucketMicros) / 1000, Allowed: d.Allowed, Denied: d.Denied}
	}
	if !a.CheckLatencyUnknown {
		a.CheckPercentiles = scenario.Distribution(check)
	}
	a.E2EPercentiles = scenario.Distribution(e2e)
}
