package commands_test

import (
	"strings"
	"testing"

	"github.com/ratelab/ratelab/commands"
)

// TestInspectFlushOutputs: inspect and flush share hammer's --output vocabulary where
// they can (table, the default, and json); the old "text" still means table, and
// markdown, which they do not write, is bad usage saying what they take.
func TestInspectFlushOutputs(t *testing.T) {
	t.Parallel()
	g := commands.Global{Prefix: "ratelab"}
	tests := []struct {
		output, want, bad string
	}{
		{output: "", want: "table"},
		{output: "table", want: "table"},
		{output: "text", want: "table"},
		{output: "json", want: "json"},
		{output: "markdown", bad: "writes table or json"},
		{output: "xml", bad: `--output "xml"`},
	}
	for _, tt := range tests {
		in := commands.InspectOptions{Global: g, Output: tt.output}
		in.Normalize()
		fl := commands.FlushOptions{Global: g, Output: tt.output}
		fl.Normalize()
		for verb, err := range map[string]error{"inspect": in.Validate(), "flush": fl.Validate()} {
			if tt.bad != "" {
				if commands.ExitCode(err) != commands.ExitUsage || !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), verb) {
					t.Errorf("%s --output %q: %v; want a usage error with %q", verb, tt.output, err, tt.bad)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s --output %q: %v", verb, tt.output, err)
			}
		}
		if tt.bad == "" && (in.Output != tt.want || fl.Output != tt.want) {
			t.Errorf("--output %q normalizes to %q (inspect), %q (flush); want %q", tt.output, in.Output, fl.Output, tt.want)
		}
	}
}

// TestFlushNormalize: the kind an empty --kind means, and the batch size.
func TestFlushNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts commands.FlushOptions
		kind string
	}{
		{commands.FlushOptions{}, commands.FlushKindAll},
		{commands.FlushOptions{Algorithm: "gcra"}, commands.FlushKindRL},
		{commands.FlushOptions{Identity: "10.0.0.7"}, commands.FlushKindRL},
		{commands.FlushOptions{Kind: commands.FlushKindCache}, commands.FlushKindCache},
	}
	for _, tt := range tests {
		o := tt.opts
		o.Normalize()
		if o.Kind != tt.kind || o.BatchSize != commands.DefaultFlushBatch {
			t.Errorf("Normalize(%+v): kind %q, batch %d; want %q, %d", tt.opts, o.Kind, o.BatchSize, tt.kind, commands.DefaultFlushBatch)
		}
	}
}
