package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// FormatHTML is hammer's report as one self-contained page: charts, every table and
// the JSON report, opening offline.
const FormatHTML = "html"

// The page's parts, embedded: uPlot (html/README.md says which version and where
// from), ratelab's page, style and charts.
var (
	//go:embed html/uPlot.iife.min.js
	uplotJS string
	//go:embed html/uPlot.min.css
	uplotCSS string
	//go:embed html/hammer.js
	hammerJS string
	//go:embed html/hammer.css
	hammerCSS string
	//go:embed html/hammer.html.tmpl
	hammerPage string
)

var hammerPageTemplate = template.Must(template.New("hammer").Parse(hammerPage))

// htmlCell is one cell of an HTML table.
type htmlCell struct {
	Text string
	Num  bool
}

type htmlGrid struct {
	Headers []htmlCell
	Rows    [][]htmlCell
}

type htmlThreshold struct {
	OK         bool
	Mark, Text string
}

// htmlSection is one of the report's sections (hammerSections) on the page: a table,
// a text chart or the thresholds. A part that a later report adds to hammerSections
// (a fault timeline, a per-tier table) appears here as it does in the terminal.
type htmlSection struct {
	ID, Title  string
	Grid       *htmlGrid
	Chart      string
	Thresholds []htmlThreshold
}

type htmlPage struct {
	Title, TimelineNote, Version string
	Embedded                     bool
	Alarms                       []string
	Run                          [][2]string
	Sections                     []htmlSection
	JSON                         template.JS
	UPlotJS, JS                  template.JS
	UPlotCSS, CSS                template.CSS
}

// HammerHTML writes h as one HTML page that needs nothing else: the run, the charts
// (the boundary timeline of every algorithm, decisions over the run, latency
// distributions) drawn in the browser by the embedded uPlot from the embedded JSON
// report, and every table of the terminal report.
func HammerHTML(w io.Writer, h *Hammer) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	// json.Marshal escapes <, > and &, so the JSON cannot end its script element.
	page := htmlPage{
		Title:    fmt.Sprintf("%s, %s, %s", h.Pattern, plural(len(h.Algorithms), "algorithm"), h.StartedAt.UTC().Format("2006-01-02 15:04 UTC")),
		Version:  cmpOr(h.Version, "(unknown version)"),
		Embedded: h.Embedded,
		Alarms:   hammerAlarms(h),
		Run:      hammerRunRows(h),
		JSON:     template.JS(data),
		UPlotJS:  template.JS(uplotJS), JS: template.JS(hammerJS),
		UPlotCSS: template.CSS(uplotCSS), CSS: template.CSS(hammerCSS),
	}
	if tl, _ := timelineOf(h); tl != nil {
		page.TimelineNote = timelineHeading(h) + ". The bars are what one window let through in each tenth; the line is what was admitted in the window before each bar's end: " +
			"a limit that holds keeps it under L, a fixed window lets it reach 2L across the edge."
	}
	timeline := timelineChart(h)
	for i, s := range hammerSections(h) {
		if s.chart != "" && s.chart == timeline {
			continue // drawn above, as the headline chart
		}
		sec := htmlSection{ID: fmt.Sprintf("table-%d", i+1), Title: s.title, Chart: s.chart}
		if s.grid != nil {
			sec.Grid = toHTMLGrid(s.grid)
		}
		for _, th := range s.thresholds {
			sec.Thresholds = append(sec.Thresholds, htmlThreshold{OK: th.OK, Mark: strings.TrimSpace(thresholdMark(th)), Text: describeThreshold(th)})
		}
		page.Sections = append(page.Sections, sec)
	}
	return hammerPageTemplate.Execute(w, page)
}

func toHTMLGrid(g *grid) *htmlGrid {
	num := func(i int) bool { return i >= g.firstNumeric && (g.lastNumeric == 0 || i <= g.lastNumeric) }
	out := &htmlGrid{}
	for i, hd := range g.headers {
		out.Headers = append(out.Headers, htmlCell{Text: hd, Num: num(i)})
	}
	for _, row := range g.rows {
		cells := make([]htmlCell, len(row))
		for i, c := range row {
			cells[i] = htmlCell{Text: c, Num: num(i)}
		}
		out.Rows = append(out.Rows, cells)
	}
	return out
}
