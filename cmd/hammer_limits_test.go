package cmd

import (
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/commands"
)

// hammerErr runs `hammer args` with a stand-in for commands.Hammer and returns its
// error and whether the stand-in was called.
func hammerErr(t *testing.T, args ...string) (commands.HammerOptions, bool, error) {
	t.Helper()
	var got commands.HammerOptions
	called := false
	ios, _, _, _ := commands.TestIO()
	cmd := newHammerCmd(ios, &commands.Global{Prefix: "ratelab"}, func(_ context.Context, o commands.HammerOptions, _ commands.IO) error {
		got, called = o, true
		return nil
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	cmd.SetArgs(args)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	return got, called, cmd.ExecuteContext(context.Background())
}

// TestHammerLimitsFlags: --limits and --tier-mix are taken; the flags a policy file
// replaces, a bad mix, and a mix without a file are usage errors (exit 2).
func TestHammerLimitsFlags(t *testing.T) {
	o, called, err := hammerErr(t, "--limits", "limits.yaml", "--tier-mix", "free=90,pro=9,internal=1")
	if err != nil || !called || o.LimitsFile != "limits.yaml" || o.TierMix != "free=90,pro=9,internal=1" {
		t.Fatalf("--limits --tier-mix: %q %q, %v (ran %v)", o.LimitsFile, o.TierMix, err, called)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--limits", "f.yaml", "--algorithms", "gcra"}, "--limits and --algorithms"},
		{[]string{"--limits", "f.yaml", "--limit", "5"}, "--limits and --limit"},
		{[]string{"--limits", "f.yaml", "--window", "1s"}, "--limits and --window"},
		{[]string{"--limits", "f.yaml", "--burst", "3"}, "--limits and --burst"},
		{[]string{"--limits", "f.yaml", "--tier-mix", "free=x"}, "--tier-mix"},
		{[]string{"--limits", "f.yaml", "--tier-mix", "free=1,free=2"}, "listed twice"},
		{[]string{"--tier-mix", "free=1"}, "--tier-mix needs --limits"},
		{[]string{"--limits", "f.yaml", "--target", "http://127.0.0.1:8080"}, "--limits and --target"},
	} {
		_, called, err := hammerErr(t, c.args...)
		if called || commands.ExitCode(err) != commands.ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v (ran %v); want exit 2 with %q", c.args, err, called, c.want)
		}
	}
}
