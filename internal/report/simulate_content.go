package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/ratelab/ratelab/algorithms"
)

// The content of the simulate report, shared by its table and markdown renderers.

// simPolicy is the policy as serve's flags and the key names write it: 100/1m, 10/1s b20.
func simPolicy(a SimulateAlgorithm) string {
	s := fmt.Sprintf("%d/%s", a.Limit, algorithms.FormatWindow(time.Duration(a.WindowMs*float64(time.Millisecond))))
	if a.Burst != a.Limit && a.Burst != 0 {
		s += fmt.Sprintf(" b%d", a.Burst)
	}
	return s
}

// simulateRunRows are what was simulated, a label and its text each.
func simulateRunRows(s *Simulate) [][2]string {
	var rows [][2]string
	if t := s.Trace; t != nil {
		src := fmt.Sprintf("%s (%s", Shown(t.File), t.Format)
		if t.Gzip {
			src += ", gzip"
		}
		src += fmt.Sprintf(", %s, %s lines, clients by %s)", bytesText(t.Bytes), count(t.Lines), t.Client)
		rows = append(rows, [2]string{"trace", src})
		lines := fmt.Sprintf("%s did not parse", count(t.BadLines))
		if len(t.BadSamples) > 0 {
			var parts []string
			for _, b := range t.BadSamples {
				parts = append(parts, fmt.Sprintf("line %d: %s", b.Line, Shown(b.Reason)))
			}
			lines += " (" + strings.Join(parts, "; ") + ")"
		}
		if t.OutOfRange > 0 {
			lines += fmt.Sprintf("; %s outside --from/--to", count(t.OutOfRange))
		}
		if t.Reordered > 0 {
			lines += fmt.Sprintf("; %s out of time order, decided at the time before them", count(t.Reordered))
		}
		rows = append(rows, [2]string{"bad lines", lines})
	} else {
		rows = append(rows, [2]string{"traffic", fmt.Sprintf("pattern %s from %d identities at %s rps for %s, seed %d",
			s.Pattern, s.IPs, trimFloat(s.TargetRPS), millis(s.DurationMs), s.Seed)})
	}
	span := "no requests"
	if s.Requests > 0 {
		span = fmt.Sprintf("%s to %s (%s)", s.First.UTC().Format(time.RFC3339), s.Last.UTC().Format(time.RFC3339),
			s.Last.Sub(s.First).Round(time.Millisecond))
	}
	rows = append(rows, [2]string{"requests", fmt.Sprintf("%s from %s, %s", count(s.Requests), plural(s.Clients, "client"), span)})
	nodes := "one limit shared by every node (store redis)"
	if s.Store == "local" {
		nodes = fmt.Sprintf("%d nodes, a limiter each (store local), behind a %s balancer", s.Nodes, s.Balancer)
	}
	if s.Limits != nil {
		rows = append(rows, limitsRunRow(s.Limits))
	} else {
		rows = append(rows, [2]string{"limiters", nodes})
	}
	rows = append(rows, [2]string{"ratelab", cmpOr(s.Version, "(unknown version)") + ", virtual time: the same input gives the same report"})
	if s.Interrupted {
		rows = append(rows, [2]string{"interrupted", "yes: the figures cover what was read"})
	}
	return rows
}

func simulateSections(s *Simulate) []hammerSection {
	if s.Limits != nil {
		return limitsSections(s.Limits)
	}
	through := &grid{headers: []string{"algorithm", "policy", "sent", "allowed", "denied", "peak in W", "peak in W/10",
		"worst case", "burst ratio", "peak client"}, firstNumeric: 2, lastNumeric: 8}
	paid := &grid{headers: []string{"algorithm", "policy", "well-behaved refused", "their denials", "abuse admitted", "over L in their busiest W"},
		firstNumeric: 2}
	for _, a := range s.Algorithms {
		through.rows = append(through.rows, []string{a.Name, simPolicy(a), count(a.Sent), count(a.Allowed), count(a.Denied),
			count(a.PeakInWindow), count(a.PeakInTenthWindow), count(a.ExpectedMaxInWindow),
			strconv.FormatFloat(a.BurstRatio, 'f', 2, 64), Shown(a.PeakClient)})
		paid.rows = append(paid.rows, []string{a.Name, simPolicy(a),
			plural(int(a.WellBehavedRefused.Clients), "client"), count(a.WellBehavedRefused.Requests),
			plural(int(a.AbuseAdmitted.Clients), "client"), count(a.AbuseAdmitted.Requests)})
	}
	sections := []hammerSection{
		{title: "What got through (virtual time; peaks are for one client)", grid: through},
		{title: "Who paid: clients within the limit over the whole span but refused, against clients over it that got more than L in a window", grid: paid},
	}
	if s.Sweep {
		sections = append(sections, hammerSection{title: "Sweep: refused well-behaved (r) against admitted abuse (a), per policy", chart: sweepChart(s)})
	}
	top := &grid{headers: []string{"algorithm", "policy", "client", "requests", "allowed", "denied", "peak in W", "first denial"},
		firstNumeric: 3, lastNumeric: 6}
	for _, a := range s.Algorithms {
		for _, c := range a.Clients {
			first := "-"
			if c.FirstDenial != nil {
				first = c.FirstDenial.UTC().Format("2006-01-02T15:04:05.000Z")
			}
			top.rows = append(top.rows, []string{a.Name, simPolicy(a), Shown(c.Client), count(c.Requests), count(c.Allowed),
				count(c.Denied), count(c.PeakInWindow), first})
		}
	}
	if len(top.rows) > 0 {
		sections = append(sections, hammerSection{title: "Top clients by denials", grid: top})
	}
	if tl := simulateTimeline(s); tl != "" {
		sections = append(sections, hammerSection{title: simulateTimelineHeading(s), chart: tl})
	}
	return sections
}

// simulateTimeline draws hammer's timeline chart for a run of one policy.
func simulateTimeline(s *Simulate) string {
	if s.Sweep {
		return ""
	}
	return timelineChart(asHammer(s))
}

func simulateTimelineHeading(s *Simulate) string {
	tl, _ := timelineOf(asHammer(s))
	return fmt.Sprintf("Timeline: admitted per %s for client %s, one window either side of the window edge at +%s",
		millis(tl.BucketMs), Shown(tl.Identity), millis(tl.EdgeOffsetMs))
}

// asHammer is what the timeline chart reads of a hammer report, from s.
func asHammer(s *Simulate) *Hammer {
	h := &Hammer{Pattern: s.Pattern}
	for _, a := range s.Algorithms {
		h.Algorithms = append(h.Algorithms, Algorithm{Name: a.Name, Timeline: a.Timeline, PeakInWindow: a.PeakInWindow, BurstRatio: a.BurstRatio})
	}
	return h
}

// sweepChart draws, per policy and algorithm, two bars on one scale: the
// well-behaved clients refused and the abusive clients admitted.
func sweepChart(s *Simulate) string {
	var top int64 = 1
	width := 0
	for _, a := range s.Algorithms {
		top = max(top, a.WellBehavedRefused.Clients, a.AbuseAdmitted.Clients)
		width = max(width, len(simPolicy(a))+1+len(a.Name))
	}
	const cols = 30
	barOf := func(n int64) string {
		w := int((n*cols + top - 1) / top)
		return strings.Repeat("█", w) + strings.Repeat(" ", cols-w)
	}
	var b strings.Builder
	for _, a := range s.Algorithms {
		fmt.Fprintf(&b, "%-*s  r %s %4d   a %s %4d\n", width, simPolicy(a)+" "+a.Name,
			barOf(a.WellBehavedRefused.Clients), a.WellBehavedRefused.Clients, barOf(a.AbuseAdmitted.Clients), a.AbuseAdmitted.Clients)
	}
	fmt.Fprintf(&b, "%*s  full bar = %d clients\n", width, "", top)
	return b.String()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 2, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// SimulateTable writes s for a terminal.
func SimulateTable(w io.Writer, s *Simulate) error {
	ew := &errWriter{w: w}
	fmt.Fprintln(ew, "ratelab simulate")
	for _, r := range simulateRunRows(s) {
		fmt.Fprintf(ew, "  %-12s %s\n", r[0], r[1])
	}
	for _, sec := range simulateSections(s) {
		fmt.Fprintf(ew, "\n%s\n", sec.title)
		switch {
		case sec.grid != nil:
			renderGrid(ew, renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleLight)}), sec.grid)
		case sec.chart != "":
			fmt.Fprint(ew, sec.chart)
		}
	}
	return ew.err
}

// SimulateMarkdown writes s as markdown: the settings as a list, the tables as
// markdown tables and the charts in code blocks.
func SimulateMarkdown(w io.Writer, s *Simulate) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "# ratelab simulate\n\n")
	for _, r := range simulateRunRows(s) {
		fmt.Fprintf(ew, "- **%s**: %s\n", r[0], r[1])
	}
	for _, sec := range simulateSections(s) {
		fmt.Fprintf(ew, "\n## %s\n\n", sec.title)
		switch {
		case sec.grid != nil:
			renderGrid(ew, renderer.NewMarkdown(), sec.grid)
		case sec.chart != "":
			fmt.Fprintf(ew, "```\n%s```\n", sec.chart)
		}
	}
	return ew.err
}
