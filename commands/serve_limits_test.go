package commands_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/wire"
)

// TestServeLimitsFile: serve --limits decides by the file's rules and tiers, a reload
// puts a new file in force, an invalid one is logged and refused, and /metrics shows
// the file in force and the reloads.
func TestServeLimitsFile(t *testing.T) {
	b := redistest.All(t)[0]
	dir := t.TempDir()
	path := filepath.Join(dir, "limits.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`tiers: {header: X-API-Key, keys: {key-pro-1: pro}, default: free}
rules:
  - match: {method: GET, route: "/products/{id}", tier: free}
    limits:
      - {name: per-minute, algorithm: sliding-log, limit: 2, window: 1m}
      - {name: per-hour, algorithm: sliding-log, limit: 20, window: 1h}
  - match: {method: GET, route: "/products/{id}", tier: pro}
    limits: unlimited
`)
	opts := serveOpts(t, b.URL())
	opts.Prefix = "servelimits"
	opts.BackendDelay = 0
	opts.LimitsFile = path
	reload := make(chan struct{})
	reloaded := make(chan error)
	opts.Reload, opts.Reloaded = reload, func(err error) { reloaded <- err }
	url, logs, _ := startServe(t, opts)

	fetch := func(key string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", url+"/products/4", nil)
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		return res
	}
	codes := []int{fetch("").StatusCode, fetch("").StatusCode, fetch("").StatusCode}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("free: %v, want 200 200 429", codes)
	}
	res := fetch("")
	if got := res.Header.Get(wire.HeaderRateLimitPolicy); !strings.Contains(got, `"per-minute";q=2;w=60`) || !strings.Contains(got, `"per-hour";q=20;w=3600`) {
		t.Fatalf("RateLimit-Policy %q", got)
	}
	if got := res.Header.Get(wire.HeaderRateLimit); !strings.HasPrefix(got, `"per-minute";r=0;`) {
		t.Fatalf("RateLimit %q; want the per-minute limit, the one that denies", got)
	}
	for range 5 {
		if c := fetch("key-pro-1").StatusCode; c != 200 {
			t.Fatalf("pro: %d", c)
		}
	}

	// An invalid file is refused and logged; the old one stays.
	write("rules:\n  - limits: [{name: x, algorithm: gcra, limit: 0, window: 1s}]\n")
	reload <- struct{}{}
	if err := <-reloaded; err == nil {
		t.Fatal("the invalid file was accepted")
	}
	if !strings.Contains(logs.String(), "policy file refused") || !strings.Contains(logs.String(), "limit is 0") {
		t.Fatalf("the refusal is not logged with its reason:\n%s", logs)
	}
	if c := fetch("").StatusCode; c != 429 {
		t.Fatalf("after a refused reload: %d; want the old file's 429", c)
	}
	// A valid file is in force from the next request.
	write("rules:\n  - match: {method: GET}\n    limits: [{name: roomy, algorithm: gcra, limit: 100, window: 1s}]\n")
	reload <- struct{}{}
	if err := <-reloaded; err != nil {
		t.Fatal(err)
	}
	res = fetch("")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get(wire.HeaderRateLimitPolicy), `"roomy";q=100;w=1`) {
		t.Fatalf("after the reload: %d %q", res.StatusCode, res.Header.Get(wire.HeaderRateLimitPolicy))
	}
	m, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	_ = m.Body.Close()
	for _, want := range []string{`ratelab_policy_reloads_total{result="ok"} 1`, `ratelab_policy_reloads_total{result="refused"} 1`, `ratelab_policy_file_info{sha256="`,
		`ratelab_policy_requests_total{decision="denied",limit="per-minute",rule="GET/products/id@free",tier="free"} 3`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestServeLimitsInvalidAtStart: an invalid file stops serve before it listens, with
// each problem at its line and exit 2.
func TestServeLimitsInvalidAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("identity: cookie\nrules:\n  - limits: unlimited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := serveOpts(t, "")
	opts.LimitsFile = path
	var errOut strings.Builder
	err := runServe(t, opts, &errOut)
	if commandsExit(err) != 2 || !strings.Contains(errOut.String(), path+":1: identity is \"cookie\"") {
		t.Fatalf("%v (exit %d)\n%s", err, commandsExit(err), errOut.String())
	}
}

func runServe(t *testing.T, opts commands.ServeOptions, errOut io.Writer) error {
	t.Helper()
	return commands.Serve(context.Background(), opts, commands.IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: errOut})
}

func commandsExit(err error) int { return commands.ExitCode(err) }
