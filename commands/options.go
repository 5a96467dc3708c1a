package commands

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/report"
)

// outputTextAlias is what inspect and flush called their table output before every
// command shared one --output vocabulary; it is still accepted, so old scripts work.
const outputTextAlias = "text"

// Normalize fills in what the zero values of o mean (the table output, the default
// sample) and maps the old "text" output to table. cmd calls it before Validate.
func (o *InspectOptions) Normalize() {
	o.Output = normalizeKeysOutput(o.Output)
	if o.MemorySample <= 0 {
		o.MemorySample = DefaultMemorySample
	}
}

// Validate checks normalized options without changing them; every error is a usage
// error naming its flag. Inspect trusts options that passed it.
func (o InspectOptions) Validate() error {
	if err := validatePrefix(o.Prefix); err != nil {
		return err
	}
	if err := validateKeysOutput("inspect", o.Output); err != nil {
		return err
	}
	if o.Key != "" && o.Identity != "" {
		return Usagef("give a KEY or an identity (--ip, --key-id, --api-key), not both")
	}
	return nil
}

// Normalize fills in what the zero values of o mean: the kind (all, or rl when an
// algorithm or identity narrows it), the batch size and the table output.
func (o *FlushOptions) Normalize() {
	o.Output = normalizeKeysOutput(o.Output)
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultFlushBatch
	}
	if o.Kind == "" {
		o.Kind = FlushKindAll
		if o.Algorithm != "" || o.Identity != "" {
			o.Kind = FlushKindRL
		}
	}
}

// Validate checks normalized options without changing them; every error is a usage
// error naming its flag. Flush trusts options that passed it.
func (o FlushOptions) Validate() error {
	if err := validatePrefix(o.Prefix); err != nil {
		return err
	}
	if err := validateKeysOutput("flush", o.Output); err != nil {
		return err
	}
	switch o.Kind {
	case FlushKindAll, FlushKindRL:
	case FlushKindCache:
		if o.Algorithm != "" || o.Identity != "" {
			return Usagef("--algorithm and --ip/--key-id/--api-key narrow limiter keys; they do not go with --kind cache")
		}
	default:
		return Usagef("--kind %q: use rl (limiter state), cache (products and their locks) or all", o.Kind)
	}
	if o.Algorithm != "" {
		if err := algorithms.Lookup(o.Algorithm); err != nil {
			return UsageError(fmt.Errorf("--algorithm: %w", err))
		}
	}
	return nil
}

func normalizeKeysOutput(output string) string {
	if output == "" || output == outputTextAlias {
		return report.FormatTable
	}
	return output
}

// validateKeysOutput refuses an --output inspect and flush do not write, markdown
// included, saying which they do.
func validateKeysOutput(verb, output string) error {
	if slices.Contains(report.InspectFormats(), output) {
		return nil
	}
	return Usagef("--output %q: %s writes %s", output, verb, strings.Join(report.InspectFormats(), " or "))
}

func validatePrefix(prefix string) error {
	if _, err := algorithms.NewKeyspace(prefix); err != nil {
		return UsageError(fmt.Errorf("--prefix: %w", err))
	}
	return nil
}

// checkAlgorithms refuses an --algorithms list with a name that is not an algorithm
// or a name listed twice (hammer and simulate take the same list).
func checkAlgorithms(names []string) error {
	seen := map[string]bool{}
	for _, a := range names {
		if err := algorithms.Lookup(a); err != nil {
			return Usagef("--algorithms: %v", err)
		}
		if seen[a] {
			return Usagef("--algorithms: %q is listed twice", a)
		}
		seen[a] = true
	}
	return nil
}
