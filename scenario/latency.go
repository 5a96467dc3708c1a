package scenario

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// maxLatencyMicros is the longest latency a histogram records; longer ones are clamped to it.
const maxLatencyMicros = int64(2 * time.Minute / time.Microsecond)

// NewCheckHistogram returns a histogram for per-check latency in microseconds, to three
// significant figures (0.1%).
func NewCheckHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxLatencyMicros, 3) }

// NewE2EHistogram returns a histogram for end-to-end latency in microseconds, to two
// significant figures (1%): there is one per worker, and at three figures hundreds of
// workers would hold tens of megabytes of counters.
func NewE2EHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, maxLatencyMicros, 2) }

// record adds d to h in microseconds, clamped to what h can hold.
func record(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(min(max(1, d.Microseconds()), maxLatencyMicros))
}

// Latency is a latency distribution's summary, in microseconds.
type Latency struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50"`
	P90   int64 `json:"p90"`
	P99   int64 `json:"p99"`
	P999  int64 `json:"p999"`
	Max   int64 `json:"max"`
}

// Summarize reads the percentiles of h; all zero when h is empty or nil.
func Summarize(h *hdrhistogram.Histogram) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	q := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return Latency{
		Count: h.TotalCount(),
		P50:   q[50], P90: q[90], P99: q[99], P999: q[99.9],
		Max: h.Max(),
	}
}
