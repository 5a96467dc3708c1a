package cmd

import (
	"context"
	"runtime/debug"
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

func TestHelpNeverShowsThePassword(t *testing.T) {
	t.Setenv("RATELAB_REDIS_URL", "redis://u:s3cret@127.0.0.1:6390")
	for _, args := range [][]string{{"--help"}, {"hammer", "--help"}, {"serve", "--help"}, {"inspect", "--help"}, {"flush", "--help"}, {"compare", "--help"}} {
		code, out, errOut := run(t, args...)
		if code != commands.ExitOK || strings.Contains(out+errOut, "s3cret") || !strings.Contains(out, "redis://u:xxxxx@127.0.0.1:6390") {
			t.Errorf("ratelab %q: exit %d; the help shows the password, or not the redacted URL:\n%s", args, code, out)
		}
	}
}

func TestVersionOf(t *testing.T) {
	t.Parallel()
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "7253cda6902439879d2e5ea3929f97d670f79a16"
	tests := []struct {
		name    string
		version string
		set     []debug.BuildSetting
		want    string
	}{
		{"a tagged release", "v1.2.0", vcs(rev, "false"), "v1.2.0"},
		{"a pseudo-version", "v0.0.0-20261201083434-7253cda69024", vcs(rev, "false"), "7253cda69024"},
		{"a dirty tree", "v0.0.0-20261201083434-7253cda69024+dirty", vcs(rev, "true"), "7253cda69024-dirty"},
		{"devel with VCS", "(devel)", vcs(rev, "false"), "7253cda69024"},
		{"no VCS", "(devel)", nil, "(devel)"},
		{"a module download", "v1.3.0", nil, "v1.3.0"},
	}
	for _, tt := range tests {
		info := &debug.BuildInfo{Main: debug.Module{Path: "github.com/ratelab/ratelab", Version: tt.version}, Settings: tt.set}
		if got := versionOf(info); got != tt.want {
			t.Errorf("%s: versionOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}
