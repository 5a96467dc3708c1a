package scenario

// PeakTracker is the burst analysis of AnalyzeBursts made one admitted time at a
// time, for traces too long to keep every time: it holds only the times of the
// last interval of length W. Fed the same times in ascending order, it finds the
// same peaks as PeakInInterval over W and over W/10. The zero value is ready; the
// widths are passed to Add so that millions of trackers do not each store them.
type PeakTracker struct {
	// times are the admitted times (µs) of the last W, from head on; tenth is the
	// index of the first of them in the last W/10.
	times       []int64
	head, tenth int
	// InWindow and InTenth are the peaks so far: the most times in any interval of
	// length W, and of length W/10.
	InWindow, InTenth int64
}

// Add records an admitted time t (µs, not before the last one) for widths w and
// tenth (TenthOf(w)).
func (p *PeakTracker) Add(t, w, tenth int64) {
	for p.head < len(p.times) && t-p.times[p.head] >= w {
		p.head++
	}
	p.tenth = max(p.tenth, p.head)
	for p.tenth < len(p.times) && t-p.times[p.tenth] >= tenth {
		p.tenth++
	}
	if p.head > 0 && p.head >= len(p.times)/2 {
		n := copy(p.times, p.times[p.head:])
		p.times = p.times[:n]
		p.tenth -= p.head
		p.head = 0
	}
	p.times = append(p.times, t)
	p.InWindow = max(p.InWindow, int64(len(p.times)-p.head))
	p.InTenth = max(p.InTenth, int64(len(p.times)-p.tenth))
}

// TenthOf is the width of the short interval AnalyzeBursts uses for a window of w µs.
func TenthOf(w int64) int64 { return max(1, w/10) }
