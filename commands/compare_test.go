package commands

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/internal/compare"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// writeHammerReport writes a hammer JSON report as hammer does, with one algorithm.
func writeHammerReport(t *testing.T, dir, name, pattern string, p99 int64, limit int64) string {
	t.Helper()
	h := &report.Hammer{SchemaVersion: report.HammerSchemaVersion, Valid: true, Backend: "embedded", Nodes: 1, Store: "redis",
		Pattern: pattern, TargetRPS: 1000, AchievedRPS: 999, Sent: 3000,
		Algorithms: []report.Algorithm{{Name: "sliding-log", Limit: limit, WindowMs: 500, Burst: limit, Sent: 3000, Allowed: 1400, Denied: 1600,
			PeakInWindow: limit, ExpectedMaxInWindow: limit, BurstRatio: 1,
			CheckLatencyUs: scenario.Latency{Count: 3000, P50: 100, P90: 200, P99: p99, P999: 2 * p99, Max: 3 * p99}}}}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := report.HammerJSON(f, h); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCompareExitStatus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := writeHammerReport(t, dir, "base.json", "mixed", 500, 10)
	slower := writeHammerReport(t, dir, "slower.json", "mixed", 700, 10)
	boundary := writeHammerReport(t, dir, "boundary.json", "boundary", 500, 20)
	junk := filepath.Join(dir, "junk.json")
	if err := os.WriteFile(junk, []byte("ratelab hammer\n  backend embedded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	limits := func(spec string) []compare.Threshold {
		th, err := compare.ParseThresholds([]string{spec})
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	for _, c := range []struct {
		name string
		opts CompareOptions
		code int
		says string
	}{
		{"within", CompareOptions{Base: base, New: slower, Thresholds: limits("check_p99=50%")}, ExitOK, "check_p99"},
		{"regressed", CompareOptions{Base: base, New: slower, Thresholds: limits("check_p99=20%")}, ExitThreshold, "MISSED"},
		{"absolute", CompareOptions{Base: base, New: slower, Thresholds: limits("check_p99=0.1ms")}, ExitThreshold, "got worse by 200"},
		{"not comparable", CompareOptions{Base: base, New: boundary}, ExitUsage, "pattern: mixed in"},
		{"forced", CompareOptions{Base: base, New: boundary, Force: true}, ExitOK, "NOT COMPARABLE (compared with --force)"},
		{"not a report", CompareOptions{Base: base, New: junk}, ExitUsage, "not a ratelab JSON report"},
		{"missing", CompareOptions{Base: base, New: filepath.Join(dir, "nope.json")}, ExitUsage, "cannot read the report"},
	} {
		c.opts.Output = report.FormatTable
		ios, _, out, _ := TestIO()
		err := Compare(context.Background(), c.opts, ios)
		if code := ExitCode(err); code != c.code {
			t.Errorf("%s: exit %d (%v), want %d", c.name, code, err, c.code)
		}
		msg := out.String()
		if err != nil {
			msg += err.Error()
		}
		if !strings.Contains(msg, c.says) {
			t.Errorf("%s: the output and error lack %q:\n%s", c.name, c.says, msg)
		}
	}
	// The JSON output is the comparison, for scripts.
	ios, _, out, _ := TestIO()
	if err := Compare(context.Background(), CompareOptions{Base: base, New: slower, Output: report.FormatJSON}, ios); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Figures []struct {
			Subject, Figure string
			Change          float64
		} `json:"figures"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range got.Figures {
		found = found || (f.Subject == "sliding-log" && f.Figure == "check_p99" && f.Change == 200)
	}
	if !found {
		t.Errorf("the JSON lacks sliding-log's check_p99 change of 200:\n%s", out)
	}
}
