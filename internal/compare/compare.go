// Package compare sets two ratelab JSON reports side by side: every figure of both,
// its change, and thresholds on the changes (ratelab compare). It reads the reports
// through the field names docs/report-schema.md fixes, so any report that keeps them
// (hammer's, simulate's) compares, and fields it does not know are ignored.
package compare

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Direction is which way a figure gets worse.
type Direction int

// The directions of a figure.
const (
	// Neither: a change either way is a change (counts of what was sent, allowed).
	Neither Direction = iota
	// LowerIsBetter: latency, errors, burst ratios.
	LowerIsBetter
	// HigherIsBetter: achieved rate, hit ratio.
	HigherIsBetter
)

// Unit says how a figure is written.
type Unit string

// The units of figures.
const (
	UnitCount Unit = "count"
	UnitRatio Unit = "ratio"
	UnitMicro Unit = "us"
	UnitRate  Unit = "rps"
)

// Figure is one number a report holds: its name in --max-regression, where it is in
// the JSON (dot-separated), its unit and which way it gets worse.
type Figure struct {
	Name string
	Path string
	Unit Unit
	Dir  Direction
}

// AlgorithmFigures are the figures of each entry of algorithms[].
var AlgorithmFigures = []Figure{
	{"sent", "sent", UnitCount, Neither},
	{"allowed", "allowed", UnitCount, Neither},
	{"denied", "denied", UnitCount, Neither},
	{"errors", "errors", UnitCount, LowerIsBetter},
	{"error_ratio", "error_ratio", UnitRatio, LowerIsBetter},
	{"fail_open", "fail_open", UnitCount, LowerIsBetter},
	{"fail_closed", "fail_closed", UnitCount, LowerIsBetter},
	{"allowed_per_second", "allowed_per_second", UnitRate, Neither},
	{"achieved_rps", "achieved_rps", UnitRate, HigherIsBetter},
	{"late_send_ratio", "late_send_ratio", UnitRatio, LowerIsBetter},
	{"peak_in_window", "peak_in_window", UnitCount, LowerIsBetter},
	{"peak_in_tenth_window", "peak_in_tenth_window", UnitCount, LowerIsBetter},
	{"expected_max_in_window", "expected_max_in_window", UnitCount, Neither},
	{"burst_ratio", "burst_ratio", UnitRatio, LowerIsBetter},
	{"check_p50", "check_latency_us.p50", UnitMicro, LowerIsBetter},
	{"check_p90", "check_latency_us.p90", UnitMicro, LowerIsBetter},
	{"check_p99", "check_latency_us.p99", UnitMicro, LowerIsBetter},
	{"check_p999", "check_latency_us.p999", UnitMicro, LowerIsBetter},
	{"check_max", "check_latency_us.max", UnitMicro, LowerIsBetter},
	{"e2e_p50", "e2e_latency_us.p50", UnitMicro, LowerIsBetter},
	{"e2e_p90", "e2e_latency_us.p90", UnitMicro, LowerIsBetter},
	{"e2e_p99", "e2e_latency_us.p99", UnitMicro, LowerIsBetter},
	{"e2e_p999", "e2e_latency_us.p999", UnitMicro, LowerIsBetter},
	{"e2e_max", "e2e_latency_us.max", UnitMicro, LowerIsBetter},
}

// RunFigures are the figures of the whole run and of its cache (subject "run").
var RunFigures = []Figure{
	{"sent", "sent", UnitCount, Neither},
	{"achieved_rps", "achieved_rps", UnitRate, HigherIsBetter},
	{"late_send_ratio", "late_send_ratio", UnitRatio, LowerIsBetter},
	{"send_lag_p99", "send_lag_us.p99", UnitMicro, LowerIsBetter},
	{"errors", "errors", UnitCount, LowerIsBetter},
	{"error_ratio", "error_ratio", UnitRatio, LowerIsBetter},
	{"hit_ratio", "cache.hit_ratio", UnitRatio, HigherIsBetter},
	{"backend_calls", "cache.backend_calls", UnitCount, LowerIsBetter},
	{"misses", "cache.misses", UnitCount, LowerIsBetter},
	{"local_hits", "cache.local_hits", UnitCount, Neither},
	{"redis_hits", "cache.redis_hits", UnitCount, Neither},
	{"fill_lock_waits", "cache.fill_lock_waits", UnitCount, LowerIsBetter},
}

// SubjectRun is the subject of the run's own figures.
const SubjectRun = "run"

// Report is what compare reads of one JSON report.
type Report struct {
	// File is where it was read from.
	File      string `json:"file"`
	Version   string `json:"version,omitempty"`
	StartedAt string `json:"started_at,omitempty"`
	Pattern   string `json:"pattern,omitempty"`
	Valid     *bool  `json:"valid,omitempty"`
	// settings are the run's conditions other than the policy and pattern: shown
	// when they differ, never a reason to refuse.
	settings map[string]string
	run      map[string]any
	algs     []algorithm
}

type algorithm struct {
	// name is the algorithm's, with its fail mode when modes were compared
	// (sliding-log/open), as the reports label their rows.
	name   string
	policy string
	fields map[string]any
}

// Read decodes a JSON report from r; file names it in messages. It needs a JSON
// object with an algorithms array whose entries have a name; everything else is
// optional.
func Read(r io.Reader, file string) (*Report, error) {
	var top map[string]any
	if err := json.NewDecoder(r).Decode(&top); err != nil {
		return nil, fmt.Errorf("%s: not a ratelab JSON report (%v); write one with --output json --out FILE", file, err)
	}
	list, ok := top["algorithms"].([]any)
	if !ok {
		return nil, fmt.Errorf("%s: no algorithms[] array: not a ratelab JSON report (hammer or simulate --output json)", file)
	}
	rep := &Report{File: file, run: top, settings: map[string]string{}}
	rep.Version, _ = top["version"].(string)
	rep.StartedAt, _ = top["started_at"].(string)
	rep.Pattern, _ = top["pattern"].(string)
	if v, ok := top["valid"].(bool); ok {
		rep.Valid = &v
	}
	for _, k := range []string{"backend", "nodes", "store", "ips", "products", "target_rps", "duration_ms", "seed", "workers"} {
		if v, ok := top[k]; ok {
			rep.settings[k] = fmt.Sprint(v)
		}
	}
	for i, item := range list {
		fields, ok := item.(map[string]any)
		name, _ := fields["name"].(string)
		if !ok || name == "" {
			return nil, fmt.Errorf("%s: algorithms[%d] has no name: not a ratelab JSON report", file, i)
		}
		if mode, _ := fields["fail_mode"].(string); mode != "" {
			name += "/" + mode
		}
		rep.algs = append(rep.algs, algorithm{name: name, policy: policyOf(fields), fields: fields})
	}
	return rep, nil
}

// faultsOf are the --fault values of a report's command line, as given ("" without).
func faultsOf(top map[string]any) string {
	args, _ := top["command_line"].([]any)
	var faults []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(fmt.Sprint(a), "--fault="); ok {
			faults = append(faults, v)
		}
	}
	return strings.Join(faults, " ")
}

// policyOf writes an algorithm's limit, window and burst as "10/500ms b20".
func policyOf(f map[string]any) string {
	limit, okL := number(f, "limit")
	window, okW := number(f, "window_ms")
	if !okL && !okW {
		if p, ok := f["policy"].(string); ok {
			return p
		}
		return ""
	}
	s := trim(limit) + "/" + trim(window) + "ms"
	if b, ok := number(f, "burst"); ok && b != 0 && b != limit {
		s += " b" + trim(b)
	}
	return s
}

// number is the number at a dot-separated path in m.
func number(m map[string]any, path string) (float64, bool) {
	var v any = m
	for part := range strings.SplitSeq(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		v = obj[part]
	}
	f, ok := v.(float64)
	return f, ok
}

func trim(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Row is one figure of one subject in both reports.
type Row struct {
	// Subject is an algorithm's name (with its fail mode, gcra/open, when modes were
	// compared), or "run".
	Subject string `json:"subject"`
	Figure  string `json:"figure"`
	Unit    Unit   `json:"unit"`
	// Base and New are absent where a report lacks the figure.
	Base *float64 `json:"base,omitempty"`
	New  *float64 `json:"new,omitempty"`
	// Change is New - Base, and ChangeRatio Change / Base (absent when Base is 0).
	Change      *float64 `json:"change,omitempty"`
	ChangeRatio *float64 `json:"change_ratio,omitempty"`
	// Verdict is "worse", "better", "changed" (a figure with no better way) or "" for none.
	Verdict string `json:"verdict,omitempty"`
}

// Threshold is one --max-regression limit: how much a figure may get worse.
type Threshold struct {
	// Subject narrows it to one algorithm (or "run"); empty, it checks every subject
	// that has the figure.
	Subject string `json:"subject,omitempty"`
	Figure  string `json:"figure"`
	// Limit is the change allowed in the worse direction: a fraction of the base when
	// Relative (20% is 0.2), else in the figure's unit.
	Limit    float64 `json:"limit"`
	Relative bool    `json:"relative"`
}

func (t Threshold) String() string {
	s := t.Figure + "="
	if t.Subject != "" {
		s = t.Subject + ":" + s
	}
	switch {
	case t.Relative:
		return s + trim(t.Limit*100) + "%"
	case unitOf(t.Figure) == UnitMicro:
		return s + trim(t.Limit) + "us"
	}
	return s + trim(t.Limit)
}

// Check is one threshold applied to one subject.
type Check struct {
	Threshold string `json:"threshold"`
	Subject   string `json:"subject"`
	Figure    string `json:"figure"`
	// Worse is how much the figure got worse: a fraction of the base when the
	// threshold is relative, else in its unit; 0 when it did not get worse.
	Worse float64 `json:"worse"`
	OK    bool    `json:"ok"`
	// NoData says what was missing: such a check is missed, never passed silently.
	NoData string `json:"no_data,omitempty"`
}

// Comparison is two reports side by side.
type Comparison struct {
	SchemaVersion int     `json:"schema_version"`
	Base          *Report `json:"base"`
	New           *Report `json:"new"`
	// Differences are what makes the runs not comparable (pattern, algorithms,
	// policies); with --force they are compared anyway, and this says what differed.
	Differences []string `json:"differences,omitempty"`
	Forced      bool     `json:"forced,omitempty"`
	// Notes are other settings that differ (rate, nodes, backend, seed...).
	Notes  []string `json:"notes,omitempty"`
	Rows   []Row    `json:"figures"`
	Checks []Check  `json:"thresholds,omitempty"`
}

// SchemaVersion is the version of compare's JSON output.
const SchemaVersion = 1

// Differences says what makes base and new not comparable: another pattern, another
// set of algorithms, another policy for an algorithm both ran.
func Differences(base, new *Report) []string {
	var out []string
	if base.Pattern != new.Pattern {
		out = append(out, fmt.Sprintf("pattern: %s in %s, %s in %s", orNone(base.Pattern), base.File, orNone(new.Pattern), new.File))
	}
	if bf, nf := faultsOf(base.run), faultsOf(new.run); bf != nf {
		out = append(out, fmt.Sprintf("--fault: %s in %s, %s in %s", orNone(bf), base.File, orNone(nf), new.File))
	}
	bn, nn := names(base), names(new)
	if only := minus(bn, nn); len(only) > 0 {
		out = append(out, fmt.Sprintf("algorithms only in %s: %s", base.File, strings.Join(only, ", ")))
	}
	if only := minus(nn, bn); len(only) > 0 {
		out = append(out, fmt.Sprintf("algorithms only in %s: %s", new.File, strings.Join(only, ", ")))
	}
	for _, a := range base.algs {
		b, ok := new.find(a.name)
		if ok && a.policy != b.policy {
			out = append(out, fmt.Sprintf("%s policy: %s in %s, %s in %s", a.name, orNone(a.policy), base.File, orNone(b.policy), new.File))
		}

	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func names(r *Report) []string {
	out := make([]string, len(r.algs))
	for i, a := range r.algs {
		out[i] = a.name
	}
	return out
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func (r *Report) find(name string) (algorithm, bool) {
	for _, a := range r.algs {
		if a.name == name {
			return a, true
		}
	}
	return algorithm{}, false
}

// Compare sets base and new side by side: the run's figures, then each algorithm
// both ran, in base's order, and checks the thresholds. Differences are the caller's
// to refuse or force.
func Compare(base, new *Report, thresholds []Threshold) *Comparison {
	c := &Comparison{SchemaVersion: SchemaVersion, Base: base, New: new, Differences: Differences(base, new)}
	keys := make([]string, 0, len(base.settings))
	for k := range base.settings {
		keys = append(keys, k)
	}
	for k := range new.settings {
		if _, ok := base.settings[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if b, n := base.settings[k], new.settings[k]; b != n {
			c.Notes = append(c.Notes, fmt.Sprintf("%s: %s → %s", k, orNone(b), orNone(n)))
		}
	}
	c.rows(SubjectRun, base.run, new.run, RunFigures)
	for _, a := range base.algs {
		if b, ok := new.find(a.name); ok {
			c.rows(a.name, latencyKnown(a.fields), latencyKnown(b.fields), AlgorithmFigures)
		}
	}
	for _, t := range thresholds {
		c.Checks = append(c.Checks, c.check(t)...)
	}
	return c
}

// latencyKnown is an algorithm's fields without its check latency when that was
// not measured (check_latency_unknown, or no check timed): zeros that mean unknown.
func latencyKnown(f map[string]any) map[string]any {
	unknown, _ := f["check_latency_unknown"].(bool)
	if n, ok := number(f, "check_latency_us.count"); ok && n == 0 {
		unknown = true
	}
	if !unknown {
		return f
	}
	out := make(map[string]any, len(f))
	for k, v := range f {
		if k != "check_latency_us" {
			out[k] = v
		}
	}
	return out
}

func (c *Comparison) rows(subject string, base, new map[string]any, figures []Figure) {
	for _, f := range figures {
		b, okB := number(base, f.Path)
		n, okN := number(new, f.Path)
		if !okB && !okN {
			continue
		}
		row := Row{Subject: subject, Figure: f.Name, Unit: f.Unit}
		if okB {
			row.Base = &b
		}
		if okN {
			row.New = &n
		}
		if okB && okN {
			d := n - b
			row.Change = &d
			if b != 0 {
				r := d / b
				row.ChangeRatio = &r
			}
			row.Verdict = verdict(f.Dir, d)
		}
		c.Rows = append(c.Rows, row)
	}
}

func verdict(dir Direction, change float64) string {
	switch {
	case change == 0:
		return ""
	case dir == Neither:
		return "changed"
	case (change > 0) == (dir == LowerIsBetter):
		return "worse"
	}
	return "better"
}

// direction is the way figure name gets worse.
func direction(name string) Direction {
	for _, f := range slices.Concat(RunFigures, AlgorithmFigures) {
		if f.Name == name {
			return f.Dir
		}
	}
	return Neither
}

// check applies t to every subject it names that has its figure.
func (c *Comparison) check(t Threshold) []Check {
	var out []Check
	for _, r := range c.Rows {
		if r.Figure != t.Figure || (t.Subject != "" && r.Subject != t.Subject) {
			continue
		}
		ch := Check{Threshold: t.String(), Subject: r.Subject, Figure: r.Figure}
		switch {
		case r.Base == nil:
			ch.NoData = c.Base.File + " lacks it"
		case r.New == nil:
			ch.NoData = c.New.File + " lacks it"
		default:
			worse := *r.Change
			switch direction(t.Figure) {
			case HigherIsBetter:
				worse = -worse
			case Neither:
				worse = math.Abs(worse)
			}
			worse = max(worse, 0)
			if t.Relative {
				switch {
				case worse == 0:
				case *r.Base == 0:
					worse = math.Inf(1)
				default:
					worse /= math.Abs(*r.Base)
				}
			}
			ch.Worse = worse
			ch.OK = worse <= t.Limit
		}
		out = append(out, ch)
	}
	if len(out) == 0 {
		subject := "either report"
		if t.Subject != "" {
			subject = t.Subject + " in either report"
		}
		out = append(out, Check{Threshold: t.String(), Subject: t.Subject, Figure: t.Figure, NoData: "no " + t.Figure + " for " + subject})
	}
	return out
}

// Missed are the checks that failed.
func (c *Comparison) Missed() []Check {
	var out []Check
	for _, ch := range c.Checks {
		if !ch.OK {
			out = append(out, ch)
		}
	}
	return out
}

// FigureNames lists every figure a threshold may name, sorted.
func FigureNames() []string {
	var out []string
	for _, f := range slices.Concat(RunFigures, AlgorithmFigures) {
		if !slices.Contains(out, f.Name) {
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out
}

// ParseThresholds reads --max-regression: comma-separated [SUBJECT:]FIGURE=LIMIT,
// LIMIT a percentage of the base ("20%") or an amount in the figure's unit ("0.1",
// microseconds for latencies; "2ms" and "500us" are accepted for those).
func ParseThresholds(specs []string) ([]Threshold, error) {
	var out []Threshold
	for _, spec := range specs {
		for part := range strings.SplitSeq(spec, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			t, err := parseThreshold(part)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	return out, nil
}

func parseThreshold(s string) (Threshold, error) {
	name, limit, ok := strings.Cut(s, "=")
	if !ok {
		return Threshold{}, fmt.Errorf("%q: write FIGURE=LIMIT, e.g. check_p99=20%% or burst_ratio=0.1", s)
	}
	var t Threshold
	if subject, figure, ok := strings.Cut(name, ":"); ok {
		t.Subject, name = subject, figure
	}
	t.Figure = strings.TrimSpace(name)
	if !slices.Contains(FigureNames(), t.Figure) {
		return Threshold{}, fmt.Errorf("%q: no figure %q; choose one of %s", s, t.Figure, strings.Join(FigureNames(), ", "))
	}
	limit = strings.TrimSpace(limit)
	scale := 1.0
	switch {
	case strings.HasSuffix(limit, "%"):
		t.Relative, scale, limit = true, 0.01, strings.TrimSuffix(limit, "%")
	case strings.HasSuffix(limit, "ms") && unitOf(t.Figure) == UnitMicro:
		scale, limit = 1000, strings.TrimSuffix(limit, "ms")
	case strings.HasSuffix(limit, "us") && unitOf(t.Figure) == UnitMicro:
		limit = strings.TrimSuffix(limit, "us")
	case strings.HasSuffix(limit, "µs") && unitOf(t.Figure) == UnitMicro:
		limit = strings.TrimSuffix(limit, "µs")
	}
	v, err := strconv.ParseFloat(limit, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return Threshold{}, fmt.Errorf("%q: the limit must be a number at least 0, or a percentage such as 20%%", s)
	}
	t.Limit = v * scale
	return t, nil
}

func unitOf(name string) Unit {
	for _, f := range slices.Concat(RunFigures, AlgorithmFigures) {
		if f.Name == name {
			return f.Unit
		}
	}
	return UnitCount
}
