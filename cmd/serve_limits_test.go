package cmd

import (
	"strings"
	"testing"

	"github.com/ratelab/ratelab/commands"
)

// TestServeLimitsFlag: --limits is taken, and the flags it replaces are refused beside it.
func TestServeLimitsFlag(t *testing.T) {
	o, called, err := parseServe(t, "--limits", "limits.yaml")
	if err != nil || !called || o.LimitsFile != "limits.yaml" {
		t.Fatalf("--limits: %+v, %v, %v", o.LimitsFile, called, err)
	}
	for _, args := range [][]string{
		{"--limits", "f.yaml", "--limit", "5"},
		{"--limits", "f.yaml", "--rule", "write=1/1s"},
		{"--limits", "f.yaml", "--key-by", "api-key"},
		{"--limits", "f.yaml", "--algorithm", "gcra"},
	} {
		_, called, err := parseServe(t, args...)
		if called || commands.ExitCode(err) != commands.ExitUsage || !strings.Contains(err.Error(), "--limits and --") {
			t.Errorf("%q: %v (ran %v); want a usage error naming both flags", args, err, called)
		}
	}
	if _, called, err := parseServe(t, "--limits", "f.yaml", "--store", "local"); called || commands.ExitCode(err) != commands.ExitUsage {
		t.Errorf("--limits with --store local: %v (ran %v); want a usage error", err, called)
	}
}
