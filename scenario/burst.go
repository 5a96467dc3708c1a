package scenario

import (
	"slices"
	"time"
)

// PeakInInterval is the most of times (microseconds, ascending) that fall in any
// interval of length width, [t, t+width): the sliding two-pointer over the sorted times.
// An interval of length W is what every algorithm's worst case is stated for.
func PeakInInterval(times []int64, width int64) int64 {
	var peak int64
	lo := 0
	for hi, t := range times {
		for t-times[lo] >= width {
			lo++
		}
		peak = max(peak, int64(hi-lo+1))
	}
	return peak
}

// Burst is what the burst analysis found in one run: the most requests admitted for
// one identity in any interval of length W and of W/10, by the decisions' server times.
type Burst struct {
	// PeakInWindow is the most admitted for one identity in any interval of length W.
	PeakInWindow int64 `json:"peak_in_window"`
	// PeakInTenthWindow is the most admitted for one identity in any interval of length W/10.
	PeakInTenthWindow int64 `json:"peak_in_tenth_window"`
	// PeakIdentity is the identity that reached PeakInWindow (the first, by index).
	PeakIdentity int `json:"peak_identity"`
	// BurstRatio is PeakInWindow / L: 1 means the limit held exactly in every window.
	BurstRatio float64 `json:"burst_ratio"`
}

// AnalyzeBursts computes the burst analysis from each identity's admitted times
// (microseconds, in any order; sorted in place) for limit per window.
func AnalyzeBursts(admitted [][]int64, limit int64, window time.Duration) Burst {
	w := window.Microseconds()
	var b Burst
	for id, times := range admitted {
		slices.Sort(times)
		if p := PeakInInterval(times, w); p > b.PeakInWindow {
			b.PeakInWindow, b.PeakIdentity = p, id
		}
		b.PeakInTenthWindow = max(b.PeakInTenthWindow, PeakInInterval(times, max(1, w/10)))
	}
	if limit > 0 {
		b.BurstRatio = float64(b.PeakInWindow) / float64(limit)
	}
	return b
}

// TimelineBuckets is how many W/10 buckets a timeline holds: one window either side of its edge.
const TimelineBuckets = 20

// Timeline is how many requests one identity had admitted in each tenth of a window
// around one window edge: the boundary burst as a picture.
type Timeline struct {
	// Identity is the identity followed.
	Identity string `json:"identity"`
	// BucketMicros is the bucket width, W/10.
	BucketMicros int64 `json:"bucket_us"`
	// Counts are admitted requests per bucket, from one window before the edge to one
	// window after it; the edge is between Counts[9] and Counts[10].
	Counts []int64 `json:"counts"`
}

// NewTimeline buckets the admitted times (microseconds) of one identity around the
// window edge at edgeMicros.
func NewTimeline(identity string, times []int64, edgeMicros int64, window time.Duration) Timeline {
	bucket := max(1, window.Microseconds()/10)
	from := edgeMicros - TimelineBuckets/2*bucket
	tl := Timeline{Identity: identity, BucketMicros: bucket, Counts: make([]int64, TimelineBuckets)}
	for _, t := range times {
		if t < from {
			continue
		}
		if i := (t - from) / bucket; i < TimelineBuckets {
			tl.Counts[i]++
		}
	}
	return tl
}
