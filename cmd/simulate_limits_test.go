package cmd

import (
	"testing"

	"github.com/ratelab/ratelab/commands"
)

// TestSimulateLimitsFlags: --limits goes with a trace or hammer's traffic flags, and
// is refused (exit 2) beside the flags the file replaces.
func TestSimulateLimitsFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--limits", "p.yaml"},
		{"--limits", "p.yaml", "--trace", "x.log", "--client", "xff"},
		{"--limits", "p.yaml", "--pattern", "steady", "--ips", "10", "--rps", "100", "--duration", "2s", "--seed", "3", "-o", "json"},
	} {
		o, code := parseSimulate(t, args...)
		if code != commands.ExitOK || o == nil || o.LimitsFile != "p.yaml" {
			t.Errorf("%q: exit %d", args, code)
		}
	}
	for _, extra := range [][]string{
		{"--algorithms", "gcra"}, {"--limit", "5"}, {"--window", "1m"}, {"--burst", "3"}, {"--sweep", "s.txt"},
		{"--nodes", "3"}, {"--store", "local"}, {"--balancer", "hash"}, {"--follow", "a"}, {"--top", "3"},
		{"--ipv6-prefix", "48"}, {"--client", "key"},
	} {
		o, code := parseSimulate(t, append([]string{"--limits", "p.yaml", "--trace", "x.log"}, extra...)...)
		if code != commands.ExitUsage || o != nil {
			t.Errorf("--limits with %q: exit %d, ran %v", extra, code, o != nil)
		}
	}
}
