package cmd

import (
	"context"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/compare"
)

func parseCompare(t *testing.T, args ...string) (*commands.CompareOptions, int) {
	t.Helper()
	var got *commands.CompareOptions
	ios, _, _, _ := commands.TestIO()
	cmd := newCompareCmd(ios, &commands.Global{}, func(_ context.Context, o commands.CompareOptions, _ commands.IO) error {
		got = &o
		return nil
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	cmd.SetArgs(args)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	return got, commands.ExitCode(cmd.ExecuteContext(context.Background()))
}

func TestCompareFlags(t *testing.T) {
	o, code := parseCompare(t, "a.json", "b.json", "--max-regression", "check_p99=20%,burst_ratio=0.1", "--max-regression", "gcra:e2e_p99=2ms",
		"--force", "-o", "markdown")
	if code != commands.ExitOK || o == nil {
		t.Fatalf("exit %d", code)
	}
	want := []compare.Threshold{{Figure: "check_p99", Limit: 0.2, Relative: true}, {Figure: "burst_ratio", Limit: 0.1},
		{Subject: "gcra", Figure: "e2e_p99", Limit: 2000}}
	if o.Base != "a.json" || o.New != "b.json" || !o.Force || o.Output != "markdown" || len(o.Thresholds) != 3 {
		t.Fatalf("options %+v", o)
	}
	for i := range want {
		if o.Thresholds[i] != want[i] {
			t.Errorf("threshold %d: %+v, want %+v", i, o.Thresholds[i], want[i])
		}
	}
	for _, bad := range [][]string{
		{"a.json"},
		{"a.json", "b.json", "c.json"},
		{"a.json", "b.json", "--max-regression", "latency=20%"},
		{"a.json", "b.json", "-o", "html"},
	} {
		if o, code := parseCompare(t, bad...); code != commands.ExitUsage || o != nil {
			t.Errorf("%q: exit %d, want %d", bad, code, commands.ExitUsage)
		}
	}
}
