package report

import (
	"fmt"
	"strings"
)

// levels are the bar heights of the timeline chart, lowest first.
var levels = []rune("▁▂▃▄▅▆▇█")

func timelineOf(h *Hammer) (first *Timeline, width int) {
	for _, a := range h.Algorithms {
		if a.Timeline != nil && len(a.Timeline.Counts) > 0 {
			if first == nil {
				first = a.Timeline
			}
			width = max(width, len(a.Label()))
		}
	}
	return first, width
}

func timelineHeading(h *Hammer) string {
	tl, _ := timelineOf(h)
	who := "identity " + tl.Identity
	if h.Pattern == "mixed" || h.Pattern == "boundary" {
		who = "boundary attacker " + tl.Identity
	}
	return fmt.Sprintf("Timeline: admitted per %s for %s, one window either side of the window edge at +%s",
		millis(tl.BucketMs), who, millis(tl.EdgeOffsetMs))
}

// timelineChart draws one row per algorithm: a bar per tenth of a window, the window
// edge in the middle, and what was admitted in the window before and after the edge.
// A fixed window's row shows full bars on both sides of the edge: 2L in one window length.
func timelineChart(h *Hammer) string {
	first, width := timelineOf(h)
	if first == nil {
		return ""
	}
	var top int64 = 1
	for _, a := range h.Algorithms {
		if a.Timeline != nil {
			for _, c := range a.Timeline.Counts {
				top = max(top, c)
			}
		}
	}
	half := len(first.Counts) / 2
	windowMs := first.BucketMs * float64(half)
	var b strings.Builder
	pad := strings.Repeat(" ", width+2)
	left := "-" + millis(windowMs)
	right := "+" + millis(windowMs)
	axis := left + strings.Repeat(" ", max(1, 2*half-len(left))) + "│" + strings.Repeat(" ", max(1, 2*half-len(right))) + right
	fmt.Fprintf(&b, "%s%s\n", pad, axis)
	for _, a := range h.Algorithms {
		tl := a.Timeline
		if tl == nil || len(tl.Counts) != len(first.Counts) {
			continue
		}
		fmt.Fprintf(&b, "%-*s  ", width, a.Label())
		var before, after int64
		for i, c := range tl.Counts {
			if i == half {
				b.WriteRune('│')
			}
			b.WriteString(bar(c, top))
			if i < half {
				before += c
			} else {
				after += c
			}
		}
		fmt.Fprintf(&b, "  %3d before, %3d after the edge; peak in W %d = %.2f L\n", before, after, a.PeakInWindow, a.BurstRatio)
	}
	fmt.Fprintf(&b, "%sone bar per %s; full height = %d admitted\n", pad, millis(first.BucketMs), top)
	return b.String()
}

func bar(c, top int64) string {
	if c <= 0 {
		return "  "
	}
	i := int((c*int64(len(levels)) + top - 1) / top)
	r := string(levels[min(len(levels), max(1, i))-1])
	return r + r
}
