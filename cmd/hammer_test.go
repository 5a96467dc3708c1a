package cmd

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/scenario"
)

// parseHammer runs `hammer args` with a stand-in for commands.Hammer and returns the
// options it was given (nil when it was not called) and the exit status.
func parseHammer(t *testing.T, args ...string) (*commands.HammerOptions, int) {
	t.Helper()
	var got *commands.HammerOptions
	ios, _, _, _ := commands.TestIO()
	g := &commands.Global{Prefix: "ratelab"}
	cmd := newHammerCmd(ios, g, func(_ context.Context, o commands.HammerOptions, _ commands.IO) error {
		got = &o
		return nil
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	cmd.SetArgs(args)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	err := cmd.ExecuteContext(context.Background())
	return got, commands.ExitCode(err)
}

func TestHammerFlagsDefaults(t *testing.T) {
	o, code := parseHammer(t)
	if code != commands.ExitOK || o == nil {
		t.Fatalf("exit %d", code)
	}
	want := commands.HammerOptions{
		Global: commands.Global{Prefix: "ratelab"}, IPs: 50, RPS: 1000, Duration: 3 * time.Second, Seed: 1,
		Algorithms: algorithms.Names(), Policy: algorithms.Policy{Limit: 10, Window: 500 * time.Millisecond},
		Nodes: 1, Store: "redis", Pattern: "mixed", Products: 100, Workers: 512,
		BackendDelay: 5 * time.Millisecond, CheckTimeout: 50 * time.Millisecond, Batch: true, DenyCache: true, Output: "table",
		OnRedisError: "open", Version: version(), CommandLine: []string{"hammer"},
	}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", *o, want)
	}
}

func TestHammerFlagsParse(t *testing.T) {
	o, code := parseHammer(t, "--ips", "7", "--rps", "250.5", "--duration", "2s", "--seed", "42",
		"--algorithms", "gcra,sliding-log", "--limit", "20", "--window", "1s", "--burst", "30", "--nodes", "3",
		"--store", "local", "--pattern", "poisson", "--products", "9", "--target", "http://127.0.0.1:8080,http://[::1]:8081",
		"--workers", "64", "--backend-delay", "0s", "--check-timeout", "2s", "-o", "json", "--out", "r.json", "--max-burst-ratio", "1.1",
		"--max-check-p99", "1ms", "--min-hit-ratio", "0.9", "--min-achieved-rps", "240",
		"--max-error-ratio", "0", "--max-late-ratio", "0.05", "--max-fail-open", "0", "--require-valid")
	if code != commands.ExitOK || o == nil {
		t.Fatalf("exit %d", code)
	}
	cl := strings.Join(o.CommandLine, " ")
	for _, want := range []string{"hammer ", " --target=http://127.0.0.1:8080,http://[::1]:8081 ", " --max-error-ratio=0 ", " --require-valid=true"} {
		if !strings.Contains(cl+" ", want) {
			t.Errorf("command line %q lacks %q", cl, want)
		}
	}
	want := commands.HammerOptions{
		Global: commands.Global{Prefix: "ratelab"}, IPs: 7, RPS: 250.5, Duration: 2 * time.Second, Seed: 42,
		Algorithms: []string{"gcra", "sliding-log"}, Policy: algorithms.Policy{Limit: 20, Window: time.Second, Burst: 30},
		Nodes: 3, Store: "local", Pattern: "poisson", Products: 9,
		Targets: []string{"http://127.0.0.1:8080", "http://[::1]:8081"}, Workers: 64, CheckTimeout: 2 * time.Second, Batch: true, DenyCache: true, Output: "json", OutFile: "r.json",
		MaxBurstRatio: 1.1, MaxCheckP99: time.Millisecond, MinHitRatio: 0.9, MinAchievedRPS: 240,
		MaxErrorRatio: ptr(0.0), MaxLateRatio: ptr(0.05), MaxFailOpen: ptr[int64](0), RequireValid: true,
		OnRedisError: "open", Version: version(), CommandLine: o.CommandLine,
	}
	if !reflect.DeepEqual(*o, want) {
		t.Fatalf("parsed:\n got %+v\nwant %+v", *o, want)
	}
}

// TestHammerEmptyAlgorithmsMeansAll: no --algorithms, or an empty one, is all six;
// the flag handling fills it, so Validate stays a pure check.
func TestHammerEmptyAlgorithmsMeansAll(t *testing.T) {
	for _, args := range [][]string{nil, {"--algorithms", ""}} {
		o, code := parseHammer(t, args...)
		if code != commands.ExitOK || o == nil || !reflect.DeepEqual(o.Algorithms, algorithms.Names()) {
			t.Errorf("hammer %q: exit %d, options %+v; want all six algorithms", args, code, o)
		}
	}
}

func TestHammerBadFlagsAreUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--ips", "0"}, "--ips 0"},
		{[]string{"--rps", "-5"}, "--rps -5"},
		{[]string{"--rps", "lots"}, "invalid argument"},
		{[]string{"--pattern", "spiky"}, `unknown pattern "spiky"`},
		{[]string{"--algorithms", "fixed-window,leaky-faucet"}, `unknown algorithm "leaky-faucet"`},
		{[]string{"--limit", "0"}, "limit is 0"},
		{[]string{"--window", "0s"}, "window is 0s"},
		{[]string{"--store", "disk"}, `--store "disk"`},
		{[]string{"--output", "yaml"}, `--output "yaml"`},
		{[]string{"--target", "http://example.com"}, "not a loopback address"},
		{[]string{"--max-error-ratio", "2"}, "--max-error-ratio 2"},
		{[]string{"--max-fail-open", "-1"}, "--max-fail-open -1"},
		{[]string{"extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		// Through the real root: bad usage never reaches the run.
		code, _, errOut := run(t, append([]string{"hammer"}, tt.args...)...)
		if code != commands.ExitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("ratelab hammer %q: exit %d, stderr %q; want exit 2 with %q", tt.args, code, errOut, tt.want)
		}
		if o, code := parseHammer(t, tt.args...); o != nil || code != commands.ExitUsage {
			t.Errorf("ratelab hammer %q: ran with %+v (exit %d)", tt.args, o, code)
		}
	}
}

func TestHammerHelp(t *testing.T) {
	code, out, _ := run(t, "hammer", "--help")
	for _, want := range []string{"Examples:", "ratelab hammer --ips 50 --rps 1000", "EXIT STATUS", "3  a threshold", "--max-burst-ratio",
		"130 interrupted", "--require-valid", "--max-error-ratio", "--max-late-ratio", "--max-fail-open"} {
		if code != commands.ExitOK || !strings.Contains(out, want) {
			t.Errorf("hammer --help (exit %d) lacks %q", code, want)
		}
	}
}

func TestHammerFlagsForAnyTarget(t *testing.T) {
	o, code := parseHammer(t, "--target", "http://127.0.0.1:3000", "--path", "/api/items/{product}",
		"-H", "Authorization: Bearer x", "--header", "X-Tenant: 7", "--identity", "source", "--deny-status", "429,403")
	if code != commands.ExitOK || o == nil {
		t.Fatalf("exit %d", code)
	}
	if o.Path != "/api/items/{product}" || !reflect.DeepEqual(o.Headers, []string{"Authorization: Bearer x", "X-Tenant: 7"}) ||
		o.Identity != scenario.IdentitySource || !reflect.DeepEqual(o.DenyStatus, []int{429, 403}) {
		t.Fatalf("parsed path %q, headers %q, identity %q, deny %v", o.Path, o.Headers, o.Identity, o.DenyStatus)
	}
	// A header value may hold commas: -H is not split.
	if o, _ := parseHammer(t, "--target", "http://127.0.0.1:3000", "-H", "Accept: a/b, c/d"); o == nil || len(o.Headers) != 1 {
		t.Fatalf("a header with a comma: %+v", o)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--target", "http://127.0.0.1:3000", "-H", "Bad Name: x"}, "not a valid token"},
		{[]string{"--target", "http://127.0.0.1:3000", "-H", "NoColon"}, "'Name: value'"},
		{[]string{"--target", "http://127.0.0.1:3000", "-H", "X-Forwarded-For: 1.2.3.4"}, "--identity source"},
		{[]string{"--target", "http://127.0.0.1:3000", "--path", "api/items"}, "must start with /"},
		{[]string{"--target", "http://127.0.0.1:3000", "--path", "/items/{id}"}, "unknown placeholder"},
		{[]string{"--target", "http://127.0.0.1:3000", "--deny-status", "200"}, "cannot mean denied"},
		{[]string{"--identity", "header"}, `identity "header"`},
		{[]string{"--path", "/api/{product}"}, "are for --target"},
	} {
		code, _, errOut := run(t, append([]string{"hammer"}, tt.args...)...)
		if code != commands.ExitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("ratelab hammer %q: exit %d, stderr %q; want exit 2 with %q", tt.args, code, errOut, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestHammerCommandLineIsRedacted(t *testing.T) {
	var got []string
	ios, _, _, _ := commands.TestIO()
	root := NewRoot(ios)
	for _, c := range root.Commands() {
		if c.Name() == "hammer" {
			root.RemoveCommand(c)
		}
	}
	g := &commands.Global{}
	root.AddCommand(newHammerCmd(ios, g, func(_ context.Context, o commands.HammerOptions, _ commands.IO) error {
		got = o.CommandLine
		return nil
	}))
	root.SetArgs([]string{"--redis", "redis://u:s3cret@127.0.0.1:1", "hammer", "--rps", "10"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if cl := strings.Join(got, " "); cl != "ratelab hammer --redis=redis://u:xxxxx@127.0.0.1:1 --rps=10" {
		t.Fatalf("command line %q", cl)
	}
}

func TestRedactValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://u:s3cret@h:1":                    "redis://u:xxxxx@h:1",
		"redis+cluster://u:s3cret@a:1,b:2":        "redis+cluster://u:xxxxx@a:1,b:2",
		"http://127.0.0.1:8080,http://[::1]:8081": "http://127.0.0.1:8080,http://[::1]:8081",
		"Authorization: Bearer s3cret":            "Authorization: xxxxx",
		"cookie: s=s3cret":                        "cookie: xxxxx",
		"X-Trace: 1":                              "X-Trace: 1",
		"1.5":                                     "1.5",
	} {
		if got := redactValue(in); got != want {
			t.Errorf("redactValue(%q) = %q, want %q", in, got, want)
		}
	}
}
