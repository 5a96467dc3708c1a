package commands

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/internal/report"
)

const issueLimits = "../internal/policy/testdata/issue.yaml"

// keyedCSV writes a CSV trace: 25 GETs at one instant from a free client, 250 from
// the pro key, 25 from an unknown key, 8 PUTs, and one POST no rule matches.
func keyedCSV(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("time,client,method,route,key\n")
	add := func(n int, line string) {
		for range n {
			b.WriteString(line + "\n")
		}
	}
	add(25, "2026-11-24T09:00:00Z,192.0.2.1,GET,/products/1,")
	add(250, "2026-11-24T09:00:00Z,192.0.2.2,GET,/products/2,key-pro-1")
	add(25, "2026-11-24T09:00:00Z,192.0.2.3,GET,/products/3,key-unknown")
	add(8, "2026-11-24T09:00:01Z,192.0.2.4,PUT,/products/1,")
	add(1, "2026-11-24T09:00:01Z,192.0.2.5,POST,/login,")
	path := filepath.Join(t.TempDir(), "keyed.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSimulateLimitsTrace: the contract's file over a keyed trace gives the pro key
// its own limit and an unknown key the free tier's, in simulate's JSON.
func TestSimulateLimitsTrace(t *testing.T) {
	opts := simulateOptions()
	opts.LimitsFile, opts.Trace = issueLimits, keyedCSV(t)
	s, _ := runSimulate(t, opts)
	l := s.Limits
	if l == nil || s.Requests != 309 || len(s.Algorithms) != 0 || l.Unmatched != 1 || l.Identity != "ip" || len(l.SHA256) != 64 {
		t.Fatalf("report %+v, limits %+v", s, l)
	}
	var got []string
	for _, r := range l.Rules {
		line := fmt.Sprintf("%s %s: %d sent %d allowed %d denied %d shadow;", r.Rule, r.Tier, r.Requests, r.Allowed, r.Denied, r.ShadowDenied)
		for _, lim := range r.Limits {
			line += fmt.Sprintf(" %s %d/%d", lim.Name, lim.Denied, lim.ShadowDenied)
		}
		got = append(got, line)
	}
	want := []string{
		"GET/products/id@free free: 50 sent 40 allowed 10 denied 0 shadow; per-second 10/0 per-hour 0/0",
		"GET/products/id@pro pro: 250 sent 200 allowed 50 denied 0 shadow; per-second 50/0",
		"PUT free: 8 sent 8 allowed 0 denied 3 shadow; writes 0/3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := l.Rules[2]; r.WellBehavedRefused != nil || r.AbuseAdmitted != nil {
		t.Errorf("a shadow-only rule has who-paid figures: %+v %+v", r.WellBehavedRefused, r.AbuseAdmitted)
	}
}

// TestSimulateLimitsDeterministic: the same file and input, the same report, byte
// for byte, in every format, for a trace and for hammer's pattern.
func TestSimulateLimitsDeterministic(t *testing.T) {
	csv := keyedCSV(t)
	for _, output := range report.Formats() {
		for _, tr := range []string{"", csv} {
			opts := simulateOptions()
			opts.LimitsFile, opts.Trace, opts.Output = issueLimits, tr, output
			_, a := runSimulate(t, opts)
			_, b := runSimulate(t, opts)
			if !bytes.Equal(a, b) || len(a) == 0 {
				t.Errorf("%s, trace %q: two runs differ or are empty", output, tr)
			}
			if output == report.FormatTable && !bytes.Contains(a, []byte("per-second")) {
				t.Errorf("the table names no limit:\n%s", a)
			}
		}
	}
}

// TestSimulateLimitsBadFile: a missing or invalid policy file is a usage error
// (exit 2) with the file's problems on stderr.
func TestSimulateLimitsBadFile(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("identity: ip\nrules:\n  - match: {method: GET}\n    limits:\n      - {name: x, algorithm: nope, limit: 1, window: 1s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(t.TempDir(), "absent.yaml"), bad} {
		opts := simulateOptions()
		opts.LimitsFile = file
		ios, _, out, errOut := TestIO()
		err := Simulate(context.Background(), opts, ios)
		if ExitCode(err) != ExitUsage || out.Len() != 0 {
			t.Errorf("%s: exit %d (%v), %d bytes out", file, ExitCode(err), err, out.Len())
		}
		if file == bad && !strings.Contains(errOut.String(), "bad.yaml:5: ") {
			t.Errorf("the problems name no line: %q", errOut.String())
		}
	}
}
