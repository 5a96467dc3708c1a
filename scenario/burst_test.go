package scenario

import (
	"testing"
	"time"
)

func TestPeakInInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		times []int64
		width int64
		want  int64
	}{
		{"none", nil, 10, 0},
		{"one", []int64{5}, 10, 1},
		{"all inside", []int64{0, 3, 9}, 10, 3},
		{"width is half-open", []int64{0, 10}, 10, 1},
		{"just inside", []int64{0, 9}, 10, 2},
		{"equal times", []int64{4, 4, 4}, 1, 3},
		{"best window in the middle", []int64{0, 20, 21, 22, 29, 40}, 10, 4},
		{"two windows back to back", []int64{0, 1, 2, 10, 11, 12}, 10, 3},
		{"boundary burst", []int64{90, 92, 94, 96, 98, 100, 102, 104, 106, 108}, 100, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := PeakInInterval(tt.times, tt.width); got != tt.want {
				t.Fatalf("PeakInInterval(%v, %d) = %d; want %d", tt.times, tt.width, got, tt.want)
			}
		})
	}
}

func TestAnalyzeBursts(t *testing.T) {
	t.Parallel()
	w := time.Second
	// Identity 1 gets 4 just before the edge at 1s and 4 just after it: 8 in one W, 2L for L=4.
	burst := []int64{950_000, 960_000, 970_000, 980_000, 1_000_000, 1_010_000, 1_020_000, 1_030_000}
	even := []int64{0, 250_000, 500_000, 750_000, 1_000_000, 1_250_000}
	b := AnalyzeBursts([][]int64{even, burst, nil}, 4, w)
	want := Burst{PeakInWindow: 8, PeakInTenthWindow: 8, PeakIdentity: 1, BurstRatio: 2}
	if b != want {
		t.Fatalf("AnalyzeBursts = %+v; want %+v", b, want)
	}
	b = AnalyzeBursts([][]int64{even}, 4, w)
	if b.PeakInWindow != 4 || b.PeakInTenthWindow != 1 || b.BurstRatio != 1 {
		t.Fatalf("evenly spaced: %+v", b)
	}
	// Unsorted input is sorted first.
	b = AnalyzeBursts([][]int64{{1_030_000, 950_000, 1_000_000}}, 4, w)
	if b.PeakInWindow != 3 {
		t.Fatalf("unsorted: %+v", b)
	}
}

func TestNewTimeline(t *testing.T) {
	t.Parallel()
	w := time.Second
	edge := int64(10_000_000)
	times := []int64{edge - 1_000_001, edge - 1_000_000, edge - 50_000, edge - 1, edge, edge + 99_999, edge + 999_999, edge + 1_000_000}
	tl := NewTimeline("10.0.0.1", times, edge, w)
	if tl.BucketMicros != 100_000 || len(tl.Counts) != TimelineBuckets {
		t.Fatalf("timeline shape: %+v", tl)
	}
	want := []int64{1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	for i := range want {
		if tl.Counts[i] != want[i] {
			t.Fatalf("counts %v; want %v", tl.Counts, want)
		}
	}
}
