package commands

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/trace"
)

// replayTrace writes a small trace (seconds since the epoch, from a second's edge): a
// client bursting 20 requests in 0.2 s three times, 2 s apart; an IPv6 client every
// 0.3 s; a quiet one.
func replayTrace(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("time,client,route\n")
	const base = 1795510800.0
	var lines []string
	for burst := range 3 {
		for k := range 20 {
			lines = append(lines, fmt.Sprintf("%.3f,10.1.0.1,/products/%d", base+0.2+2*float64(burst)+0.01*float64(k), k+1))
		}
	}
	for ts := 0.05; ts < 5; ts += 0.3 {
		lines = append(lines, fmt.Sprintf("%.3f,2001:db8::5,/products/1", base+ts))
	}
	for _, ts := range []float64{1.5, 2.7, 4.1} {
		lines = append(lines, fmt.Sprintf("%.3f,198.51.100.9,/", base+ts))
	}
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	path := filepath.Join(t.TempDir(), "replay.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHammerTraceAgreesWithSimulate replays a trace in real time, twice as fast (so a
// 500 ms window is the trace's 1 s), against in-process nodes on the embedded Redis,
// and checks that the sliding log and the fixed window admit what simulate predicts
// for 10/1s. The trace's bursts end 0.3 s (real time) before the next window edge and
// are 1 s apart, so sends up to that late cannot change a decision; a run whose sends
// were later than that (a machine stalled for longer) has its difference logged, as
// the lateness explains it, not asserted.
func TestHammerTraceAgreesWithSimulate(t *testing.T) {
	path := replayTrace(t)
	algs := []string{algorithms.SlidingLog, algorithms.FixedWindow}
	opts := HammerOptions{
		Global: Global{Prefix: "ratelabtrace"},
		IPs:    DefaultHammerIPs, RPS: DefaultHammerRPS, Duration: DefaultHammerDuration, Seed: 1, Pattern: "mixed",
		Algorithms: algs, Policy: algorithms.Policy{Limit: 10, Window: 500 * time.Millisecond},
		Nodes: 1, Store: productapi.StoreRedis, Products: 10, Workers: 16, Output: "json", CheckTimeout: 5 * time.Second,
		Trace: path, Speed: 2,
	}
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	h, err := hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if h.Pattern != PatternTrace || h.IPs != 3 || h.Sent != 2*(60+17+3) {
		t.Fatalf("report: pattern %s, %d identities, %d sent", h.Pattern, h.IPs, h.Sent)
	}
	sim := simulateOptions()
	sim.Trace, sim.Limits, sim.Windows, sim.Algorithms = path, []int64{10}, []time.Duration{time.Second}, algs
	s, _ := runSimulate(t, sim)
	const margin = 250 * time.Millisecond
	for i, name := range algs {
		got, want := byName(t, h, name), s.Algorithms[i]
		if got.Errors != 0 || got.Sent != 80 {
			t.Errorf("%s: %d sent, %d errors", name, got.Sent, got.Errors)
		}
		lag := time.Duration(got.SendLagUs.Max) * time.Microsecond
		t.Logf("%s: hammer --trace admitted %d, simulate %d; sends at most %s late", name, got.Allowed, want.Allowed, lag)
		switch {
		case lag >= margin:
			t.Logf("%s: sends up to %s late (more than the trace's margin): hammer --trace admitted %d, simulate %d", name, lag, got.Allowed, want.Allowed)
		case got.Allowed != want.Allowed:
			t.Errorf("%s: hammer --trace admitted %d (sends at most %s late), simulate %d", name, got.Allowed, lag, want.Allowed)
		}
	}
	if want := int64(3*10 + 17 + 3); s.Algorithms[0].Allowed != want {
		t.Errorf("simulate's sliding log admitted %d, want %d", s.Algorithms[0].Allowed, want)
	}
}

func TestHammerTraceBadInput(t *testing.T) {
	t.Parallel()
	base := HammerOptions{IPs: 1, RPS: 1, Duration: time.Second, Pattern: "mixed", Algorithms: []string{"gcra"},
		Policy: algorithms.Policy{Limit: 1, Window: time.Second}, Nodes: 1, Store: "redis", Products: 1, Output: report.FormatTable}
	for _, bad := range []func(*HammerOptions){
		func(o *HammerOptions) { o.Speed = 2 },
		func(o *HammerOptions) { o.Trace, o.Speed = "x.log", -1 },
		func(o *HammerOptions) { o.Trace, o.TraceOptions.Client = "x.log", trace.ClientKey },
		func(o *HammerOptions) { o.Trace, o.Identity = "x.log", "source" },
	} {
		o := base
		bad(&o)
		if err := o.Validate(); ExitCode(err) != ExitUsage {
			t.Errorf("%+v: %v", o, err)
		}
	}
	names := filepath.Join(t.TempDir(), "names.csv")
	if err := os.WriteFile(names, []byte("time,client\n1795510800,user-42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ trace, want string }{
		{filepath.Join(t.TempDir(), "none.csv"), "no such file"},
		{names, "not an address"},
	} {
		o := base
		o.Trace = tc.trace
		if _, _, err := o.traffic(0, nil); ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.trace, err)
		}
	}
}
