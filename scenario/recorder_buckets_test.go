package scenario

import (
	"slices"
	"testing"
	"time"
)

func TestRecorderCountsDecisionsPerInterval(t *testing.T) {
	t.Parallel()
	r := NewRecorder([]string{"10.0.0.1", "10.0.0.2"})
	r.CountPer(50 * time.Millisecond)
	const from = 1_000_000 * 50_000            // a window edge, in µs
	r.Record("10.0.0.1", from-1, true, 0, nil) // before the start: left out
	r.Record("10.0.0.1", from, true, 0, nil)
	r.Record("10.0.0.2", from+49_999, false, 0, nil)
	r.Record("10.0.0.2", from+150_000, true, 0, nil)
	r.Record("10.0.0.2", from+150_001, false, 0, nil)
	r.Record("10.9.9.9", from+150_002, true, 0, nil) // not the run's: Unknown, not counted
	got := r.DecisionsFrom(from)
	if got.BucketMicros != 50_000 || !slices.Equal(got.Allowed, []int64{1, 0, 0, 1}) || !slices.Equal(got.Denied, []int64{1, 0, 0, 1}) {
		t.Errorf("decisions %+v", got)
	}
	r.Reset()
	if got := r.DecisionsFrom(from); len(got.Allowed) != 0 {
		t.Errorf("after Reset: %+v", got)
	}
	if got := NewRecorder(nil).DecisionsFrom(0); got.BucketMicros != 0 || got.Allowed != nil {
		t.Errorf("without CountPer: %+v", got)
	}
}
