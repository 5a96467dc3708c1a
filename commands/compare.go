package commands

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/ratelab/ratelab/internal/compare"
	"github.com/ratelab/ratelab/internal/report"
)

// CompareOptions is everything `ratelab compare` is told.
type CompareOptions struct {
	// Base and New are the JSON reports' files: the run before and the run after.
	Base, New string
	// Thresholds are --max-regression's limits (compare.ParseThresholds).
	Thresholds []compare.Threshold
	// Force compares runs of different patterns, algorithms or policies.
	Force bool
	// Output is table, json or markdown.
	Output string
	// Wide and Width lay out the table as hammer's --wide and --width do.
	Wide  bool
	Width int
}

// Validate checks the options without changing them.
func (o CompareOptions) Validate() error {
	switch {
	case o.Base == "" || o.New == "":
		return Usagef("name two JSON reports: ratelab compare BASE.json NEW.json")
	case !slices.Contains(report.CompareFormats(), o.Output):
		return Usagef("--output %q: choose one of %s", o.Output, strings.Join(report.CompareFormats(), ", "))
	case o.Width < 0:
		return Usagef("--width %d: give a number of columns (0: the terminal's)", o.Width)
	}
	return nil
}

// Compare reads two JSON reports, writes every figure of both side by side with its
// change, and checks the --max-regression limits: a missed one is an ExitThreshold
// error, after the comparison is written. Reports of different patterns, algorithms
// or policies are refused (a usage error saying what differs) unless Force.
func Compare(_ context.Context, opts CompareOptions, ios IO) error {
	base, err := readReport(opts.Base)
	if err != nil {
		return err
	}
	next, err := readReport(opts.New)
	if err != nil {
		return err
	}
	c := compare.Compare(base, next, opts.Thresholds)
	if len(c.Differences) > 0 {
		if !opts.Force {
			return Usagef("%s and %s are not runs of the same thing: %s; compare runs of one pattern, set of algorithms and policy, or pass --force",
				opts.Base, opts.New, strings.Join(c.Differences, "; "))
		}
		c.Forced = true
	}
	width := ios.Width
	switch {
	case opts.Wide:
		width = 0
	case opts.Width > 0:
		width = opts.Width
	}
	if err := report.WriteComparison(ios.Out, opts.Output, c, width); err != nil {
		return err
	}
	if missed := c.Missed(); len(missed) > 0 {
		parts := make([]string, len(missed))
		for i, m := range missed {
			parts[i] = m.Subject + " " + m.Threshold
			if m.NoData != "" {
				parts[i] += " (no data: " + m.NoData + ")"
			}
		}
		return WithExit(ExitThreshold, fmt.Errorf("%d regression threshold(s) missed: %s", len(missed), strings.Join(parts, "; ")))
	}
	return nil
}

// readReport reads one JSON report; a file that cannot be read or is not a report
// is bad usage: the wrong argument.
func readReport(path string) (*compare.Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Usagef("cannot read the report %s: %v; write one with ratelab hammer --output json --out FILE", path, err)
	}
	defer f.Close()
	r, err := compare.Read(f, path)
	if err != nil {
		return nil, UsageError(err)
	}
	return r, nil
}
