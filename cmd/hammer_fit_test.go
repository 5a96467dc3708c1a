package cmd

import (
	"testing"

	"github.com/ratelab/ratelab/commands"
)

func TestHammerWidthFlags(t *testing.T) {
	o, code := parseHammer(t, "--wide", "--width", "100")
	if code != commands.ExitOK || o == nil || !o.Wide || o.Width != 100 {
		t.Fatalf("exit %d, options %+v", code, o)
	}
	if _, code := parseHammer(t, "--width", "-1"); code != commands.ExitUsage {
		t.Errorf("--width -1: exit %d, want %d", code, commands.ExitUsage)
	}
}

func TestHammerOutputHTML(t *testing.T) {
	o, code := parseHammer(t, "--output", "html", "--out", "report.html")
	if code != commands.ExitOK || o == nil || o.Output != "html" || o.OutFile != "report.html" {
		t.Fatalf("exit %d, options %+v", code, o)
	}
}
