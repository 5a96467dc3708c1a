package cmd

import (
	"context"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/commands"
)

// run runs ratelab with args and returns its exit status, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ios, _, out, errOut := commands.TestIO()
	code := Run(context.Background(), ios, args)
	return code, out.String(), errOut.String()
}

func TestRootExitCodes(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string // in stdout
		wantErr  string // in stderr
	}{
		{[]string{"--version"}, commands.ExitOK, "ratelab version", ""},
		{[]string{"--help"}, commands.ExitOK, "EXIT STATUS", ""},
		{[]string{"--bogus"}, commands.ExitUsage, "", "unknown flag: --bogus"},
		{[]string{"nosuchcommand"}, commands.ExitUsage, "", `unknown command "nosuchcommand"`},
		{[]string{"--prefix", "", "completion", "bash"}, commands.ExitUsage, "", "--prefix: invalid prefix: the prefix is empty"},
		{[]string{"--prefix", "*", "completion", "bash"}, commands.ExitUsage, "", "made of glob characters"},
		{[]string{"completion", "bash"}, commands.ExitOK, "bash completion", ""},
	}
	for _, tt := range tests {
		code, out, errOut := run(t, tt.args...)
		if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
			t.Errorf("ratelab %q: exit %d, stdout %.80q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				tt.args, code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
		}
		if strings.Contains(errOut, "panic") || strings.Contains(errOut, "goroutine ") {
			t.Errorf("ratelab %q printed a stack trace: %s", tt.args, errOut)
		}
	}
}

func TestRedisURLFromEnvironment(t *testing.T) {
	t.Setenv("RATELAB_REDIS_URL", "redis://127.0.0.1:6390")
	ios, _, _, _ := commands.TestIO()
	root := NewRoot(ios)
	if got := root.PersistentFlags().Lookup("redis").DefValue; got != "redis://127.0.0.1:6390" {
		t.Fatalf("--redis defaults to %q, want the environment's URL", got)
	}
}
