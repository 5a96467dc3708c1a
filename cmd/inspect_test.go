package cmd

import (
	"strings"
	"testing"

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
