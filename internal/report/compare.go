package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/olekukonko/tablewriter/renderer"

	"github.com/ratelab/ratelab/internal/compare"
)

// CompareFormats lists compare's output formats, the default first.
func CompareFormats() []string { return []string{FormatTable, FormatJSON, FormatMarkdown} }

// WriteComparison renders c in format (table, json or markdown) to w; a table is
// laid out for width columns (0: every column).
func WriteComparison(w io.Writer, format string, c *compare.Comparison, width int) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	case FormatMarkdown:
		return comparisonMarkdown(w, c)
	case FormatTable, "":
		return comparisonTable(w, c, width)
	}
	return fmt.Errorf("output format %q: choose one of %s", format, strings.Join(CompareFormats(), ", "))
}

// comparisonHead is what a reader must know before the figures: the two reports,
// what made them not comparable when forced, and the other settings that differ.
func comparisonHead(c *compare.Comparison) []string {
	describe := func(r *compare.Report) string {
		s := Shown(r.File)
		var parts []string
		if r.Version != "" {
			parts = append(parts, "ratelab "+Shown(r.Version))
		}
		if r.StartedAt != "" {
			parts = append(parts, "started "+Shown(r.StartedAt))
		}
		if r.Valid != nil && !*r.Valid {
			parts = append(parts, "NOT VALID: see its invalid_reasons")
		}
		if len(parts) > 0 {
			s += " (" + strings.Join(parts, ", ") + ")"
		}
		return s
	}
	out := []string{"base: " + describe(c.Base), "new:  " + describe(c.New)}
	for _, d := range c.Differences {
		out = append(out, "!! NOT COMPARABLE (compared with --force): "+Shown(d))
	}
	for _, n := range c.Notes {
		out = append(out, "differs: "+Shown(n))
	}
	return out
}

// comparisonGrid is every figure of both reports with its change.
func comparisonGrid(c *compare.Comparison) *grid {
	g := &grid{headers: []string{"subject", "figure", "base", "new", "change", ""}, firstNumeric: 2, lastNumeric: 4}
	last := ""
	for _, r := range c.Rows {
		subject := Shown(r.Subject)
		if r.Subject == last {
			subject = ""
		}
		last = r.Subject
		g.rows = append(g.rows, []string{subject, r.Figure, figureValue(r.Unit, r.Base), figureValue(r.Unit, r.New), change(r), r.Verdict})
	}
	return g
}

// figureValue writes a figure in its unit; "-" when the report lacks it.
func figureValue(u compare.Unit, v *float64) string {
	if v == nil {
		return "-"
	}
	switch u {
	case compare.UnitMicro:
		if *v < 0 {
			return "-" + micros(int64(-*v))
		}
		return micros(int64(*v))
	case compare.UnitRatio:
		// Four significant digits: a late-send ratio of 0.0005 is not 0.001.
		r, _ := strconv.ParseFloat(strconv.FormatFloat(*v, 'g', 4, 64), 64)
		return strconv.FormatFloat(r, 'f', -1, 64)
	case compare.UnitRate:
		return strconv.FormatFloat(*v, 'f', 1, 64)
	}
	return trimFloat(*v)
}

// change is a row's change, signed, in its unit and relative to the base.
func change(r compare.Row) string {
	if r.Change == nil {
		return "-"
	}
	if *r.Change == 0 {
		return "0"
	}
	sign := "+"
	if *r.Change < 0 {
		sign = ""
	}
	s := sign + figureValue(r.Unit, r.Change)
	if r.ChangeRatio != nil {
		s += fmt.Sprintf(" (%s%.1f%%)", sign, 100**r.ChangeRatio)
	} else {
		s += " (from 0)"
	}
	return s
}

// describeCheck says what one threshold found, in one line.
func describeCheck(ch compare.Check) string {
	subject := ch.Subject
	if subject == "" {
		subject = "any subject"
	}
	if ch.NoData != "" {
		return fmt.Sprintf("--max-regression %s: %s has no data (%s)", ch.Threshold, Shown(subject), Shown(ch.NoData))
	}
	worse := trimFloat(ch.Worse)
	if strings.HasSuffix(ch.Threshold, "%") {
		worse = fmt.Sprintf("%.1f%%", 100*ch.Worse)
		if math.IsInf(ch.Worse, 1) {
			worse = "from 0"
		}
	}
	if ch.Worse == 0 {
		return fmt.Sprintf("--max-regression %s: %s %s did not get worse", ch.Threshold, Shown(subject), ch.Figure)
	}
	return fmt.Sprintf("--max-regression %s: %s %s got worse by %s", ch.Threshold, Shown(subject), ch.Figure, worse)
}

func checkMark(ch compare.Check) string {
	if ch.OK {
		return "ok    "
	}
	return "MISSED"
}

func comparisonTable(w io.Writer, c *compare.Comparison, width int) error {
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, "ratelab compare")
	wrap := func(first, rest, text string) {
		if width > 0 {
			writeWrapped(ew, first, rest, text, max(width, MinTableWidth))
			return
		}
		ew.printf("%s%s\n", first, text)
	}
	for _, line := range comparisonHead(c) {
		wrap("  ", "    ", line)
	}
	fmt.Fprintln(ew)
	g := comparisonGrid(c)
	if width > 0 && gridWidth(g) > width {
		// Too wide for the terminal: a table per subject, without the subject column.
		for i, part := range splitBySubject(g) {
			if i > 0 {
				fmt.Fprintln(ew)
			}
			fmt.Fprintf(ew, "%s\n", Shown(part.title))
			fitted, _ := fitGrid(part.grid, width)
			renderGrid(ew, lightBox(), fitted)
		}
	} else {
		renderGrid(ew, lightBox(), g)
	}
	if len(c.Checks) > 0 {
		fmt.Fprintf(ew, "\nThresholds (--max-regression: how much a figure may get worse)\n")
		for _, ch := range c.Checks {
			wrap("  "+checkMark(ch)+"  ", strings.Repeat(" ", 10), describeCheck(ch))
		}
	}
	return ew.err
}

func comparisonMarkdown(w io.Writer, c *compare.Comparison) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "# ratelab compare\n\n")
	for _, line := range comparisonHead(c) {
		if strings.HasPrefix(line, "!!") {
			line = "**" + strings.TrimSpace(strings.TrimPrefix(line, "!!")) + "**"
		}
		fmt.Fprintf(ew, "- %s\n", line)
	}
	if missed := c.Missed(); len(missed) > 0 {
		fmt.Fprintf(ew, "\n> **%d threshold(s) missed**\n", len(missed))
	}
	fmt.Fprintln(ew)
	g := comparisonGrid(c)
	for _, row := range g.rows {
		if row[5] == "worse" {
			row[5] = "**worse**"
		}
	}
	renderGrid(ew, renderer.NewMarkdown(), g)
	if len(c.Checks) > 0 {
		fmt.Fprintf(ew, "\n## Thresholds\n\n")
		for _, ch := range c.Checks {
			fmt.Fprintf(ew, "- %s %s\n", checkMark(ch), describeCheck(ch))
		}
	}
	return ew.err
}

type subjectGrid struct {
	title string
	grid  *grid
}

// splitBySubject cuts the comparison grid into one grid per subject, without the
// subject column (a subject's name is on its first row only).
func splitBySubject(g *grid) []subjectGrid {
	var out []subjectGrid
	for _, row := range g.rows {
		if row[0] != "" || len(out) == 0 {
			out = append(out, subjectGrid{title: row[0], grid: &grid{headers: g.headers[1:], firstNumeric: g.firstNumeric - 1, lastNumeric: g.lastNumeric - 1}})
		}
		last := out[len(out)-1].grid
		last.rows = append(last.rows, row[1:])
	}
	return out
}
