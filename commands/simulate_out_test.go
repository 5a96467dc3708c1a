package commands

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/internal/report"
)

// TestSimulateHTMLToAFile: simulate --output html --out FILE writes the page, with the
// run's JSON report in it, to the file and the table to Out, for one policy and for a
// sweep.
func TestSimulateHTMLToAFile(t *testing.T) {
	t.Parallel()
	for _, sweep := range []bool{false, true} {
		opts := simulateOptions()
		opts.Output, opts.OutFile = report.FormatHTML, filepath.Join(t.TempDir(), "simulate.html")
		if sweep {
			opts.Limits, opts.Windows = []int64{10, 20}, []time.Duration{500 * time.Millisecond}
		}
		if err := opts.Validate(); err != nil {
			t.Fatal(err)
		}
		ios, _, out, errOut := TestIO()
		if err := Simulate(context.Background(), opts, ios); err != nil {
			t.Fatal(err)
		}
		page, err := os.ReadFile(opts.OutFile)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?s)<script type="application/json" id="report">(.*?)</script>`).FindSubmatch(page)
		if !strings.HasPrefix(string(page), "<!DOCTYPE html>") || m == nil {
			t.Fatalf("sweep %v: the file is not the page:\n%.300s", sweep, page)
		}
		var s report.Simulate
		if err := json.Unmarshal(m[1], &s); err != nil {
			t.Fatal(err)
		}
		if want := len(opts.Algorithms) * len(opts.Policies()); len(s.Algorithms) != want || s.Sweep != sweep || s.Requests == 0 {
			t.Errorf("sweep %v: the embedded report has %d rows (want %d), sweep %v, %d requests", sweep, len(s.Algorithms), want, s.Sweep, s.Requests)
		}
		chart := `<section id="timeline">`
		if sweep {
			chart = `<section id="sweep">`
		}
		if !strings.Contains(string(page), chart) || !strings.Contains(string(page), "<h2>Who paid: ") {
			t.Errorf("sweep %v: the page lacks %s or the who-paid table", sweep, chart)
		}
		if !strings.HasPrefix(out.String(), "ratelab simulate\n") || !strings.Contains(errOut.String(), "report written to "+opts.OutFile) {
			t.Errorf("sweep %v: standard output is not the table:\n%s\n%s", sweep, out, errOut)
		}
	}
}

// A --out that cannot be written is a usage error before anything is simulated.
func TestSimulateBadOut(t *testing.T) {
	t.Parallel()
	opts := simulateOptions()
	opts.Trace = filepath.Join(t.TempDir(), "no-such.log")
	opts.OutFile = filepath.Join(t.TempDir(), "missing", "r.html")
	ios, _, _, _ := TestIO()
	err := Simulate(context.Background(), opts, ios)
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "--out") {
		t.Errorf("got %v (exit %d), want a usage error about --out", err, ExitCode(err))
	}
}
