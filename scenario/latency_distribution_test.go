package scenario

import (
	"testing"
	"time"
)

func TestDistribution(t *testing.T) {
	t.Parallel()
	if Distribution(nil) != nil || Distribution(NewCheckHistogram()) != nil {
		t.Error("an empty histogram has a distribution")
	}
	h := NewCheckHistogram()
	for i := 1; i <= 10_000; i++ {
		record(h, time.Duration(i)*time.Microsecond)
	}
	d := Distribution(h)
	// 10,000 values tell percentiles apart up to 99.99 (1 - p = 10^-4): 17 points, and the max.
	if len(d) != 18 || d[0].Percentile != 0 || d[len(d)-1].Percentile != 100 || d[len(d)-1].Us != h.Max() {
		t.Fatalf("distribution %+v", d)
	}
	for i, p := range d {
		if i > 0 && (p.Percentile <= d[i-1].Percentile || p.Us < d[i-1].Us) {
			t.Errorf("not increasing at %d: %+v", i, d)
		}
	}
	for _, p := range d {
		if p.Percentile == 99 && (p.Us < 9890 || p.Us > 9910) {
			t.Errorf("p99 of 1..10000 µs is %d", p.Us)
		}
	}
}
