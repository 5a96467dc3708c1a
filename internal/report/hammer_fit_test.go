package report

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/mattn/go-runewidth"
)

// sixAlgorithms is the sample with every algorithm, the longest name among them.
func sixAlgorithms() *Hammer {
	h := sampleHammer()
	base := h.Algorithms[0]
	h.Algorithms = nil
	for i, name := range []string{"fixed-window", "sliding-log", "sliding-counter", "token-bucket", "leaky-bucket", "gcra"} {
		a := base
		a.Name = name
		if i == 2 {
			a.FailOpen = 7
		}
		h.Algorithms = append(h.Algorithms, a)
	}
	return h
}

func TestHammerTableWidthGolden(t *testing.T) {
	for _, width := range []int{80, 160} {
		t.Run(fmt.Sprint(width), func(t *testing.T) {
			var b bytes.Buffer
			if err := HammerTableWidth(&b, sixAlgorithms(), width); err != nil {
				t.Fatal(err)
			}
			golden(t, fmt.Sprintf("hammer.table%d.golden", width), b.Bytes())
		})
	}
}

// Every line fits the width asked for, whatever the report holds: long URLs aside,
// which get a line of their own.
func TestHammerTableWidthFits(t *testing.T) {
	t.Parallel()
	targets := sixAlgorithms()
	targets.Backend, targets.Store = "targets", "remote"
	targets.Targets = []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"}
	targets.TargetPolicies = []string{`"default";q=100;w=1`, ""}
	targets.TargetPolicyMismatch = []string{"http://127.0.0.1:8080 enforces a quota of 100, not --limit 10"}
	invalid := sixAlgorithms()
	invalid.Valid, invalid.InvalidReasons = false, []string{"41.0% of sends were late (more than 1%): run on a quieter machine, or lower --rps"}
	for name, h := range map[string]*Hammer{"six": sixAlgorithms(), "two": sampleHammer(), "targets": targets, "invalid": invalid, "fault": sampleFaultHammer()} {
		for _, width := range []int{80, 100, 132} {
			var b bytes.Buffer
			if err := HammerTableWidth(&b, h, width); err != nil {
				t.Fatal(err)
			}
			for line := range strings.Lines(b.String()) {
				line = strings.TrimRight(line, "\n")
				if w := runewidth.StringWidth(line); w > width && strings.Contains(line, " ") {
					t.Errorf("%s at %d columns: a line of %d:\n%s", name, width, w, line)
				}
			}
		}
	}
}

// The compact layout keeps what a reader needs (the burst ratio, check p99, each
// algorithm) and says which columns it left out.
func TestHammerTableWidthKeepsTheHeadline(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HammerTableWidth(&b, sixAlgorithms(), 80); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"sliding-counter", "ratio", "│  2.00 │", "p99", "not shown at 80 columns: allowed/s", "--wide shows every column", "MISSED"} {
		if !strings.Contains(out, want) {
			t.Errorf("the 80-column table lacks %q:\n%s", want, out)
		}
	}
	// Width 0 is today's full layout, byte for byte.
	var full, zero bytes.Buffer
	if err := HammerTable(&full, sampleHammer()); err != nil {
		t.Fatal(err)
	}
	if err := HammerTableWidth(&zero, sampleHammer(), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full.Bytes(), zero.Bytes()) {
		t.Error("width 0 is not the full layout")
	}
}
