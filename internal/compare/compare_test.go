package compare

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func load(t *testing.T, name string) *Report {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := Read(f, name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func row(t *testing.T, c *Comparison, subject, figure string) Row {
	t.Helper()
	for _, r := range c.Rows {
		if r.Subject == subject && r.Figure == figure {
			return r
		}
	}
	t.Fatalf("no row %s %s", subject, figure)
	return Row{}
}

func TestCompareEveryFigure(t *testing.T) {
	t.Parallel()
	c := Compare(load(t, "base.json"), load(t, "new.json"), nil)
	if len(c.Differences) != 0 {
		t.Errorf("differences %q between runs of one pattern and policy", c.Differences)
	}
	if !slices.Contains(c.Notes, "nodes: 1 → 3") {
		t.Errorf("notes %q lack the nodes", c.Notes)
	}
	// Every figure of either: the run's and each algorithm's but fail_closed and
	// allowed_per_second, which neither report has.
	if want := len(RunFigures) + 2*(len(AlgorithmFigures)-2); len(c.Rows) != want {
		t.Errorf("%d rows, want %d", len(c.Rows), want)
	}
	p99 := row(t, c, "fixed-window", "check_p99")
	if *p99.Base != 640 || *p99.New != 800 || *p99.Change != 160 || math.Abs(*p99.ChangeRatio-0.25) > 1e-9 || p99.Verdict != "worse" {
		t.Errorf("check_p99 %+v", p99)
	}
	if r := row(t, c, "gcra", "burst_ratio"); r.Verdict != "better" || math.Abs(*r.Change+0.8) > 1e-9 {
		t.Errorf("gcra burst_ratio %+v", r)
	}
	if r := row(t, c, SubjectRun, "hit_ratio"); r.Verdict != "better" {
		t.Errorf("hit_ratio got higher: %+v", r)
	}
	if r := row(t, c, SubjectRun, "achieved_rps"); r.Verdict != "worse" {
		t.Errorf("achieved_rps got lower: %+v", r)
	}
	if r := row(t, c, "fixed-window", "errors"); r.ChangeRatio != nil || *r.Change != 2 {
		t.Errorf("errors from 0: %+v", r)
	}
	if r := row(t, c, "fixed-window", "sent"); r.Verdict != "" {
		t.Errorf("an unchanged figure has verdict %q", r.Verdict)
	}
}

func TestThresholds(t *testing.T) {
	t.Parallel()
	base, next := load(t, "base.json"), load(t, "new.json")
	for _, c := range []struct {
		spec   string
		missed []string // subjects
		checks int
	}{
		{"check_p99=20%", []string{"fixed-window"}, 2}, // +25% and +1.7%
		{"check_p99=30%", nil, 2},
		{"check_p99=100", []string{"fixed-window"}, 2},     // +160 µs
		{"check_p99=0.2ms", nil, 2},                        // 200 µs
		{"gcra:check_p99=1%", []string{"gcra"}, 1},         // +1.7%
		{"burst_ratio=0", nil, 2},                          // gcra got better: not worse
		{"errors=10%", []string{"run", "fixed-window"}, 3}, // from 0: any growth is infinite
		{"errors=2", nil, 3},
		{"run:achieved_rps=0.5%", []string{"run"}, 1}, // 999.8 → 990 is 0.98% lower
		{"achieved_rps=1%", nil, 3},                   // the run and both algorithms
		{"hit_ratio=0", nil, 1},                       // higher is better
		{"backend_calls=0", nil, 1},
		{"allowed=0", nil, 2}, // no better way, unchanged
	} {
		th, err := ParseThresholds([]string{c.spec})
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		cmp := Compare(base, next, th)
		var missed []string
		for _, m := range cmp.Missed() {
			missed = append(missed, m.Subject)
		}
		if !slices.Equal(missed, c.missed) || len(cmp.Checks) != c.checks {
			t.Errorf("%s: missed %q of %d checks, want %q of %d: %+v", c.spec, missed, len(cmp.Checks), c.missed, c.checks, cmp.Checks)
		}
	}
}

// A report with only some of the fields (simulate's, an older version's) compares on
// what both have; a limit on a figure one lacks is missed, never passed.
func TestPartialReport(t *testing.T) {
	t.Parallel()
	partial, err := Read(strings.NewReader(`{"pattern": "mixed", "algorithms": [
		{"name": "gcra", "limit": 10, "window_ms": 500, "burst": 10, "allowed": 1290, "denied": 1710, "peak_in_window": 11, "burst_ratio": 1.1,
		 "check_latency_us": {"count": 0, "p99": 0}, "lanes": [{"x": 1}]}]}`), "sim.json")
	if err != nil {
		t.Fatal(err)
	}
	base := load(t, "base.json")
	th, _ := ParseThresholds([]string{"burst_ratio=0.5,check_p99=10%"})
	c := Compare(base, partial, th)
	if want := []string{"algorithms only in base.json: fixed-window"}; !slices.Equal(c.Differences, want) {
		t.Errorf("differences %q, want %q", c.Differences, want)
	}
	if r := row(t, c, "gcra", "burst_ratio"); *r.New != 1.1 {
		t.Errorf("burst ratio %+v", r)
	}
	// check_latency_us with count 0 is not measured, not 0 µs.
	if r := row(t, c, "gcra", "check_p99"); r.New != nil {
		t.Errorf("an unmeasured check latency compared as %v", *r.New)
	}
	missed := c.Missed()
	if len(missed) != 1 || missed[0].Figure != "check_p99" || !strings.Contains(missed[0].NoData, "sim.json lacks it") {
		t.Errorf("missed %+v", missed)
	}
}

func TestDifferences(t *testing.T) {
	t.Parallel()
	other, err := Read(strings.NewReader(`{"pattern": "boundary", "algorithms": [
		{"name": "fixed-window", "limit": 20, "window_ms": 500, "burst": 20},
		{"name": "sliding-log", "limit": 10, "window_ms": 500, "burst": 10}]}`), "b.json")
	if err != nil {
		t.Fatal(err)
	}
	got := Differences(load(t, "base.json"), other)
	want := []string{
		"pattern: mixed in base.json, boundary in b.json",
		"algorithms only in base.json: gcra",
		"algorithms only in b.json: sliding-log",
		"fixed-window policy: 10/500ms in base.json, 20/500ms in b.json",
	}
	if !slices.Equal(got, want) {
		t.Errorf("differences\n got %q\nwant %q", got, want)
	}
}

func TestReadRefusesWhatIsNotAReport(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "not json", `{"algorithms": 3}`, `[1]`, `{"algorithms": [{"limit": 1}]}`} {
		if _, err := Read(strings.NewReader(in), "x.json"); err == nil || !strings.Contains(err.Error(), "x.json") {
			t.Errorf("%q: error %v", in, err)
		}
	}
}

func TestParseThresholdsRefuses(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"check_p99", "p99=20%", "check_p99=-1", "check_p99=abc%", "burst_ratio=1ms"} {
		if _, err := ParseThresholds([]string{spec}); err == nil {
			t.Errorf("%q was accepted", spec)
		}
	}
	th, err := ParseThresholds([]string{"check_p99=20%, burst_ratio=0.1", "e2e_p99=2ms"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Threshold{{Figure: "check_p99", Limit: 0.2, Relative: true}, {Figure: "burst_ratio", Limit: 0.1}, {Figure: "e2e_p99", Limit: 2000}}
	if !slices.Equal(th, want) {
		t.Errorf("parsed %+v, want %+v", th, want)
	}
}

// Rows of --fail-modes runs are subjects of their own (as the reports label them),
// and a --fault that differs is a difference, like a policy; the measured times of
// the same fault are not.
func TestFailModesAndFaults(t *testing.T) {
	t.Parallel()
	read := func(name, doc string) *Report {
		r, err := Read(strings.NewReader(doc), name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := read("a.json", `{"pattern": "noisy", "command_line": ["hammer", "--fault=stall@1s+1s"], "algorithms": [
		{"name": "gcra", "limit": 10, "window_ms": 500, "fail_mode": "open", "allowed": 90,
		 "fault": {"kind": "stall", "start_ms": 1000, "duration_ms": 1000}},
		{"name": "gcra", "limit": 10, "window_ms": 500, "fail_mode": "closed", "allowed": 40,
		 "fault": {"kind": "stall", "start_ms": 1000, "duration_ms": 1000}}]}`)
	same := read("b.json", `{"pattern": "noisy", "command_line": ["hammer", "--fault=stall@1s+1s"], "algorithms": [
		{"name": "gcra", "limit": 10, "window_ms": 500, "fail_mode": "open", "allowed": 95,
		 "fault": {"kind": "stall", "start_ms": 1000.2, "duration_ms": 1000.7}},
		{"name": "gcra", "limit": 10, "window_ms": 500, "fail_mode": "closed", "allowed": 41,
		 "fault": {"kind": "stall", "start_ms": 1000, "duration_ms": 1000}}]}`)
	if d := Differences(base, same); len(d) != 0 {
		t.Errorf("same runs: differences %q", d)
	}
	c := Compare(base, same, nil)
	if r := row(t, c, "gcra/open", "allowed"); r.Base == nil || *r.Base != 90 || r.New == nil || *r.New != 95 {
		t.Errorf("gcra/open allowed: %+v", r)
	}
	if r := row(t, c, "gcra/closed", "allowed"); r.Base == nil || *r.Base != 40 || r.New == nil || *r.New != 41 {
		t.Errorf("gcra/closed allowed: %+v", r)
	}
	other := read("c.json", `{"pattern": "noisy", "command_line": ["hammer", "--fault=latency@1s+500ms:20ms"], "algorithms": [
		{"name": "gcra", "limit": 10, "window_ms": 500, "fail_mode": "open",
		 "fault": {"kind": "latency", "start_ms": 1000, "duration_ms": 500}}]}`)
	want := []string{
		"--fault: stall@1s+1s in a.json, latency@1s+500ms:20ms in c.json",
		"algorithms only in a.json: gcra/closed",
	}
	if got := Differences(base, other); !slices.Equal(got, want) {
		t.Errorf("differences\n got %q\nwant %q", got, want)
	}
}
