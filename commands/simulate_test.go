package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

func simulateOptions() SimulateOptions {
	return SimulateOptions{
		Traffic: Traffic{Pattern: scenario.PatternMixed, IPs: DefaultHammerIPs, RPS: DefaultHammerRPS, Duration: DefaultHammerDuration,
			Seed: 1, Products: DefaultHammerProducts},
		Limits: []int64{DefaultHammerLimit}, Windows: []time.Duration{DefaultHammerWindow}, Bursts: []int64{0},
		Algorithms: algorithms.Names(), Nodes: 1, Store: "redis", Balancer: "round-robin", Top: DefaultSimulateTop, Output: report.FormatJSON,
	}
}

func runSimulate(t *testing.T, opts SimulateOptions) (*report.Simulate, []byte) {
	t.Helper()
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	ios, _, out, _ := TestIO()
	if err := Simulate(context.Background(), opts, ios); err != nil {
		t.Fatal(err)
	}
	var s report.Simulate
	if opts.Output == report.FormatJSON {
		if err := json.Unmarshal(out.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
	}
	return &s, out.Bytes()
}

// generatedLog writes a generated combined log of lines lines to a temporary file.
func generatedLog(t *testing.T, lines int64, clients int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := trace.Generate(f, trace.GenConfig{Seed: 5, Lines: lines, Clients: clients, BadEvery: 1000}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSimulateDeterministic: the same options give the same report, byte for byte, in
// every format.
func TestSimulateDeterministic(t *testing.T) {
	t.Parallel()
	log := generatedLog(t, 20_000, 200)
	for _, format := range report.SimulateFormats() {
		for _, fromTrace := range []bool{false, true} {
			opts := simulateOptions()
			opts.Output = format
			if fromTrace {
				opts.Trace, opts.Limits, opts.Windows = log, []int64{60}, []time.Duration{time.Minute}
			}
			_, a := runSimulate(t, opts)
			_, b := runSimulate(t, opts)
			if !bytes.Equal(a, b) || len(a) == 0 {
				t.Errorf("%s (trace %v): two runs differ", format, fromTrace)
			}
		}
	}
}

// TestSimulatePatternMatchesHammerShape checks the pattern run against what hammer
// shows on a quiet machine for the same flags: the fixed window's 2L around the edge,
// the sliding log's L, and one window either side in the timeline.
func TestSimulatePatternMatchesHammerShape(t *testing.T) {
	t.Parallel()
	s, _ := runSimulate(t, simulateOptions())
	if s.Source != "pattern" || s.Requests != 3000 || s.Clients != DefaultHammerIPs {
		t.Fatalf("report %+v", s)
	}
	byName := map[string]report.SimulateAlgorithm{}
	for _, a := range s.Algorithms {
		byName[a.Name] = a
		if a.Timeline == nil || a.Timeline.Identity != "10.0.0.0" || a.Timeline.EdgeOffsetMs != 500 {
			t.Errorf("%s: timeline %+v, want the first attacker around the edge at +500ms", a.Name, a.Timeline)
		}
		if a.Sent != 3000 || a.Allowed+a.Denied != 3000 {
			t.Errorf("%s: %+v", a.Name, a)
		}
	}
	if fw := byName[algorithms.FixedWindow]; fw.PeakInWindow != 20 || fw.BurstRatio != 2 || fw.AbuseAdmitted.Clients != 5 {
		t.Errorf("fixed window %+v", fw)
	}
	if sl := byName[algorithms.SlidingLog]; sl.PeakInWindow != 10 || sl.AbuseAdmitted.Clients != 0 {
		t.Errorf("sliding log %+v", sl)
	}
}

// TestSimulateExportedTraceAgrees: a pattern exported with trace export and simulated
// as a trace gives the pattern's decisions.
func TestSimulateExportedTraceAgrees(t *testing.T) {
	t.Parallel()
	for _, format := range []string{trace.FormatCSV, trace.FormatJSON} {
		path := filepath.Join(t.TempDir(), "mixed."+format)
		ex := TraceExportOptions{Traffic: simulateOptions().Traffic, Limit: DefaultHammerLimit, Window: DefaultHammerWindow, Format: format, Out: path}
		ios, _, _, _ := TestIO()
		if err := TraceExport(context.Background(), ex, ios); err != nil {
			t.Fatal(err)
		}
		pattern, _ := runSimulate(t, simulateOptions())
		opts := simulateOptions()
		opts.Trace = path
		fromTrace, _ := runSimulate(t, opts)
		if fromTrace.Requests != pattern.Requests || fromTrace.Trace.BadLines != 0 || fromTrace.Trace.Format != format {
			t.Fatalf("%s: trace %+v, pattern %d requests", format, fromTrace.Trace, pattern.Requests)
		}
		for i, a := range pattern.Algorithms {
			b := fromTrace.Algorithms[i]
			if a.Allowed != b.Allowed || a.PeakInWindow != b.PeakInWindow || a.PeakInTenthWindow != b.PeakInTenthWindow {
				t.Errorf("%s %s: pattern %d allowed, peak %d; trace %d, peak %d", format, a.Name, a.Allowed, a.PeakInWindow, b.Allowed, b.PeakInWindow)
			}
		}
	}
}

// TestSimulateTraceWhoPaid runs a generated log: the scraper (300 a minute, against
// 100) tops the denials, is never counted well-behaved, and the sliding log admits
// no abuse while the fixed window does.
func TestSimulateTraceWhoPaid(t *testing.T) {
	t.Parallel()
	opts := simulateOptions()
	opts.Trace, opts.Limits, opts.Windows = generatedLog(t, 60_000, 300), []int64{100}, []time.Duration{time.Minute}
	s, _ := runSimulate(t, opts)
	if s.Trace.BadLines == 0 || len(s.Trace.BadSamples) == 0 || s.Trace.Format != trace.FormatCombined {
		t.Errorf("trace %+v: the generated log has malformed lines", s.Trace)
	}
	for _, a := range s.Algorithms {
		if len(a.Clients) == 0 || a.Clients[0].Client != "100.0.0.0" || a.Clients[0].FirstDenial == nil {
			t.Errorf("%s: top clients %+v, want the scraper first", a.Name, a.Clients)
		}
		switch a.Name {
		case algorithms.SlidingLog:
			if a.AbuseAdmitted.Clients != 0 || a.PeakInWindow != 100 || a.PeakClient != "100.0.0.0" {
				t.Errorf("sliding log %+v", a)
			}
		case algorithms.FixedWindow:
			if a.AbuseAdmitted.Clients == 0 || a.PeakInWindow <= 100 {
				t.Errorf("fixed window %+v: the scraper gets more than L across an edge", a)
			}
		}
	}
}

// TestSimulateSweep: 3 limits × 2 windows × 2 algorithms, one pass; a higher limit
// admits more. (Who counts as well-behaved moves with the limit, so those counts
// need not fall as it rises.)
func TestSimulateSweep(t *testing.T) {
	t.Parallel()
	opts := simulateOptions()
	opts.Trace = generatedLog(t, 40_000, 300)
	opts.Limits, opts.Windows = []int64{20, 50, 200}, []time.Duration{time.Minute, time.Hour}
	opts.Algorithms = []string{algorithms.SlidingLog, algorithms.GCRA}
	s, _ := runSimulate(t, opts)
	if !s.Sweep || len(s.Algorithms) != 12 {
		t.Fatalf("sweep %v, %d rows", s.Sweep, len(s.Algorithms))
	}
	for _, a := range s.Algorithms {
		if a.Timeline != nil {
			t.Errorf("a sweep row has a timeline")
		}
	}
	// rows: limit 20 (1m, 1h), 50 (1m, 1h), 200 (1m, 1h), each sliding-log then gcra.
	for i := 0; i+4 < len(s.Algorithms); i++ {
		lo, hi := s.Algorithms[i], s.Algorithms[i+4]
		if hi.Allowed < lo.Allowed || hi.Name != lo.Name || hi.WindowMs != lo.WindowMs {
			t.Errorf("%s %d/%gms: %d allowed; at limit %d: %d", lo.Name, lo.Limit, lo.WindowMs, lo.Allowed, hi.Limit, hi.Allowed)
		}
	}
	if s.Algorithms[0].WellBehavedRefused.Clients == 0 {
		t.Error("20 a minute refuses no bursty user")
	}
	_, table := runSimulate(t, func() SimulateOptions { o := opts; o.Output = report.FormatTable; return o }())
	if !strings.Contains(string(table), "Sweep: refused well-behaved") {
		t.Error("no sweep chart in the table")
	}
}

// TestSimulateNodes: per-node limiters behind a round robin let the scraper through
// about N times the limit; hashed by client, once.
func TestSimulateNodes(t *testing.T) {
	t.Parallel()
	opts := simulateOptions()
	opts.Trace, opts.Limits, opts.Windows = generatedLog(t, 30_000, 100), []int64{100}, []time.Duration{time.Minute}
	opts.Algorithms, opts.Nodes, opts.Store = []string{algorithms.SlidingLog}, 3, "local"
	rr, _ := runSimulate(t, opts)
	opts.Balancer = "hash"
	hash, _ := runSimulate(t, opts)
	if p := rr.Algorithms[0].PeakInWindow; p <= 200 || p > 300 || rr.Algorithms[0].ExpectedMaxInWindow != 300 {
		t.Errorf("round robin: peak %d, bound %d; want over 2L up to 3L", p, rr.Algorithms[0].ExpectedMaxInWindow)
	}
	if p := hash.Algorithms[0].PeakInWindow; p != 100 || hash.Balancer != "hash" {
		t.Errorf("hash: peak %d, want L", p)
	}
}

func TestSimulateBadInput(t *testing.T) {
	t.Parallel()
	opts := simulateOptions()
	opts.Trace = filepath.Join(t.TempDir(), "missing.log")
	ios, _, _, _ := TestIO()
	if err := Simulate(context.Background(), opts, ios); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing trace: %v (exit %d)", err, ExitCode(err))
	}
	opts.Trace = generatedLog(t, 5000, 20)
	opts.TraceOptions.Strict = true
	err := Simulate(context.Background(), opts, ios)
	if ExitCode(err) != ExitFailure || !errors.Is(err, trace.ErrStrict) || !strings.Contains(err.Error(), "drop --strict") {
		t.Errorf("strict: %v", err)
	}
	for _, bad := range []func(*SimulateOptions){
		func(o *SimulateOptions) { o.Limits = []int64{0} },
		func(o *SimulateOptions) { o.Windows = nil },
		func(o *SimulateOptions) { o.Balancer = "random" },
		func(o *SimulateOptions) { o.Algorithms = []string{"gcra", "gcra"} },
		func(o *SimulateOptions) { o.TraceOptions.Format = "xml" },
		func(o *SimulateOptions) { o.TraceOptions.Client = "cookie" },
		func(o *SimulateOptions) { o.Pattern = "wave" },
		func(o *SimulateOptions) { o.Limits = make([]int64, 200); o.Windows = []time.Duration{time.Second} },
	} {
		o := simulateOptions()
		bad(&o)
		if err := o.Validate(); ExitCode(err) != ExitUsage {
			t.Errorf("%+v: %v", o, err)
		}
	}
}

func TestSimulateInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := simulateOptions()
	ios, _, out, _ := TestIO()
	err := Simulate(ctx, opts, ios)
	var s report.Simulate
	if ExitCode(err) != ExitInterrupted || json.Unmarshal(out.Bytes(), &s) != nil || !s.Interrupted {
		t.Errorf("err %v, report %s", err, out)
	}
}

func TestTraceGenerate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.log.gz")
	ios, _, _, _ := TestIO()
	opts := TraceGenerateOptions{GenConfig: trace.GenConfig{Seed: 1, Lines: 1000, Clients: 20}, Gzip: true, Out: path}
	if err := TraceGenerate(context.Background(), opts, ios); err != nil {
		t.Fatal(err)
	}
	so := simulateOptions()
	so.Trace = path
	s, _ := runSimulate(t, so)
	if !s.Trace.Gzip || s.Requests != 1000 {
		t.Errorf("trace %+v, %d requests", s.Trace, s.Requests)
	}
	opts.Clients = 2
	if err := TraceGenerate(context.Background(), opts, ios); ExitCode(err) != ExitUsage {
		t.Errorf("2 clients: %v", err)
	}
}

// TestSimulateProgress: the bar goes to standard error on a terminal, never with
// --output json, and never into the report.
func TestSimulateProgress(t *testing.T) {
	t.Parallel()
	log := generatedLog(t, 3000, 20)
	for _, format := range []string{report.FormatTable, report.FormatJSON} {
		opts := simulateOptions()
		opts.Trace, opts.Output = log, format
		ios, _, out, errOut := TestIO()
		ios.ErrIsTerminal = true
		if err := Simulate(context.Background(), opts, ios); err != nil {
			t.Fatal(err)
		}
		bar := strings.Contains(errOut.String(), "reading")
		if bar != (format == report.FormatTable) || strings.Contains(out.String(), "reading "+log) {
			t.Errorf("%s: stderr %q", format, errOut.String())
		}
	}
}

func TestSimulateSweepFile(t *testing.T) {
	t.Parallel()
	got, err := ParseSweep(strings.NewReader("# candidates\n100/1m\n\n100/1m burst 200\n50r1s-b80\n"))
	want := []algorithms.Policy{{Limit: 100, Window: time.Minute}, {Limit: 100, Window: time.Minute, Burst: 200}, {Limit: 50, Window: time.Second, Burst: 80}}
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("ParseSweep: %v, %v", got, err)
	}
	for _, bad := range []string{"", "# nothing\n", "100/soon\n", "x/1m\n", "100/1m burst many\n", "0/1m\n", "100 per minute\n"} {
		if _, err := ParseSweep(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	path := filepath.Join(t.TempDir(), "policies.txt")
	if err := os.WriteFile(path, []byte("10/500ms\n20/1s burst 5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := simulateOptions()
	opts.SweepFile = path
	s, _ := runSimulate(t, opts)
	if !s.Sweep || len(s.Algorithms) != 12 || s.Algorithms[6].Limit != 20 || s.Algorithms[6].Burst != 5 {
		t.Errorf("sweep %v, %d rows", s.Sweep, len(s.Algorithms))
	}
	opts.SweepFile = filepath.Join(t.TempDir(), "none.txt")
	ios, _, _, _ := TestIO()
	if err := Simulate(context.Background(), opts, ios); ExitCode(err) != ExitUsage {
		t.Errorf("a missing --sweep file: %v", err)
	}
}
