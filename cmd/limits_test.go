package cmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ratelab/ratelab/commands"
)

// TestLimitsCheck: a good file is described (exit 0, in words and in JSON), a bad
// one gets each problem at its line and exit 2, and no key is ever shown.
func TestLimitsCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	keys := filepath.Join(dir, "keys.txt")
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(keys, "sk-secret-pro pro\n")
	write(good, `identity: api-key
tiers: {header: X-API-Key, keys_file: keys.txt, default: free}
rules:
  - match: {method: POST, route: /login}
    limits:
      - {name: per-minute, algorithm: sliding-log, limit: 5, window: 1m}
      - {name: per-hour, algorithm: sliding-log, limit: 20, window: 1h}
  - match: {tier: pro}
    limits: unlimited
`)
	write(bad, "rules:\n  - match: {method: GET}\n    limits:\n      - {name: s, algorithm: gcra, limit: 10, window: 1 sec}\n  - {limits: [], shadow: true}\n")

	code, out, errOut := run(t, "limits", "check", good)
	if code != commands.ExitOK {
		t.Fatalf("good file: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"is valid", "POST /login", "per-minute: sliding-log 5/1m", "per-hour: sliding-log 20/1h", "tier pro", "unlimited", "1 key"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "limits", "check", "--output", "json", good)
	var v struct {
		Rules []struct {
			Name   string `json:"name"`
			Limits []struct {
				Name string `json:"name"`
			} `json:"limits"`
		} `json:"rules"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v.Rules) != 2 || v.Rules[0].Limits[1].Name != "per-hour" {
		t.Fatalf("json: exit %d, %+v:\n%s", code, v, out)
	}
	for _, o := range []string{out} {
		if strings.Contains(o, "sk-secret") {
			t.Fatalf("a key is shown:\n%s", o)
		}
	}

	code, _, errOut = run(t, "limits", "check", bad)
	if code != commands.ExitUsage {
		t.Fatalf("bad file: exit %d, want %d", code, commands.ExitUsage)
	}
	for _, want := range []string{bad + ":4: rule 1 limit s: window \"1 sec\" is not a duration", bad + ":5: rule 2: limits must be a list", "2 problems above"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, args := range [][]string{{"limits", "check"}, {"limits", "check", good, good}, {"limits", "check", "-o", "xml", good}, {"limits", "check", filepath.Join(dir, "none.yaml")}} {
		if code, _, _ := run(t, args...); code != commands.ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, commands.ExitUsage)
		}
	}
}
