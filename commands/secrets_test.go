package commands_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/scenario"
)

// secret is the password of the Redis these tests run on; no output may show it.
const secret = "s3cret-pw"

// TestSecretsNeverPrinted runs commands that print a Redis URL against a Redis with a
// password, and looks for the password in what each wrote: reports, logs and errors.
// (The command line in hammer's report is redacted by cmd, and tested there; help
// defaults in cmd's TestHelpNeverShowsThePassword.)
func TestSecretsNeverPrinted(t *testing.T) {
	s := redistest.StartServer(t, "--requirepass", secret)
	url := "redis://:" + secret + "@" + s.Addr
	check := func(t *testing.T, what string, texts ...string) {
		t.Helper()
		for _, text := range texts {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows the password:\n%s", what, text)
			}
		}
	}

	t.Run("hammer report", func(t *testing.T) {
		for _, format := range []string{"json", "table", "markdown"} {
			ios, _, out, errOut := commands.TestIO()
			opts := commands.HammerOptions{
				Global: commands.Global{RedisURL: url, Prefix: "secrettest"},
				IPs:    2, RPS: 20, Duration: 300 * time.Millisecond, Seed: 1,
				Algorithms: []string{algorithms.GCRA}, Policy: algorithms.Policy{Limit: 5, Window: time.Second},
				Nodes: 1, Store: productapi.StoreRedis, Pattern: scenario.PatternSteady, Products: 5, Workers: 4,
				CheckTimeout: 5 * time.Second, Output: format,
			}
			err := commands.Hammer(context.Background(), opts, ios)
			if err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			if !strings.Contains(out.String(), "xxxxx@"+s.Addr) {
				t.Errorf("%s: the report does not name the backend, redacted:\n%s", format, out.String())
			}
			check(t, "hammer --output "+format, out.String(), errOut.String())
		}
	})

	t.Run("serve logs", func(t *testing.T) {
		opts := serveOpts(t, url)
		_, logs, stop := startServe(t, opts)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "xxxxx@"+s.Addr) {
			t.Errorf("the logs do not name the Redis, redacted:\n%s", logs)
		}
		check(t, "serve's logs", logs.String())
	})

	t.Run("a wrong password's error", func(t *testing.T) {
		ios, _, out, errOut := commands.TestIO()
		opts := commands.FlushOptions{Global: commands.Global{RedisURL: "redis://:wrong-" + secret + "@" + s.Addr, Prefix: "secrettest"}, DryRun: true}
		err := commands.Flush(context.Background(), opts, ios)
		if err == nil || !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("flush with a wrong password: %v; want authentication failed", err)
		}
		check(t, "the error", err.Error(), out.String(), errOut.String())
	})
}
