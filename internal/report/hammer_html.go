package report

import (
	"fmt"
	"io"
)

// HammerHTML writes h as one HTML page that needs nothing else: the run, the charts
// (the boundary timeline of every algorithm, decisions over the run, latency
// distributions, the fault timeline when a fault ran) drawn in the browser by the
// embedded uPlot from the embedded JSON report, and every table of the terminal
// report.
func HammerHTML(w io.Writer, h *Hammer) error {
	page := htmlPage{
		Command: "hammer",
		Title:   fmt.Sprintf("%s, %s, %s", h.Pattern, plural(len(h.Algorithms), "algorithm"), h.StartedAt.UTC().Format("2006-01-02 15:04 UTC")),
		Version: h.Version,
		Alarms:  hammerAlarms(h),
		Run:     hammerRunRows(h),
	}
	timelineNote := ""
	if tl, _ := timelineOf(h); tl != nil {
		timelineNote = timelineHeading(h) + ". The bars are what one window let through in each tenth; the line is what was admitted in the window before each bar's end: " +
			"a limit that holds keeps it under L, a fixed window lets it reach 2L across the edge."
	}
	latencyNote := "Per algorithm: the limiter check alone and end to end (from each request's intended send time to its answer), by percentile; the x axis is logarithmic in 1/(1−p), as HdrHistogram plots are."
	if h.Embedded {
		latencyNote += " The backend is the in-process Redis: its latency is not representative of a real server."
	}
	page.Charts = []htmlCharts{
		{ID: "timeline", Title: "Boundary timeline", Note: timelineNote},
		{ID: "decisions", Title: "Admitted and denied per W/10, over the whole run", Two: true,
			Note: "Every decision of the limiter, for all identities, per tenth of a window, by the decision's server time from the run's start (a window edge)."},
		{ID: "latency", Title: "Latency distribution", Note: latencyNote, Two: true},
	}
	page.Charts = append(page.Charts, faultCharts(h)...)
	meta := pageMeta{Command: "hammer"}
	for _, a := range h.Algorithms {
		meta.Labels = append(meta.Labels, a.Label())
	}
	return writePage(w, page, h, meta, hammerSections(h), timelineChart(h), faultTimelineChart(h))
}
