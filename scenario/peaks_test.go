package scenario

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestPeakTrackerMatchesAnalyzeBursts feeds random admitted times, bunched and
// sparse, to a tracker per identity and checks its peaks against AnalyzeBursts.
func TestPeakTrackerMatchesAnalyzeBursts(t *testing.T) {
	t.Parallel()
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 9))
		window := time.Duration(1+rng.IntN(2000)) * time.Millisecond
		w := window.Microseconds()
		ids := 1 + rng.IntN(5)
		admitted := make([][]int64, ids)
		trackers := make([]PeakTracker, ids)
		now := int64(1_790_000_000_000_000)
		for range 3000 {
			switch rng.IntN(4) {
			case 0:
			case 1:
				now += rng.Int64N(w/50 + 1)
			case 2:
				now += rng.Int64N(w/5 + 1)
			default:
				now += rng.Int64N(3 * w)
			}
			id := rng.IntN(ids)
			admitted[id] = append(admitted[id], now)
			trackers[id].Add(now, w, TenthOf(w))
		}
		want := AnalyzeBursts(slices.Clone(admitted), 10, window)
		var inW, inTenth int64
		for _, tr := range trackers {
			inW, inTenth = max(inW, tr.InWindow), max(inTenth, tr.InTenth)
		}
		if inW != want.PeakInWindow || inTenth != want.PeakInTenthWindow {
			t.Fatalf("seed %d, W %s: tracker %d/%d, AnalyzeBursts %d/%d", seed, window, inW, inTenth, want.PeakInWindow, want.PeakInTenthWindow)
		}
	}
}
