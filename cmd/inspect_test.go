package cmd

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
)

// TestInspectFlushHelp: both help texts carry examples and every exit status they use.
func TestInspectFlushHelp(t *testing.T) {
	for cmd, wants := range map[string][]string{
		"inspect": {"EXAMPLES", "EXIT STATUS", "  4  no such key", "  5  the key is not ratelab's", "  6  the key is under --prefix", "  2  bad usage", "--output"},
		"flush":   {"EXAMPLES", "EXIT STATUS", "  1  failure", "  2  bad usage", "--dry-run", "--yes", "never KEYS, FLUSHDB"},
	} {
		code, out, _ := run(t, cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d", cmd, code)
		}
		for _, w := range wants {
			if !strings.Contains(strings.ToUpper(out), strings.ToUpper(w)) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, w, out)
			}
		}
	}
}

// TestInspectFlushFlags: bad flags are usage errors (exit 2) before Redis is reached.
func TestInspectFlushFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "--ip", "not-an-ip"}, "not an IP address"},
		{[]string{"inspect", "--ip", "10.0.0.7", "--key-id", "x"}, "one of --ip"},
		{[]string{"inspect", "--key-id", "bad id!"}, "invalid identity"},
		{[]string{"inspect", "a", "b"}, "accepts at most 1"},
		{[]string{"inspect", "--prefix", "", "k"}, "prefix is empty"},
		{[]string{"inspect", "--prefix", "**", "k"}, "glob characters"},
		{[]string{"flush", "--prefix", "*", "--yes"}, "glob characters"},
		{[]string{"flush", "--redis", "redis://127.0.0.1:1"}, "--yes"},
		{[]string{"flush", "--kind", "bogus", "--yes"}, "--kind"},
		{[]string{"flush", "extra"}, "takes no arguments"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != commands.ExitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestInspectExitStatuses: the statuses of inspect reach the process, with the message.
func TestInspectExitStatuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"inspect", "other:key"}, commands.ExitForeign, "not a ratelab key"},
		{[]string{"inspect", "ratelab:what"}, commands.ExitUndecodable, "cannot decode"},
		{[]string{"inspect", "ratelab:product:{1}"}, commands.ExitMissing, "no such key"},
		{[]string{"inspect", "--redis", "redis://127.0.0.1:1"}, commands.ExitFailure, "connection refused"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, %q; want exit %d saying %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// parseWith runs `name args` under a bare root with build's command and a stand-in
// for its run, and returns the options the run was given (nil when it was not called),
// the exit status and stderr's message.
func parseWith[O any](t *testing.T, build func(commands.IO, *commands.Global, func(context.Context, O, commands.IO) error) *cobra.Command,
	args ...string) (*O, int, string) {
	t.Helper()
	var got *O
	ios, _, _, _ := commands.TestIO()
	g := &commands.Global{Prefix: "ratelab"}
	root := &cobra.Command{Use: "ratelab", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().StringVar(&g.Prefix, "prefix", "ratelab", "")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	root.AddCommand(build(ios, g, func(_ context.Context, o O, _ commands.IO) error {
		got = &o
		return nil
	}))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return got, commands.ExitCode(err), fmt.Sprint(err)
}

func TestInspectFlagsParse(t *testing.T) {
	tests := []struct {
		args []string
		want commands.InspectOptions
	}{
		{[]string{"inspect"}, commands.InspectOptions{Output: "table", MemorySample: commands.DefaultMemorySample}},
		{[]string{"inspect", "ratelab:product:{7}", "-o", "json"}, commands.InspectOptions{Key: "ratelab:product:{7}", Output: "json", MemorySample: commands.DefaultMemorySample}},
		{[]string{"inspect", "--ip", "::ffff:10.0.0.7", "--output", "text", "--sample", "5"}, commands.InspectOptions{Identity: "10.0.0.7", Output: "table", MemorySample: 5}},
		{[]string{"inspect", "--api-key", "secret", "--api-key-secret", testSecret}, commands.InspectOptions{Identity: testHasher(t).Identity("secret"), Output: "table", MemorySample: commands.DefaultMemorySample}},
		{[]string{"inspect", "--sample", "0"}, commands.InspectOptions{Output: "table", MemorySample: commands.DefaultMemorySample}},
	}
	for _, tt := range tests {
		o, code, msg := parseWith(t, newInspectCmd, tt.args...)
		tt.want.Global = commands.Global{Prefix: "ratelab"}
		if code != commands.ExitOK || o == nil || !reflect.DeepEqual(*o, tt.want) {
			t.Errorf("%q: exit %d (%s), options %+v; want %+v", tt.args, code, msg, o, tt.want)
		}
	}
}

func TestFlushFlagsParse(t *testing.T) {
	tests := []struct {
		args []string
		want commands.FlushOptions
	}{
		{[]string{"flush"}, commands.FlushOptions{Kind: "all", Output: "table", BatchSize: commands.DefaultFlushBatch}},
		{[]string{"flush", "--algorithm", "gcra", "-y", "--dry-run", "-o", "json", "--batch", "10"},
			commands.FlushOptions{Kind: "rl", Algorithm: "gcra", Yes: true, DryRun: true, Output: "json", BatchSize: 10}},
		{[]string{"flush", "--key-id", "key-abc", "--output", "text"}, commands.FlushOptions{Kind: "rl", Identity: "key-abc", Output: "table", BatchSize: commands.DefaultFlushBatch}},
		{[]string{"flush", "--kind", "cache"}, commands.FlushOptions{Kind: "cache", Output: "table", BatchSize: commands.DefaultFlushBatch}},
	}
	for _, tt := range tests {
		o, code, msg := parseWith(t, newFlushCmd, tt.args...)
		tt.want.Global = commands.Global{Prefix: "ratelab"}
		if code != commands.ExitOK || o == nil || !reflect.DeepEqual(*o, tt.want) {
			t.Errorf("%q: exit %d (%s), options %+v; want %+v", tt.args, code, msg, o, tt.want)
		}
	}
}

// TestInspectFlushBadFlagsNeverRun: bad usage is exit 2 and never reaches the run.
func TestInspectFlushBadFlagsNeverRun(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "-o", "markdown"}, "inspect writes table or json"},
		{[]string{"inspect", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"inspect", "k", "--ip", "10.0.0.7"}, "not both"},
		{[]string{"inspect", ""}, "the KEY is empty"},
		{[]string{"inspect", "--prefix", "*"}, "glob characters"},
		{[]string{"inspect", "--ip", "10.0.0.7", "--api-key", "x"}, "one of --ip"},
		{[]string{"flush", "-o", "markdown"}, "flush writes table or json"},
		{[]string{"flush", "--kind", "bogus"}, `--kind "bogus"`},
		{[]string{"flush", "--kind", "cache", "--algorithm", "gcra"}, "do not go with --kind cache"},
		{[]string{"flush", "--algorithm", "magic"}, "unknown algorithm"},
		{[]string{"flush", "--prefix", "[?]"}, "glob characters"},
		{[]string{"flush", "extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		var ran bool
		var code int
		var msg string
		if tt.args[0] == "inspect" {
			var o *commands.InspectOptions
			o, code, msg = parseWith(t, newInspectCmd, tt.args...)
			ran = o != nil
		} else {
			var o *commands.FlushOptions
			o, code, msg = parseWith(t, newFlushCmd, tt.args...)
			ran = o != nil
		}
		if ran || code != commands.ExitUsage || !strings.Contains(msg, tt.want) {
			t.Errorf("%q: ran %v, exit %d, %q; want exit 2 saying %q", tt.args, ran, code, msg, tt.want)
		}
		// Through the real root, too: the message and the status reach the process.
		if code, _, errOut := run(t, tt.args...); code != commands.ExitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("ratelab %q: exit %d, %q; want exit 2 saying %q", tt.args, code, errOut, tt.want)
		}
	}
}

// testSecret is an API-key secret for tests.
const testSecret = "0123456789abcdef-test"

// testHasher hashes API keys with testSecret, as serve would.
func testHasher(t *testing.T) *algorithms.APIKeyHasher {
	t.Helper()
	h, err := algorithms.NewAPIKeyHasher([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return h
}
