package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// FormatHTML is a report as one self-contained page: charts, every table and the
// JSON report, opening offline. hammer and simulate write the same page.
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

var pageTemplate = template.Must(template.New("page").Parse(hammerPage))

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

// htmlSection is one of the report's sections (hammerSections, simulateSections) on
// the page: a table, a text chart or the thresholds. A part that a later report adds
// to those lists appears here as it does in the terminal.
type htmlSection struct {
	ID, Title  string
	Grid       *htmlGrid
	Chart      string
	Thresholds []htmlThreshold
}

// htmlCharts is a section of charts, drawn by the function of html/hammer.js that
// owns the element ID+"-charts"; Two lays them out two abreast.
type htmlCharts struct {
	ID, Title, Note string
	Two             bool
}

// pageMeta is what the page's script reads beside the report: which command wrote
// it, and each row of report.algorithms's label (and policy, for simulate).
type pageMeta struct {
	Command  string   `json:"command"`
	Labels   []string `json:"labels"`
	Policies []string `json:"policies,omitempty"`
}

type htmlPage struct {
	Command, Title, Version string
	Alarms                  []string
	Run                     [][2]string
	Charts                  []htmlCharts
	Sections                []htmlSection
	JSON, Meta              template.JS
	UPlotJS, JS             template.JS
	UPlotCSS, CSS           template.CSS
}

// writePage writes one page: report is the JSON report embedded whole, sections
// the report's sections, less those whose text chart is in drawn (the page draws
// them instead).
func writePage(w io.Writer, page htmlPage, report any, meta pageMeta, sections []hammerSection, drawn ...string) error {
	data, err := json.Marshal(report)
	if err != nil {
		return err
	}
	m, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	// json.Marshal escapes <, > and &, so the JSON cannot end its script element.
	page.JSON, page.Meta = template.JS(data), template.JS(m)
	page.UPlotJS, page.JS = template.JS(uplotJS), template.JS(hammerJS)
	page.UPlotCSS, page.CSS = template.CSS(uplotCSS), template.CSS(hammerCSS)
	page.Version = cmpOr(page.Version, "(unknown version)")
sections:
	for i, s := range sections {
		for _, d := range drawn {
			if s.chart != "" && s.chart == d {
				continue sections
			}
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
	return pageTemplate.Execute(w, page)
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
