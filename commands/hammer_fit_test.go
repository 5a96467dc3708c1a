package commands

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"

	"github.com/ratelab/ratelab/internal/report"
)

// The table on Out fits a terminal's width; --wide, and a file or a pipe, get every column.
func TestHammerTableFitsTheTerminal(t *testing.T) {
	t.Parallel()
	h := &report.Hammer{Backend: "embedded", Nodes: 1, Store: "redis", Pattern: "mixed", Valid: true,
		Algorithms: []report.Algorithm{{Name: "sliding-counter", Limit: 10, WindowMs: 500, Burst: 10, Sent: 3000, Allowed: 1400,
			Denied: 1590, AllowedPerSecond: 466.7, PeakInWindow: 19, PeakInTenthWindow: 10, ExpectedMaxInWindow: 19, BurstRatio: 1.9}}}
	widest := func(s string) int {
		w := 0
		for line := range strings.Lines(s) {
			w = max(w, runewidth.StringWidth(strings.TrimRight(line, "\n")))
		}
		return w
	}
	for _, c := range []struct {
		name      string
		termWidth int
		opts      HammerOptions
		fits      int
		allowedPS bool
	}{
		{"terminal", 80, HammerOptions{Output: "table"}, 80, false},
		{"wide", 80, HammerOptions{Output: "table", Wide: true}, 0, true},
		{"pipe", 0, HammerOptions{Output: "table"}, 0, true},
		{"width asked", 0, HammerOptions{Output: "table", Width: 80}, 80, false},
	} {
		ios, _, out, _ := TestIO()
		ios.Width = c.termWidth
		if err := writeReport(ios, c.opts, h); err != nil {
			t.Fatal(err)
		}
		if c.fits > 0 && widest(out.String()) > c.fits {
			t.Errorf("%s: a line of %d columns, want at most %d:\n%s", c.name, widest(out.String()), c.fits, out)
		}
		if got := strings.Contains(out.String(), "allowed/s │"); got != c.allowedPS {
			t.Errorf("%s: every column shown %v, want %v:\n%s", c.name, got, c.allowedPS, out)
		}
	}
}

// --output html --out FILE writes the page to the file and the table to Out.
func TestHammerHTMLToAFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "report.html")
	h := &report.Hammer{Backend: "embedded", Nodes: 1, Store: "redis", Pattern: "mixed", Valid: true,
		Algorithms: []report.Algorithm{{Name: "gcra", Limit: 10, WindowMs: 500, Burst: 10}}}
	ios, _, out, errOut := TestIO()
	if err := writeReport(ios, HammerOptions{Output: report.FormatHTML, OutFile: path}, h); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(page), "<!DOCTYPE html>") || !strings.Contains(string(page), `id="report"`) {
		t.Errorf("the file is not the page:\n%.200s", page)
	}
	if !strings.HasPrefix(out.String(), "ratelab hammer\n") || !strings.Contains(errOut.String(), "report written to "+path) {
		t.Errorf("standard output is not the table:\n%s\n%s", out, errOut)
	}
}
