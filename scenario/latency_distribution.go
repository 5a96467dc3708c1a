package scenario

import (
	"math"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Percentile is one point of a latency distribution: the latency (µs) that Percentile
// percent of the values were at or under.
type Percentile struct {
	Percentile float64 `json:"percentile"`
	Us         int64   `json:"us"`
}

// Distribution reads h's percentile distribution at four points per decade of
// 1/(1-p), as HdrHistogram's plots draw it (0, 43.8, 68.4, 82.2, 90, …, 99, …), up to
// the last percentile h has values enough to tell apart, and its maximum: nil when
// h is empty or nil.
func Distribution(h *hdrhistogram.Histogram) []Percentile {
	if h == nil || h.TotalCount() == 0 {
		return nil
	}
	n := float64(h.TotalCount())
	var out []Percentile
	for k := 0; ; k++ {
		tail := math.Pow(10, -float64(k)/4) // 1 - p
		if tail*n < 1 {
			break
		}
		p := math.Round(100*(1-tail)*1e4) / 1e4
		out = append(out, Percentile{Percentile: p, Us: h.ValueAtPercentile(p)})
	}
	return append(out, Percentile{Percentile: 100, Us: h.Max()})
}
