package cmd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/trace"
)

func parseSimulate(t *testing.T, args ...string) (*commands.SimulateOptions, int) {
	t.Helper()
	var got *commands.SimulateOptions
	ios, _, _, _ := commands.TestIO()
	cmd := newSimulateCmd(ios, &commands.Global{}, func(_ context.Context, o commands.SimulateOptions, _ commands.IO) error {
		got = &o
		return nil
	})
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return commands.UsageError(err) })
	cmd.SetArgs(args)
	cmd.SetOut(ios.Out)
	cmd.SetErr(ios.ErrOut)
	return got, commands.ExitCode(cmd.ExecuteContext(context.Background()))
}

// TestSimulateFlags: hammer's traffic flags with hammer's defaults, lists that sweep,
// and the trace's flags.
func TestSimulateFlags(t *testing.T) {
	o, code := parseSimulate(t)
	h, _ := parseHammer(t)
	if code != commands.ExitOK || o == nil {
		t.Fatalf("exit %d", code)
	}
	if o.Pattern != h.Pattern || o.IPs != h.IPs || o.RPS != h.RPS || o.Duration != h.Duration || o.Seed != h.Seed ||
		o.Products != h.Products || o.Limits[0] != h.Policy.Limit || o.Windows[0] != h.Policy.Window || len(o.Algorithms) != 6 {
		t.Errorf("defaults %+v differ from hammer's %+v", o, h)
	}
	o, code = parseSimulate(t, "--trace", "x.log", "--limit", "50,100,200", "--window", "1m,1h", "--burst", "0,300",
		"--fields", "time=ts,client=ip", "--client", "xff", "--from", "2026-11-24T09:00:00Z", "--nodes", "3", "--store", "local", "--balancer", "hash")
	if code != commands.ExitOK {
		t.Fatalf("exit %d", code)
	}
	if len(o.Policies()) != 12 || o.Policies()[11] != (algorithms.Policy{Limit: 200, Window: time.Hour, Burst: 300}) {
		t.Errorf("policies %v", o.Policies())
	}
	if o.TraceOptions.Fields.Time != "ts" || o.TraceOptions.Fields.Client != "ip" || o.TraceOptions.Client != trace.ClientXFF ||
		o.TraceOptions.From.IsZero() || o.Balancer != "hash" {
		t.Errorf("trace options %+v", o.TraceOptions)
	}
	if o, code := parseSimulate(t, "--output", "html", "--out", "sweep.html"); code != commands.ExitOK || o.Output != "html" || o.OutFile != "sweep.html" {
		t.Errorf("--output html --out sweep.html: exit %d, %+v", code, o)
	}
	for _, bad := range [][]string{
		{"--from", "yesterday"}, {"--fields", "when=ts"}, {"--limit", "0"}, {"--balancer", "random"},
		{"--ipv6-prefix", "12"}, {"--output", "yaml"}, {"extra"},
	} {
		if _, code := parseSimulate(t, bad...); code != commands.ExitUsage {
			t.Errorf("%q: exit %d, want %d", bad, code, commands.ExitUsage)
		}
	}
}

// TestSimulateEndToEnd generates a log, simulates it through ratelab's root command
// and reads the JSON report.
func TestSimulateEndToEnd(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "access.log")
	if code, _, errOut := run(t, "trace", "generate", "--lines", "5000", "--clients", "50", "--out", log); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errOut)
	}
	code, out, errOut := run(t, "simulate", "--trace", log, "--limit", "100", "--window", "1m", "--output", "json")
	if code != 0 {
		t.Fatalf("simulate: exit %d: %s", code, errOut)
	}
	var s struct {
		SchemaVersion int    `json:"schema_version"`
		Source        string `json:"source"`
		Requests      int64  `json:"requests"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.SchemaVersion != 1 || s.Source != "trace" || s.Requests < 4900 {
		t.Errorf("report %+v (%v)", s, err)
	}
	csv := filepath.Join(dir, "boundary.csv")
	if code, _, errOut := run(t, "trace", "export", "--pattern", "boundary", "--out", csv); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(csv); err != nil || !strings.HasPrefix(string(b), "time,client,method,route,key,tier\n2026-01-01T00:00:00") {
		t.Errorf("export wrote %.80q (%v)", b, err)
	}
	if code, _, errOut := run(t, "simulate", "--trace", filepath.Join(dir, "none.log")); code != commands.ExitUsage || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing file: exit %d, %s", code, errOut)
	}
	if code, _, _ := run(t, "trace", "export", "--format", "xml"); code != commands.ExitUsage {
		t.Errorf("export --format xml: exit %d", code)
	}
}

func TestHammerTraceFlags(t *testing.T) {
	o, code := parseHammer(t, "--trace", "access.log", "--speed", "60", "--client", "xff", "--window", "1s")
	if code != commands.ExitOK || o.Trace != "access.log" || o.Speed != 60 || o.TraceOptions.Client != trace.ClientXFF {
		t.Errorf("exit %d, options %+v", code, o)
	}
	if _, code := parseHammer(t, "--speed", "60"); code != commands.ExitUsage {
		t.Errorf("--speed without --trace: exit %d", code)
	}
}
