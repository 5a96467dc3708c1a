package cmd

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
)

// parseServe runs `ratelab serve args` with a stand-in for commands.Serve and
// returns the options it was given (ok false when it was not called) and the error.
func parseServe(t *testing.T, args ...string) (commands.ServeOptions, bool, error) {
	t.Helper()
	var got commands.ServeOptions
	called := false
	ios, _, _, _ := commands.TestIO()
	root := &cobra.Command{Use: "ratelab", SilenceErrors: true, SilenceUsage: true}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	root.SetOut(ios.Out)
	root.SetErr(ios.ErrOut)
	g := &commands.Global{Prefix: "ratelab"}
	root.AddCommand(newServeCmd(ios, g, func(_ context.Context, o commands.ServeOptions, _ commands.IO) error {
		got, called = o, true
		return nil
	}))
	root.SetArgs(append([]string{"serve"}, args...))
	err := root.ExecuteContext(context.Background())
	return got, called, err
}

func TestServeFlagsDefaults(t *testing.T) {
	t.Setenv(commands.EnvAPIKeySecret, "")
	o, called, err := parseServe(t)
	if err != nil || !called {
		t.Fatalf("serve with no flags: %v (called %v)", err, called)
	}
	want := commands.ServeOptions{
		Global: commands.Global{Prefix: "ratelab"},
		Addr:   "127.0.0.1:8080", BackendDelay: time.Second,
		CacheTTL: 5 * time.Minute, NegativeTTL: 5 * time.Second,
		Algorithm: algorithms.TokenBucket, Policy: algorithms.Policy{Limit: 10, Window: time.Second},
		Store: "redis", KeyBy: productapi.KeyByIP, OnRedisError: productapi.FailOpen,
		CheckTimeout: productapi.DefaultCheckTimeout, LogFormat: "text", LogLevel: "info", ShutdownTimeout: 10 * time.Second,
	}
	if o.Addr != want.Addr || o.BackendDelay != want.BackendDelay || o.CacheTTL != want.CacheTTL || o.LocalCacheTTL != 0 ||
		o.NegativeTTL != want.NegativeTTL || o.Algorithm != want.Algorithm || o.Policy != want.Policy || o.Store != want.Store ||
		o.KeyBy != want.KeyBy || o.OnRedisError != want.OnRedisError || o.CheckTimeout != want.CheckTimeout ||
		o.LogFormat != want.LogFormat || o.LogLevel != want.LogLevel || o.ShutdownTimeout != want.ShutdownTimeout ||
		len(o.Rules) != 0 || len(o.TrustedProxies) != 0 || o.Prefix != "ratelab" ||
		o.IPv6Prefix != algorithms.DefaultIPv6Prefix || o.APIKeySecret != "" {
		t.Errorf("defaults:\n got %+v\nwant %+v", o, want)
	}
}

func TestServeFlags(t *testing.T) {
	o, called, err := parseServe(t,
		"--addr", ":9090", "--backend-delay", "250ms", "--cache-ttl", "1m", "--local-cache-ttl", "2s", "--negative-ttl", "3s",
		"--algorithm", "gcra", "--limit", "100", "--window", "1m", "--burst", "20",
		"--rule", "write=5/1m", "--rule", "read=50/1s,algorithm=sliding-log",
		"--store", "local", "--key-by", "api-key", "--api-key-secret", "0123456789abcdef0123", "--ipv6-prefix", "56", "--trusted-proxies", "10.0.0.0/8,::1", "--trusted-proxies", "192.168.1.7",
		"--check-timeout", "20ms", "--on-redis-error", "local", "--local-share", "3", "--log-format", "json", "--log-level", "debug", "--shutdown-timeout", "3s")
	if err != nil || !called {
		t.Fatalf("serve: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"addr", o.Addr, ":9090"},
		{"backend delay", o.BackendDelay, 250 * time.Millisecond},
		{"cache ttl", o.CacheTTL, time.Minute},
		{"local ttl", o.LocalCacheTTL, 2 * time.Second},
		{"negative ttl", o.NegativeTTL, 3 * time.Second},
		{"algorithm", o.Algorithm, "gcra"},
		{"policy", o.Policy, algorithms.Policy{Limit: 100, Window: time.Minute, Burst: 20}},
		{"rules", len(o.Rules), 2},
		{"write rule", o.Rules[0], commands.RouteRule{Class: "write", Algorithm: "gcra", Policy: algorithms.Policy{Limit: 5, Window: time.Minute}}},
		{"read rule", o.Rules[1], commands.RouteRule{Class: "read", Algorithm: "sliding-log", Policy: algorithms.Policy{Limit: 50, Window: time.Second}}},
		{"store", o.Store, "local"},
		{"key by", o.KeyBy, productapi.KeyByAPIKey},
		{"api key secret", o.APIKeySecret, "0123456789abcdef0123"},
		{"ipv6 prefix", o.IPv6Prefix, 56},
		{"proxies", o.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("192.168.1.7/32")}},
		{"check timeout", o.CheckTimeout, 20 * time.Millisecond},
		{"on error", o.OnRedisError, productapi.FailLocal},
		{"local share", o.LocalShare, 3},
		{"log format", o.LogFormat, "json"},
		{"log level", o.LogLevel, "debug"},
		{"shutdown", o.ShutdownTimeout, 3 * time.Second},
	}
	for _, c := range checks {
		if g, w := fmtAny(c.got), fmtAny(c.want); g != w {
			t.Errorf("%s = %s; want %s", c.name, g, w)
		}
	}
}

func fmtAny(v any) string { return fmt.Sprintf("%v", v) }

func TestServeBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--limit", "-1"}, "limit is -1"},
		{[]string{"--limit", "0"}, "limit is 0"},
		{[]string{"--window", "0"}, "window is 0s"},
		{[]string{"--window", "-1s"}, "window is -1s"},
		{[]string{"--burst", "-3"}, "burst is -3"},
		{[]string{"--algorithm", "random-drop"}, `unknown algorithm "random-drop"`},
		{[]string{"--limit", "ten"}, `invalid argument "ten"`},
		{[]string{"--window", "soon"}, `invalid argument "soon"`},
		{[]string{"--store", "disk"}, `--store "disk"`},
		{[]string{"--key-by", "cookie"}, `--key-by "cookie"`},
		{[]string{"--on-redis-error", "maybe"}, `--on-redis-error "maybe"`},
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, "--trusted-proxies"},
		{[]string{"--trusted-proxies", "proxy.example"}, "neither a CIDR"},
		{[]string{"--rule", "admin=1/1s"}, `route class "admin"`},
		{[]string{"--rule", "write=0/1s"}, "limit is 0"},
		{[]string{"--rule", "write=1/1s", "--rule", "write=2/1s"}, `two rules for "write"`},
		{[]string{"--cache-ttl", "0"}, "--cache-ttl 0"},
		{[]string{"--check-timeout", "-5ms"}, "--check-timeout -5ms"},
		{[]string{"--backend-delay", "-1s"}, "--backend-delay -1s"},
		{[]string{"--addr", "nonsense"}, `--addr "nonsense"`},
		{[]string{"--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		_, called, err := parseServe(t, tt.args...)
		if called || commands.ExitCode(err) != commands.ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("serve %q: %v (exit %d, ran %v); want a usage error with %q, before running", tt.args, err, commands.ExitCode(err), called, tt.want)
		}
	}
}

// TestServeExitStatus: through the real root, bad flags exit 2 with a clear message,
// and the help has examples and the exit statuses.
func TestServeExitStatus(t *testing.T) {
	code, _, errOut := run(t, "serve", "--limit", "-1")
	if code != commands.ExitUsage || !strings.Contains(errOut, "limit is -1") || strings.Contains(errOut, "panic") {
		t.Errorf("serve --limit -1: exit %d, %q; want 2 and the reason", code, errOut)
	}
	code, out, _ := run(t, "serve", "--help")
	if code != commands.ExitOK || !strings.Contains(out, "EXIT STATUS") || !strings.Contains(out, "Examples:") {
		t.Errorf("serve --help: exit %d, %q", code, out)
	}
}
