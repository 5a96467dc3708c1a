package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/internal/compare"
)

func sampleComparison(t *testing.T, force bool) *compare.Comparison {
	t.Helper()
	read := func(name string) *compare.Report {
		f, err := os.Open(filepath.Join("..", "compare", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := compare.Read(f, name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	th, err := compare.ParseThresholds([]string{"check_p99=20%,burst_ratio=0.1,gcra:e2e_p99=1ms"})
	if err != nil {
		t.Fatal(err)
	}
	c := compare.Compare(read("base.json"), read("new.json"), th)
	if force {
		c.Differences, c.Forced = []string{"pattern: mixed in base.json, boundary in new.json"}, true
	}
	return c
}

func TestComparisonGolden(t *testing.T) {
	for _, format := range CompareFormats() {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteComparison(&b, format, sampleComparison(t, false), 0); err != nil {
				t.Fatal(err)
			}
			golden(t, "compare."+format+".golden", b.Bytes())
		})
	}
}

func TestComparisonSaysWhatWasForced(t *testing.T) {
	t.Parallel()
	for _, format := range []string{FormatTable, FormatMarkdown} {
		var b bytes.Buffer
		if err := WriteComparison(&b, format, sampleComparison(t, true), 80); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), "NOT COMPARABLE (compared with --force): pattern: mixed in base.json, boundary in new.json") {
			t.Errorf("%s does not say what differed:\n%s", format, b.String())
		}
	}
	if err := WriteComparison(&bytes.Buffer{}, "html", sampleComparison(t, false), 0); err == nil {
		t.Error("an unknown format was accepted")
	}
}

// At 80 columns the comparison is a table per subject, every line within the width.
func TestComparisonFits80Columns(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := WriteComparison(&b, FormatTable, sampleComparison(t, false), 80); err != nil {
		t.Fatal(err)
	}
	golden(t, "compare.table80.golden", b.Bytes())
	for line := range strings.Lines(b.String()) {
		if w := textWidth(line); w > 80 {
			t.Errorf("a line of %d columns:\n%s", w, line)
		}
	}
	for _, want := range []string{"\nrun\n", "\nfixed-window\n", "\ngcra\n", "check_p99", "+160µs (+25.0%)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the 80-column comparison lacks %q:\n%s", want, b.String())
		}
	}
}
