package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/report"
)

// buildRatelab builds the ratelab binary into a temporary directory.
func buildRatelab(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "ratelab")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ratelab/ratelab").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestHammerSIGINTStopsAtOnce interrupts a 1000 rps run, as Ctrl-C would, once its
// first request has reached Redis, and checks the process's own measure of the time
// from the signal to its last send.
func TestHammerSIGINTStopsAtOnce(t *testing.T) {
	bin := buildRatelab(t)
	b := redistest.Standalone(t)
	cmd := exec.Command(bin, "hammer", "--redis", b.URL(), "--prefix", "ratelabsig", "--rps", "1000",
		"--duration", "60s", "--algorithms", "fixed-window", "--output", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// The run is sending once limiter keys of its identities (10.x.y.z; the warm-up's
	// is 192.0.2.1) are in Redis: wait for half of the 50 to be well under way.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		keys, _, err := b.Client.Scan(ctx, 0, "ratelabsig:rl:*{10.*", 1000).Result()
		if err == nil && len(keys) >= 25 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("hammer exited before sending: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no request reached Redis: %v\n%s", ctx.Err(), stderr.String())
		case <-time.After(time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-ctx.Done():
		t.Fatalf("hammer did not exit after SIGINT\n%s", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != commands.ExitInterrupted {
		t.Fatalf("after SIGINT: %v, want exit %d\n%s", err, commands.ExitInterrupted, stderr.String())
	}
	var h report.Hammer
	if err := json.Unmarshal(stdout.Bytes(), &h); err != nil {
		t.Fatalf("the report is not JSON: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !h.Interrupted || h.InterruptSignal != "SIGINT" || h.StopLatencyUs == nil || h.Sent == 0 || h.Sent >= 60_000 {
		t.Fatalf("report: interrupted %v by %q, stop latency %v, sent %d", h.Interrupted, h.InterruptSignal, h.StopLatencyUs, h.Sent)
	}
	t.Logf("sent %d; SIGINT at %s, last send at %s: stopped %dµs after the signal",
		h.Sent, h.InterruptedAt.Format(time.RFC3339Nano), h.LastSendAt.Format(time.RFC3339Nano), *h.StopLatencyUs)
	if *h.StopLatencyUs > 50_000 {
		t.Fatalf("the pacer sent for %dµs after SIGINT; want at most 50ms", *h.StopLatencyUs)
	}
}
