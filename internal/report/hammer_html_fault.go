package report

import "fmt"

// firstFault is the fault of the report's first row that had one; nil without --fault.
func firstFault(h *Hammer) *Fault {
	for _, a := range h.Algorithms {
		if a.Fault != nil {
			return a.Fault
		}
	}
	return nil
}

// faultCharts is the page's fault timeline section, when a fault ran: the page draws
// it from algorithms[].fault.timeline, one chart per algorithm and fail mode.
func faultCharts(h *Hammer) []htmlCharts {
	f := firstFault(h)
	if f == nil {
		return nil
	}
	return []htmlCharts{{ID: "faults", Title: fmt.Sprintf("Fault timeline: %s at +%s for %s", f.Kind, millis(f.StartMs), millis(f.DurationMs)),
		Note: fmt.Sprintf("Every request per %s through the fault, by how it was decided: by the limiter (admitted, denied), by the fail mode (fail-open, fail-closed, local) or not at all (errors); "+
			"the x axis is ms from the fault's start, the shaded span the fault (a line for an instant fault).", millis(f.Timeline.BucketMs))}}
}

// faultTimelineChart is the terminal's text fault timeline, which the page draws instead.
func faultTimelineChart(h *Hammer) string {
	f := firstFault(h)
	if f == nil {
		return ""
	}
	return faultChart(h, f)
}
