package report

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mattn/go-runewidth"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// MinTableWidth is the narrowest layout HammerTableWidth makes; a narrower terminal
// gets this one and wraps it.
const MinTableWidth = 40

// compactHeaders are the shorter column names a table takes when its full names do
// not fit the width.
var compactHeaders = map[string]string{
	"peak in W":       "peak W",
	"peak in W/10":    "peak W/10",
	"worst case":      "worst",
	"burst ratio":     "ratio",
	"check p50":       "chk p50",
	"backend calls":   "backend",
	"fill-lock waits": "lock waits",
	"error ratio":     "err ratio",
	// the limiter calls table
	"answered locally": "local",
	"Redis calls":      "calls",
	"calls/request":    "calls/req",
	"calls/denied":     "calls/deny",
	// the fault table
	"over-limit admitted":  "abuse",
	"within-limit refused": "good refused",
	"fail-mode peak":       "mode peak",
	"recovery":             "recov",
}

// compactDrop are the columns a table loses, first to last, until it fits the width:
// the figures a reader needs least to see what got through at what cost (--wide
// shows them all). A column not named here is never dropped.
var compactDrop = []string{
	"allowed/s", "peak in W/10", "p90", "p99.9", "e2e max", "policy", "denied", "sent",
	"fill-lock waits", "local", "redis", "max", "e2e p50", "backend calls",
	"round trips", "Redis calls", "p99 recovery", "fail-open", "fail-closed", "errors", "peak in W",
	"requests", "check p50", "admitted", "fail-mode peak",
}

// HammerTableWidth writes h as HammerTable does, laid out to fit width terminal
// columns: prose is wrapped, tables lose their least needed columns (named under each
// table) and shorten their headers, and the timeline draws one character per bar.
// A width of 0 or less is HammerTable's full layout.
func HammerTableWidth(w io.Writer, h *Hammer, width int) error {
	if width <= 0 {
		return HammerTable(w, h)
	}
	width = max(width, MinTableWidth)
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, "ratelab hammer")
	for _, a := range hammerAlarms(h) {
		writeWrapped(ew, "  !! ", "     ", a, width)
	}
	indent := strings.Repeat(" ", 15)
	for _, r := range hammerRunRows(h) {
		writeWrapped(ew, fmt.Sprintf("  %-12s ", r[0]), indent, r[1], width)
	}
	for _, s := range hammerSections(h) {
		fmt.Fprintln(ew)
		writeWrapped(ew, "", "", s.title, width)
		switch {
		case s.grid != nil:
			fitted, hidden := fitGrid(s.grid, width)
			renderGrid(ew, lightBox(), fitted)
			if len(hidden) > 0 {
				writeWrapped(ew, "  ", "  ", fmt.Sprintf("not shown at %d columns: %s (--wide shows every column)",
					width, strings.Join(hidden, ", ")), width)
			}
		case s.chart != "":
			chart := s.chart
			if textWidth(chart) > width {
				chart = compactTimelineChart(h)
			}
			fmt.Fprint(ew, chart)
		}
		for _, th := range s.thresholds {
			writeWrapped(ew, "  "+thresholdMark(th)+"  ", strings.Repeat(" ", 10), describeThreshold(th), width)
		}
	}
	return ew.err
}

func lightBox() tw.Renderer {
	return renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)})
}

// fitGrid returns g laid out to fit width when drawn as a box table: first with the
// compact header names, then without the compactDrop columns one by one, and last
// with the text column after the numbers cut short. hidden names the dropped columns.
func fitGrid(g *grid, width int) (fitted *grid, hidden []string) {
	if gridWidth(g) <= width {
		return g, nil
	}
	names := g.headers
	fitted = &grid{headers: make([]string, len(names)), rows: g.rows, firstNumeric: g.firstNumeric, lastNumeric: g.lastNumeric}
	for i, hd := range names {
		fitted.headers[i] = cmpOr(compactHeaders[hd], hd)
	}
	for _, name := range compactDrop {
		if gridWidth(fitted) <= width {
			break
		}
		i := slices.Index(names, name)
		if i < 0 {
			continue
		}
		fitted = dropColumn(fitted, i)
		names = slices.Delete(slices.Clone(names), i, i+1)
		hidden = append(hidden, name)
	}
	if over := gridWidth(fitted) - width; over > 0 && fitted.lastNumeric > 0 && fitted.lastNumeric+1 < len(fitted.headers) {
		fitted = cutColumn(fitted, fitted.lastNumeric+1, over)
	}
	return fitted, hidden
}

// dropColumn is g without column i.
func dropColumn(g *grid, i int) *grid {
	out := &grid{headers: slices.Delete(slices.Clone(g.headers), i, i+1), firstNumeric: g.firstNumeric, lastNumeric: g.lastNumeric}
	for _, row := range g.rows {
		out.rows = append(out.rows, slices.Delete(slices.Clone(row), i, i+1))
	}
	if i < g.firstNumeric {
		out.firstNumeric--
	}
	if g.lastNumeric > 0 && i <= g.lastNumeric {
		out.lastNumeric--
	}
	return out
}

// cutColumn is g with column i's cells shortened by over display columns, ending "…".
func cutColumn(g *grid, i, over int) *grid {
	widest := runewidth.StringWidth(g.headers[i])
	for _, row := range g.rows {
		widest = max(widest, runewidth.StringWidth(row[i]))
	}
	keep := max(widest-over, runewidth.StringWidth(g.headers[i]), 8)
	out := *g
	out.rows = nil
	for _, row := range g.rows {
		row = slices.Clone(row)
		row[i] = runewidth.Truncate(row[i], keep, "…")
		out.rows = append(out.rows, row)
	}
	return &out
}

// gridWidth is the display width of g drawn as a box table.
func gridWidth(g *grid) int {
	var b bytes.Buffer
	renderGrid(&errWriter{w: &b}, lightBox(), g)
	return textWidth(b.String())
}

// textWidth is the display width of s's widest line.
func textWidth(s string) int {
	widest := 0
	for line := range strings.Lines(s) {
		widest = max(widest, runewidth.StringWidth(strings.TrimRight(line, "\n")))
	}
	return widest
}

// writeWrapped writes text after first, wrapped at spaces to width, each further
// line after rest. A word wider than the line (a URL) gets a line of its own.
func writeWrapped(ew *errWriter, first, rest, text string, width int) {
	line, lead := first, first
	for word := range strings.FieldsSeq(text) {
		if line != lead && runewidth.StringWidth(line)+1+runewidth.StringWidth(word) > width {
			ew.printf("%s\n", line)
			line, lead = rest, rest
		}
		if line != lead {
			line += " "
		}
		line += word
	}
	ew.printf("%s\n", line)
}

// compactTimelineChart is timelineChart with one character per bar and the counts
// either side of the edge in short: it fits 80 columns with the longest algorithm name.
func compactTimelineChart(h *Hammer) string {
	first, width := timelineOf(h)
	if first == nil {
		return ""
	}
	top := timelineTop(h)
	half := len(first.Counts) / 2
	windowMs := first.BucketMs * float64(half)
	var b strings.Builder
	pad := strings.Repeat(" ", width+2)
	left, right := "-"+millis(windowMs), "+"+millis(windowMs)
	axis := left + strings.Repeat(" ", max(1, half-len(left))) + "│" + strings.Repeat(" ", max(1, half-len(right))) + right
	fmt.Fprintf(&b, "%s%s  before│after  peak in W\n", pad, axis)
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
			b.WriteString(bar(c, top)[:len(bar(c, top))/2])
			if i < half {
				before += c
			} else {
				after += c
			}
		}
		fmt.Fprintf(&b, "  %6d│%-5d  %d = %.2f L\n", before, after, a.PeakInWindow, a.BurstRatio)
	}
	fmt.Fprintf(&b, "%sone bar per %s; full height = %d admitted\n", pad, millis(first.BucketMs), top)
	return b.String()
}

// timelineTop is the highest count of any timeline bucket, at least 1: the full bar.
func timelineTop(h *Hammer) int64 {
	var top int64 = 1
	for _, a := range h.Algorithms {
		if a.Timeline != nil {
			for _, c := range a.Timeline.Counts {
				top = max(top, c)
			}
		}
	}
	return top
}
