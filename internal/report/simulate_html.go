package report

import (
	"fmt"
	"io"
)

// SimulateHTML writes s as one HTML page, hammer's (FormatHTML): the run, the
// boundary timeline of every algorithm (one policy) or the sweep's trade-off per
// algorithm (several), every table of the terminal report, and the JSON report.
// simulate counts no decisions per W/10 and times no checks: the page has no such
// charts.
func SimulateHTML(w io.Writer, s *Simulate) error {
	title := fmt.Sprintf("%s, %s", s.Source, plural(len(s.Algorithms), "algorithm"))
	if s.Sweep {
		title += " (a sweep)"
	}
	if s.Requests > 0 {
		title += ", " + s.First.UTC().Format("2006-01-02 15:04 UTC")
	}
	page := htmlPage{Command: "simulate", Title: title, Version: s.Version, Run: simulateRunRows(s)}
	if s.Interrupted {
		page.Alarms = []string{"INTERRUPTED: the figures cover what was read"}
	}
	if tl := simulateTimeline(s); tl != "" {
		page.Charts = append(page.Charts, htmlCharts{ID: "timeline", Title: "Boundary timeline",
			Note: simulateTimelineHeading(s) + ". The bars are what one window let through in each tenth; the line is what was admitted in the window before each bar's end: " +
				"a limit that holds keeps it under L, a fixed window lets it reach 2L across the edge."})
	}
	if s.Sweep {
		page.Charts = append(page.Charts, htmlCharts{ID: "sweep", Title: "Sweep: who paid, per policy", Two: true,
			Note: "Per algorithm and policy: the well-behaved clients refused (within the limit over the whole span, denied at least once) " +
				"against the abusive clients admitted (over it, yet more than L in some window W). A policy that holds both low fits the traffic."})
	}
	meta := pageMeta{Command: "simulate"}
	for _, a := range s.Algorithms {
		label := a.Name
		if s.Sweep {
			label += " " + simPolicy(a)
		}
		meta.Labels = append(meta.Labels, label)
		meta.Policies = append(meta.Policies, simPolicy(a))
	}
	drawn := []string{simulateTimeline(s)}
	if s.Sweep {
		drawn = append(drawn, sweepChart(s))
	}
	return writePage(w, page, s, meta, simulateSections(s), drawn...)
}
