package simulate

import "testing"

// BenchmarkLimits decides a keyed trace by the contract's policy file: two limits
// for free clients, one for pro, a shadow one for writes. One op is one request.
func BenchmarkLimits(b *testing.B) {
	reqs := keyedTrace(9, 200_000)
	file := issueFile(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		l, err := NewLimits(file)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range reqs {
			if i == b.N {
				break
			}
			l.Add(r)
			i++
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
