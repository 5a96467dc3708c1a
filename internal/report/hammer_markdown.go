package report

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter/renderer"
)

// HammerMarkdown writes h as markdown: the sections of HammerTable under headings,
// the settings as a list, tables as markdown tables and the timeline in a code block.
func HammerMarkdown(w io.Writer, h *Hammer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "# ratelab hammer\n\n")
	if alarms := hammerAlarms(h); len(alarms) > 0 {
		for _, a := range alarms {
			fmt.Fprintf(ew, "> - **%s**\n", a)
		}
		fmt.Fprintln(ew)
	}
	for _, r := range hammerRunRows(h) {
		fmt.Fprintf(ew, "- **%s**: %s\n", r[0], r[1])
	}
	for _, s := range hammerSections(h) {
		fmt.Fprintf(ew, "\n## %s\n\n", s.title)
		switch {
		case s.grid != nil:
			renderGrid(ew, renderer.NewMarkdown(), s.grid)
		case s.chart != "":
			fmt.Fprintf(ew, "```\n%s```\n", s.chart)
		}
		for _, th := range s.thresholds {
			fmt.Fprintf(ew, "- %s %s\n", thresholdMark(th), describeThreshold(th))
		}
	}
	return ew.err
}
