package report

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// HammerTable writes h for a terminal: the run, what each algorithm let through, its
// latency, the cache, the timeline chart and the thresholds, with box-drawn tables.
func HammerTable(w io.Writer, h *Hammer) error {
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, "ratelab hammer")
	for _, a := range hammerAlarms(h) {
		fmt.Fprintf(ew, "  !! %s\n", a)
	}
	for _, r := range hammerRunRows(h) {
		fmt.Fprintf(ew, "  %-12s %s\n", r[0], r[1])
	}
	for _, s := range hammerSections(h) {
		fmt.Fprintf(ew, "\n%s\n", s.title)
		switch {
		case s.grid != nil:
			renderGrid(ew, renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)}), s.grid)
		case s.chart != "":
			fmt.Fprint(ew, s.chart)
		}
		for _, th := range s.thresholds {
			fmt.Fprintf(ew, "  %s  %s\n", thresholdMark(th), describeThreshold(th))
		}
	}
	return ew.err
}
