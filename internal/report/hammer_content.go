package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"

	"github.com/ratelab/ratelab/internal/wire"
)

// The content of the hammer report, shared by its table and markdown renderers:
// each lays the same sections out in its own format.

// grid is a table's content: its headers and rows; columns from firstNumeric on are
// numbers, right-aligned.
type grid struct {
	headers      []string
	rows         [][]string
	firstNumeric int
	// lastNumeric, when above 0, is the last right-aligned column.
	lastNumeric int
}

// hammerSection is one titled part of the report after the run's settings: a grid,
// the timeline chart, or the thresholds.
type hammerSection struct {
	title      string
	grid       *grid
	chart      string
	thresholds []Threshold
}

// hammerSections are the report's parts, in order.
func hammerSections(h *Hammer) []hammerSection {
	clock := "by Redis server time"
	if len(h.Targets) > 0 {
		clock = "by the time each answer arrived"
	}
	through := &grid{headers: []string{"algorithm", "policy", "sent", "allowed", "denied", "errors", "allowed/s",
		"peak in W", "peak in W/10", "worst case", "burst ratio"}, firstNumeric: 2}
	for _, a := range h.Algorithms {
		errs := strconv.FormatInt(a.Errors, 10)
		if a.FailOpen > 0 {
			errs += fmt.Sprintf(" (+%d fail-open)", a.FailOpen)
		}
		if a.Local > 0 {
			errs += fmt.Sprintf(" (+%d local)", a.Local)
		}
		through.rows = append(through.rows, []string{a.Label(), policy(a), count(a.Sent), count(a.Allowed), count(a.Denied), errs,
			strconv.FormatFloat(a.AllowedPerSecond, 'f', 1, 64), count(a.PeakInWindow), count(a.PeakInTenthWindow),
			count(a.ExpectedMaxInWindow), strconv.FormatFloat(a.BurstRatio, 'f', 2, 64)})
		policyFileRow(h, through.rows[len(through.rows)-1])
	}
	sections := []hammerSection{{
		title: "What got through (same traffic for every algorithm; peaks are for one identity, " + clock + ")",
		grid:  through,
	}}
	sections = append(sections, tierSections(h)...)

	latency := &grid{headers: []string{"algorithm", "check p50", "p90", "p99", "p99.9", "max", "e2e p50", "e2e p99", "e2e max"}, firstNumeric: 1}
	for _, a := range h.Algorithms {
		c, e := a.CheckLatencyUs, a.E2ELatencyUs
		row := []string{a.Label(), micros(c.P50), micros(c.P90), micros(c.P99), micros(c.P999), micros(c.Max),
			micros(e.P50), micros(e.P99), micros(e.Max)}
		if c.Count == 0 || a.CheckLatencyUnknown {
			for i := 1; i <= 5; i++ {
				row[i] = "-"
			}
		}
		latency.rows = append(latency.rows, row)
	}
	sections = append(sections, hammerSection{title: latencyHeading(h), grid: latency})

	if codes := statusCodeGrid(h); codes != nil {
		sections = append(sections, hammerSection{title: "Status codes (answers by HTTP status; no answer: transport errors)", grid: codes})
	}
	if errs := errorSetGrid(h); errs != nil {
		sections = append(sections, hammerSection{title: "Errors (requests without an answer, by kind, with the first message)", grid: errs})
	}

	if g := limiterGrid(h); g != nil {
		sections = append(sections, hammerSection{title: "Limiter calls (checks the deny cache answered, checks sent to Redis, round trips, per request)", grid: g})
	}
	if len(h.Targets) == 0 || h.Cache.Hits+h.Cache.Misses > 0 {
		title := "Cache (every run)"
		if len(h.Targets) > 0 {
			title = "Cache (from the targets' " + wire.HeaderXCache + " headers)"
		}
		c := h.Cache
		sections = append(sections, hammerSection{title: title, grid: &grid{
			headers: []string{"hits", "local", "redis", "misses", "hit ratio", "backend calls", "fill-lock waits"},
			rows: [][]string{{count(c.Hits), count(c.LocalHits), count(c.RedisHits), count(c.Misses),
				strconv.FormatFloat(c.HitRatio, 'f', 3, 64), count(c.BackendCalls), count(c.FillLockWaits)}},
		}})
	}
	sections = append(sections, faultSections(h)...)
	if tl := timelineChart(h); tl != "" {
		sections = append(sections, hammerSection{title: timelineHeading(h), chart: tl})
	}
	if len(h.Thresholds) > 0 {
		sections = append(sections, hammerSection{title: "Thresholds", thresholds: h.Thresholds})
	}
	return sections
}

// statusCodeGrid counts each algorithm's answers by status code, one column per code
// any algorithm got, and the requests without an answer; nil when nothing was counted.
func statusCodeGrid(h *Hammer) *grid {
	seen := map[string]bool{}
	counted := false
	for _, a := range h.Algorithms {
		for code := range a.StatusCodes {
			seen[code] = true
		}
		counted = counted || len(a.StatusCodes) > 0 || len(a.ErrorSet) > 0
	}
	if !counted {
		return nil
	}
	codes := make([]string, 0, len(seen))
	for code := range seen {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	g := &grid{headers: append(append([]string{"algorithm"}, codes...), "no answer", "error ratio"), firstNumeric: 1}
	for _, a := range h.Algorithms {
		row := []string{a.Label()}
		for _, code := range codes {
			row = append(row, count(a.StatusCodes[code]))
		}
		var none int64
		for _, e := range a.ErrorSet {
			none += e.Count
		}
		row = append(row, count(none), strconv.FormatFloat(a.ErrorRatio, 'f', 3, 64))
		g.rows = append(g.rows, row)
	}
	return g
}

// errorSetGrid lists each algorithm's transport errors by kind; nil when there were none.
func errorSetGrid(h *Hammer) *grid {
	g := &grid{headers: []string{"algorithm", "kind", "count", "first message"}, firstNumeric: 2}
	for _, a := range h.Algorithms {
		for _, e := range a.ErrorSet {
			g.rows = append(g.rows, []string{a.Label(), e.Kind, count(e.Count), e.Example})
		}
	}
	if len(g.rows) == 0 {
		return nil
	}
	// The message is text, not a number: only the count is right-aligned.
	g.lastNumeric = 2
	return g
}

// hammerAlarms are what a reader must see first: a run whose figures are not valid,
// an algorithm whose run failed. Each renderer shows them loudly, before the rest.
func hammerAlarms(h *Hammer) []string {
	var out []string
	if h.Failed != nil {
		out = append(out, fmt.Sprintf("FAILED: the %s run: %s; the algorithms before it are reported", h.Failed.Algorithm, h.Failed.Error))
	}
	for _, m := range h.TargetPolicyMismatch {
		out = append(out, "POLICY MISMATCH: "+m+"; set --limit, --window and --algorithms to what the target enforces")
	}
	if !h.Valid {
		reasons := h.InvalidReasons
		if len(reasons) == 0 {
			reasons = []string{"no reason recorded"}
		}
		for _, r := range reasons {
			out = append(out, "NOT VALID: "+r)
		}
	}
	return out
}

// thresholdMark is a threshold's verdict, padded to one width.
func thresholdMark(th Threshold) string {
	if th.OK {
		return "ok    "
	}
	return "MISSED"
}

// hammerRunRows are the run's settings and conditions, a label and its text each.
func hammerRunRows(h *Hammer) [][2]string {
	backend := h.Backend
	if h.Embedded {
		backend += " (in-process Redis: latency not representative of a real server)"
	}
	nodes := fmt.Sprintf("%d in process, round robin, store %s", h.Nodes, h.Store)
	switch {
	case len(h.Targets) > 0:
		nodes = plural(len(h.Targets), "target")
		if h.Path != "" {
			nodes += fmt.Sprintf(", GET %s, denied on %s", h.Path, statusList(h.DenyStatus))
		}
		nodes += ": " + describeTargets(h)
	case h.Store == "local":
		nodes += " (a limiter per node: a client gets up to one limit per node)"
	case h.Store == "redis":
		nodes += " (one limit shared through Redis)"
	}
	late := fmt.Sprintf("%s of %s (%.2f%%) more than %s behind schedule; send lag p50 %s, p99 %s, max %s",
		count(h.LateSends), count(h.Sent), 100*h.LateSendRatio, micros(h.LateAfterUs),
		micros(h.SendLagUs.P50), micros(h.SendLagUs.P99), micros(h.SendLagUs.Max))
	priority := "real-time thread"
	if !h.PacerRealtime {
		priority = "normal priority (a real-time thread needs CAP_SYS_NICE)"
	}
	pool := "never waited for a free connection"
	if h.PoolFull > 0 {
		pool = fmt.Sprintf("waited for a free connection %s times (raise --workers)", count(h.PoolFull))
	}
	pacer := fmt.Sprintf("%s; %s late more than %s, lag p50 %s, p99 %s, max %s; %s",
		priority, count(h.PacerLate), micros(h.LateAfterUs),
		micros(h.PacerLagUs.P50), micros(h.PacerLagUs.P99), micros(h.PacerLagUs.Max), pool)
	rows := [][2]string{
		{"backend", backend},
		{"nodes", nodes},
		{"traffic", fmt.Sprintf("%s from %d identities%s, %d products (Zipf), seed %d", h.Pattern, h.IPs,
			describeIdentity(h.Identity), h.Products, h.Seed)},
		{"rate", fmt.Sprintf("target %s rps, achieved %s rps, at most %d in flight (--workers)", trimFloat(h.TargetRPS),
			strconv.FormatFloat(h.AchievedRPS, 'f', 1, 64), h.Workers)},
		{"late sends", late},
		{"pacer", pacer},
		{"duration", fmt.Sprintf("%s per algorithm, %s", millis(h.DurationMs), plural(len(h.Algorithms), "algorithm"))},
		{"errors", fmt.Sprintf("%s of %s (%.2f%%) without a usable answer (transport errors, and 5xx that were not fail-closed refusals)",
			count(h.Errors), count(h.Sent), 100*h.ErrorRatio)},
		{"ratelab", fmt.Sprintf("%s, started %s, GOMAXPROCS %d, %s", cmpOr(h.Version, "(unknown version)"),
			h.StartedAt.UTC().Format(time.RFC3339), h.GOMAXPROCS, plural(h.NumCPU, "CPU"))},
	}
	if h.Interrupted {
		what := "yes: stopped early; the figures cover what was sent"
		if h.InterruptSignal != "" && h.StopLatencyUs != nil {
			what = fmt.Sprintf("yes, by %s: the last request went out %s after it; the figures cover what was sent",
				h.InterruptSignal, micros(*h.StopLatencyUs))
		}
		rows = append(rows, [2]string{"interrupted", what})
	}
	return rows
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func latencyHeading(h *Hammer) string {
	s := "Latency: check = the limiter call alone; e2e = from each request's intended send time to its answer"
	unknown := len(h.Algorithms) > 0
	for _, a := range h.Algorithms {
		unknown = unknown && a.CheckLatencyUnknown
	}
	switch {
	case len(h.Targets) > 0 && unknown:
		s += " (check latency unknown: the targets sent no " + wire.HeaderServerTiming + ", so they are not ratelab serve)"
	case len(h.Targets) > 0:
		s += " (check latency as the serve processes report it in " + wire.HeaderServerTiming + ")"
	}
	return s
}

// describeIdentity says how the identities reached the nodes, unless that was the
// default, X-Forwarded-For.
func describeIdentity(identity string) string {
	if identity == "source" {
		return " as source addresses (127.x.y.z, connections of their own)"
	}
	return ""
}

// statusList writes status codes as "429, 403".
func statusList(codes []int) string {
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ", ")
}

// describeTargets lists the targets with the policy each answered with; where a
// policy is not what the report assumes, the alarms say so.
func describeTargets(h *Hammer) string {
	parts := make([]string, len(h.Targets))
	for i, t := range h.Targets {
		parts[i] = t
		if i >= len(h.TargetPolicies) || h.TargetPolicies[i] == "" {
			parts[i] += " (no " + wire.HeaderRateLimitPolicy + " header)"
			continue
		}
		parts[i] += " (" + wire.HeaderRateLimitPolicy + " " + h.TargetPolicies[i] + ")"
	}
	return strings.Join(parts, ", ")
}

// renderGrid writes g through r with lower-case headers as given, never wrapped.
func renderGrid(ew *errWriter, r tw.Renderer, g *grid) {
	align := make([]tw.Align, len(g.headers))
	for i := range align {
		align[i] = tw.AlignLeft
		if i >= g.firstNumeric && (g.lastNumeric == 0 || i <= g.lastNumeric) {
			align[i] = tw.AlignRight
		}
	}
	t := tablewriter.NewTable(ew,
		tablewriter.WithRenderer(r),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: align}),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
	)
	t.Header(g.headers)
	for _, row := range g.rows {
		_ = t.Append(row)
	}
	if err := t.Render(); err != nil && ew.err == nil {
		ew.err = err
	}
}

func policy(a Algorithm) string {
	s := fmt.Sprintf("%d/%s", a.Limit, millis(a.WindowMs))
	if a.Burst != a.Limit && a.Burst != 0 {
		s += fmt.Sprintf(" b%d", a.Burst)
	}
	return s
}

// micros writes a latency in microseconds in a unit a reader takes in at a glance.
func micros(us int64) string {
	switch {
	case us < 1000:
		return strconv.FormatInt(us, 10) + "µs"
	case us < 100_000:
		return strconv.FormatFloat(float64(us)/1000, 'f', 2, 64) + "ms"
	case us < 1_000_000:
		return strconv.FormatFloat(float64(us)/1000, 'f', 0, 64) + "ms"
	}
	return strconv.FormatFloat(float64(us)/1e6, 'f', 2, 64) + "s"
}

func millis(ms float64) string {
	return (time.Duration(ms * float64(time.Millisecond))).String()
}

func count(n int64) string { return strconv.FormatInt(n, 10) }

func trimFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// errWriter keeps the first write error, so rendering code reads straight.
type errWriter struct {
	w   io.Writer
	err error
}

// printf writes a formatted line unless a write has failed already.
func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// plural is "1 algorithm", "6 algorithms".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
