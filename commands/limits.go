package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/report"
)

// LimitsCheckOptions are the options of `ratelab limits check`.
type LimitsCheckOptions struct {
	// File is the policy file to check.
	File string
	// Output is table or json.
	Output string
}

// Validate checks the options; it changes nothing.
func (o LimitsCheckOptions) Validate() error {
	if o.File == "" {
		return Usagef("give the policy file to check: ratelab limits check FILE")
	}
	if o.Output != report.FormatTable && o.Output != report.FormatJSON {
		return Usagef("--output %q: choose %s or %s", o.Output, report.FormatTable, report.FormatJSON)
	}
	return nil
}

// LimitsCheck reads and validates a policy file and writes what it enforces. A file
// that is not valid is bad usage (ExitUsage), each problem at its line.
func LimitsCheck(_ context.Context, opts LimitsCheckOptions, ios IO) error {
	p, err := policy.Load(opts.File)
	var bad *policy.Error
	if errors.As(err, &bad) {
		if werr := report.WriteProblems(ios.ErrOut, bad.Problems); werr != nil {
			return werr
		}
		n := "1 problem"
		if len(bad.Problems) > 1 {
			n = fmt.Sprintf("%d problems", len(bad.Problems))
		}
		return UsageError(fmt.Errorf("%s is not a valid policy file (%s above); docs/policies.md has the schema", opts.File, n))
	}
	if err != nil {
		return err
	}
	return report.WriteLimits(ios.Out, opts.Output, report.LimitsOf(opts.File, p))
}
