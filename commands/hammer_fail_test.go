package commands

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

func TestHammerRedisDiesMidRun(t *testing.T) {
	b := redistest.Standalone(t)
	opts := boundaryOptions(b.URL(), 10, algorithms.FixedWindow)
	opts.Pattern, opts.RPS, opts.Duration = scenario.PatternSteady, 200, 1500*time.Millisecond
	// Stop Redis once the run is sending (not on the pacer's thread: stopping takes a while).
	sending := make(chan struct{})
	opts.hooks = &hammerHooks{firstSend: func(string) { close(sending) }}
	go func() {
		<-sending
		b.Server.Stop()
	}()
	done := make(chan struct{})
	var h *report.Hammer
	var err error
	go func() {
		defer close(done)
		h, err = hammerJSON(t, context.Background(), opts)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("hammer hung after Redis went away")
	}
	if err != nil {
		t.Fatalf("a Redis outage mid-run should be reported, not fail the run: %v", err)
	}
	a := h.Algorithms[0]
	if a.FailOpen+a.Errors == 0 {
		t.Errorf("Redis stopped mid-run, yet no fail-open checks or errors: %+v", a)
	}
	if a.Sent != 300 {
		t.Errorf("sent %d of 300", a.Sent)
	}
}

func TestHammerCancelStillReports(t *testing.T) {
	opts := boundaryOptions("", 10, algorithms.TokenBucket, algorithms.GCRA)
	opts.Pattern, opts.RPS, opts.Duration = scenario.PatternSteady, 100, time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel once the first request is out, however long warming up and the wait for a
	// window edge take on this machine.
	opts.hooks = &hammerHooks{firstSend: func(string) { cancel() }}
	h, err := hammerJSON(t, ctx, opts)
	if ExitCode(err) != ExitInterrupted {
		t.Fatalf("after Ctrl-C: exit %d (%v), want %d", ExitCode(err), err, ExitInterrupted)
	}
	if !h.Interrupted || len(h.Algorithms) != 1 || h.Algorithms[0].Sent == 0 || !h.Algorithms[0].Interrupted {
		t.Fatalf("after Ctrl-C: interrupted %v, %d runs, %+v", h.Interrupted, len(h.Algorithms), h.Algorithms)
	}
	if h.InterruptedAt == nil || h.LastSendAt == nil || h.StopLatencyUs == nil || h.InterruptSignal != "cancelled" {
		t.Fatalf("the interrupt's timing is missing: at %v, last send %v, stop %v, signal %q",
			h.InterruptedAt, h.LastSendAt, h.StopLatencyUs, h.InterruptSignal)
	}
}

func TestHammerInterruptNamesTheSignal(t *testing.T) {
	opts := boundaryOptions("", 10, algorithms.GCRA)
	opts.Pattern, opts.RPS, opts.Duration = scenario.PatternSteady, 100, time.Hour
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	var at time.Time
	opts.hooks = &hammerHooks{firstSend: func(string) {
		at = time.Now()
		cancel(&Interrupt{Signal: syscall.SIGTERM, At: at})
	}}
	h, err := hammerJSON(t, ctx, opts)
	if ExitCode(err) != ExitInterrupted || !strings.Contains(err.Error(), "SIGTERM") {
		t.Fatalf("exit %d (%v), want %d naming SIGTERM", ExitCode(err), err, ExitInterrupted)
	}
	if h.InterruptSignal != "SIGTERM" || h.InterruptedAt == nil || !h.InterruptedAt.Equal(at) {
		t.Fatalf("signal %q at %v; want SIGTERM at %v", h.InterruptSignal, h.InterruptedAt, at)
	}
}

func TestHammerOutFileIsWrittenAtomically(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.md")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := boundaryOptions("", 10, algorithms.GCRA)
	opts.Pattern, opts.Duration, opts.Output, opts.OutFile = scenario.PatternSteady, 300*time.Millisecond, "markdown", path
	var out, errOut bytes.Buffer
	if err := Hammer(context.Background(), opts, IO{Out: &out, ErrOut: &errOut}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(got), "# ratelab hammer") || !strings.Contains(string(got), "| gcra") {
		t.Fatalf("report file: %v\n%s", err, got)
	}
	// The file has --output's format; the terminal still gets the table.
	if !strings.HasPrefix(out.String(), "ratelab hammer\n") || !strings.Contains(errOut.String(), path) {
		t.Errorf("with --out, stdout %q, stderr %q", out.String(), errOut.String())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestHammerOutFileIsCheckedBeforeTheRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, path, want string
	}{
		{"a missing directory", filepath.Join(dir, "missing", "r.json"), "does not exist"},
		{"a directory", dir, "is a directory"},
		{"under a file", filepath.Join(dir, "file", "r.json"), "does not exist"},
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := boundaryOptions("", 10, algorithms.GCRA)
			opts.OutFile = tt.path
			opts.hooks = &hammerHooks{firstSend: func(string) { t.Error("a request was sent before --out was checked") }}
			var out bytes.Buffer
			err := Hammer(context.Background(), opts, IO{Out: &out, ErrOut: &bytes.Buffer{}})
			if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--out") {
				t.Fatalf("exit %d (%v); want a usage error saying %q", ExitCode(err), err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("a report was written: %q", out.String())
			}
		})
	}
}

func TestHammerDeadTargetMissesThresholds(t *testing.T) {
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()
	opts := boundaryOptions("", 10, algorithms.SlidingLog)
	opts.Targets = []string{deadURL}
	opts.Pattern, opts.Duration = scenario.PatternSteady, 300*time.Millisecond
	opts.MaxCheckP99, opts.MaxBurstRatio, opts.MaxErrorRatio = time.Millisecond, 1, ptr(0.01)
	h, err := hammerJSON(t, context.Background(), opts)
	if ExitCode(err) != ExitThreshold {
		t.Fatalf("a dead target: exit %d (%v), want %d", ExitCode(err), err, ExitThreshold)
	}
	for _, want := range []string{"--max-check-p99: sliding-log has no data (no limiter check was timed)",
		"--max-burst-ratio: sliding-log has no data", "--max-error-ratio: sliding-log 1,"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	a := h.Algorithms[0]
	if a.Sent == 0 || a.ErrorRatio != 1 || len(a.ErrorSet) != 1 || a.ErrorSet[0].Kind != "connection refused" ||
		a.ErrorSet[0].Count != a.Sent || a.ErrorSet[0].Example == "" || len(a.StatusCodes) != 0 {
		t.Errorf("sent %d, error ratio %v, error set %+v, codes %v; want every request refused", a.Sent, a.ErrorRatio, a.ErrorSet, a.StatusCodes)
	}
	if h.ErrorRatio != 1 || h.Errors != a.Sent {
		t.Errorf("run: errors %d, ratio %v", h.Errors, h.ErrorRatio)
	}
}

func ptr[T any](v T) *T { return &v }

func TestHammerRequireValid(t *testing.T) {
	// One connection and a backend that takes 50ms, at 20 rps from two clients sending
	// in bursts: the pool runs out and sends go out late.
	opts := boundaryOptions("", 10, algorithms.SlidingLog)
	opts.Workers, opts.BackendDelay = 1, 50*time.Millisecond
	h, err := hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatalf("without --require-valid an invalid run is reported, not failed: %v", err)
	}
	if h.Valid || len(h.InvalidReasons) == 0 || h.PoolFull == 0 {
		t.Fatalf("valid %v, reasons %q, pool full %d; want an invalid run", h.Valid, h.InvalidReasons, h.PoolFull)
	}
	opts.RequireValid = true
	h, err = hammerJSON(t, context.Background(), opts)
	if ExitCode(err) != ExitThreshold || !strings.Contains(err.Error(), "not valid") || !strings.Contains(err.Error(), "raise --workers") {
		t.Fatalf("--require-valid: exit %d (%v), want %d saying why", ExitCode(err), err, ExitThreshold)
	}
	if h == nil || h.Valid {
		t.Fatalf("the report was not written, or says valid")
	}
}

func TestHammerRedisDiesBetweenAlgorithms(t *testing.T) {
	b := redistest.Standalone(t)
	opts := boundaryOptions(b.URL(), 10, algorithms.FixedWindow, algorithms.SlidingLog)
	opts.Pattern, opts.Duration = scenario.PatternSteady, 300*time.Millisecond
	opts.hooks = &hammerHooks{afterRun: func(name string) {
		if name == algorithms.FixedWindow {
			b.Server.Stop()
		}
	}}
	h, err := hammerJSON(t, context.Background(), opts)
	if ExitCode(err) != ExitFailure || !strings.Contains(err.Error(), "sliding-log") {
		t.Fatalf("exit %d (%v); want %d naming the algorithm that failed", ExitCode(err), err, ExitFailure)
	}
	if h == nil || len(h.Algorithms) != 1 || h.Algorithms[0].Name != algorithms.FixedWindow || h.Algorithms[0].Sent != 6 {
		t.Fatalf("the finished fixed-window run is not in the report: %+v", h)
	}
	if h.Failed == nil || h.Failed.Algorithm != algorithms.SlidingLog || h.Failed.Error == "" {
		t.Fatalf("the failure is not in the report: %+v", h.Failed)
	}
}
