package commands

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// issueFile is the policy file of the issue, as written (internal/policy's fixture).
var issueFile = filepath.Join("..", "internal", "policy", "testdata", "issue.yaml")

// shadowFile adds a third tier and shadow limits to it (testdata/tiers-shadow.yaml).
var shadowFile = filepath.Join("testdata", "tiers-shadow.yaml")

// policyOptions is a steady run of a policy file: ips clients at perClient requests
// a second each for 1.5s.
func policyOptions(redisURL, file, mix string, ips int, perClient float64) HammerOptions {
	return HammerOptions{
		Global: Global{RedisURL: redisURL, Prefix: "ratelabtest"},
		IPs:    ips, RPS: perClient * float64(ips), Duration: 1500 * time.Millisecond, Seed: 7,
		Algorithms: []string{"gcra"}, Policy: algorithms.Policy{Limit: DefaultHammerLimit, Window: DefaultHammerWindow},
		Nodes: 2, Store: productapi.StoreRedis, Pattern: scenario.PatternSteady, Products: 5,
		Workers: 32, Output: "json", CheckTimeout: 10 * time.Second,
		LimitsFile: file, TierMix: mix,
	}
}

func tierOf(t *testing.T, h *report.Hammer, name string) report.Tier {
	t.Helper()
	for _, tr := range h.Tiers {
		if tr.Tier == name {
			return tr
		}
	}
	t.Fatalf("the report has no tier %q: %+v", name, h.Tiers)
	return report.Tier{}
}

func limitOf(t *testing.T, tr report.Tier, name string) report.TierLimit {
	t.Helper()
	for _, l := range tr.Limits {
		if l.Name == name {
			return l
		}
	}
	t.Fatalf("tier %s has no limit %q: %+v", tr.Tier, name, tr.Limits)
	return report.TierLimit{}
}

// TestHammerPolicyIssueFile: the issue's file as written, half the clients free and
// half pro, every client at the same 40 requests a second: the pro clients are
// admitted everything (100/1s burst 200), the free ones their burst of 20 and the
// refill, never more than the hour's 50, and each denial is named by its limit.
func TestHammerPolicyIssueFile(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			opts := policyOptions(b.URL(), issueFile, "free=50,pro=50", 4, 40)
			h, err := hammerJSON(t, context.Background(), opts)
			if err != nil {
				t.Fatalf("hammer: %v", err)
			}
			if h.SchemaVersion != 3 || h.PolicyFile == nil || h.PolicyFile.TierHeader != "X-Api-Key" || len(h.PolicyFile.SHA256) != 64 {
				t.Fatalf("schema %d, policy_file %+v", h.SchemaVersion, h.PolicyFile)
			}
			if len(h.Algorithms) != 1 || h.Algorithms[0].Name != policyRunName {
				t.Fatalf("want one run of the file, got %d: %+v", len(h.Algorithms), h.Algorithms)
			}
			free, pro := tierOf(t, h, "free"), tierOf(t, h, "pro")
			if free.Clients != 2 || pro.Clients != 2 || free.Rule != "GET/products/id@free" || pro.Rule != "GET/products/id@pro" {
				t.Fatalf("tiers: free %+v, pro %+v", free, pro)
			}
			if free.Requests+pro.Requests != h.Algorithms[0].Sent || free.Requests != pro.Requests {
				t.Fatalf("requests: free %d + pro %d, sent %d; the same rate per client gives each tier half",
					free.Requests, pro.Requests, h.Algorithms[0].Sent)
			}
			if pro.Denied != 0 || pro.Admitted != pro.Requests || limitOf(t, pro, "per-second").Admitted != pro.Requests {
				t.Errorf("pro: %+v; 60 requests a client under 100/1s burst 200 are all admitted", pro)
			}
			// At least the burst of 20 per free client, at most the hour's 50.
			if free.Admitted < 20*2 || free.Admitted > 50*2 || free.Denied == 0 {
				t.Errorf("free: admitted %d, denied %d of %d; want 40..100 admitted and some denied", free.Admitted, free.Denied, free.Requests)
			}
			if pro.Admitted <= free.Admitted {
				t.Errorf("pro admitted %d, free %d: at the same rate pro's limits must admit more", pro.Admitted, free.Admitted)
			}
			ps, ph := limitOf(t, free, "per-second"), limitOf(t, free, "per-hour")
			if ps.DeniedBy+ph.DeniedBy != free.Denied || free.DeniedUnnamed != 0 {
				t.Errorf("free denials %d, by per-second %d + per-hour %d (unnamed %d): each denial names its limit",
					free.Denied, ps.DeniedBy, ph.DeniedBy, free.DeniedUnnamed)
			}
			if ps.Requests != free.Requests || ph.Requests != free.Requests || ps.Algorithm != "token-bucket" || ph.Policy != "50/1h" {
				t.Errorf("free limits: %+v %+v", ps, ph)
			}
		})
	}
}

// TestHammerPolicyShadow: a shadow limit beside an enforced one (pro) and a rule
// that is shadow as a whole (internal) deny nothing; their would-be denials are
// counted exactly (a sliding log of 5 an hour admits exactly 5 per client), named by
// limit, and equal to what the nodes counted in ratelab_policy_shadow_denials_total;
// every denial the report names by limit is one the nodes counted for that limit.
func TestHammerPolicyShadow(t *testing.T) {
	for _, b := range redistest.All(t) {
		t.Run(b.Name, func(t *testing.T) {
			opts := policyOptions(b.URL(), shadowFile, "free=1,pro=1,internal=1", 6, 40)
			var mu sync.Mutex
			before, after := map[string]float64{}, map[string]float64{}
			opts.hooks = &hammerHooks{nodes: func(urls []string, ran bool) {
				mu.Lock()
				defer mu.Unlock()
				into := before
				if ran {
					into = after
				}
				for _, u := range urls {
					scrapePolicyMetrics(t, u, into)
				}
			}}
			h, err := hammerJSON(t, context.Background(), opts)
			if err != nil {
				t.Fatalf("hammer: %v", err)
			}
			node := func(key string) int64 { return int64(after[key] - before[key]) }

			pro, internal := tierOf(t, h, "pro"), tierOf(t, h, "internal")
			for _, tr := range []report.Tier{pro, internal} {
				if tr.Clients != 2 || tr.Denied != 0 || tr.Admitted != tr.Requests || tr.Requests == 0 {
					t.Errorf("%s: %+v; a shadow limit never denies", tr.Tier, tr)
				}
				if tr.ShadowChecked < 5*2 {
					t.Fatalf("%s: %d shadow checks; each client sends more than 5", tr.Tier, tr.ShadowChecked)
				}
			}
			cand, trial := limitOf(t, pro, "candidate"), limitOf(t, internal, "trial")
			for _, c := range []struct {
				tier report.Tier
				l    report.TierLimit
				rule string
			}{{pro, cand, "GET/products/id@pro"}, {internal, trial, "internal-trial"}} {
				if !c.l.Shadow || c.l.DeniedBy != 0 {
					t.Errorf("%s %s: %+v; a shadow limit denies nothing", c.tier.Tier, c.l.Name, c.l)
				}
				if want := c.tier.ShadowChecked - 5*2; c.l.ShadowDenied != want || c.tier.ShadowDenied != want {
					t.Errorf("%s %s: %d shadow denials (tier %d) of %d checked; want exactly %d (5 an hour per client admitted)",
						c.tier.Tier, c.l.Name, c.l.ShadowDenied, c.tier.ShadowDenied, c.tier.ShadowChecked, want)
				}
				if got := node("shadow|" + c.rule + "|" + c.tier.Tier + "|" + c.l.Name); got != c.l.ShadowDenied {
					t.Errorf("%s %s: the nodes counted %d shadow denials, the report %d", c.tier.Tier, c.l.Name, got, c.l.ShadowDenied)
				}
			}
			if internal.Rule != "internal-trial" || len(limitOf(t, internal, "trial").Algorithm) == 0 {
				t.Errorf("internal: %+v", internal)
			}
			free := tierOf(t, h, "free")
			for _, name := range []string{"per-second", "per-hour"} {
				l := limitOf(t, free, name)
				if got := node("denied|GET/products/id@free|free|" + name); got != l.DeniedBy {
					t.Errorf("free %s: the nodes denied %d by it, the report %d", name, got, l.DeniedBy)
				}
			}
			if free.Denied == 0 {
				t.Errorf("free: nothing denied under 10/1s burst 20 at 40 a second: %+v", free)
			}
		})
	}
}

var metricLine = regexp.MustCompile(`^(ratelab_policy_shadow_denials_total|ratelab_policy_requests_total)\{(.*)\} ([0-9.e+]+)$`)

// scrapePolicyMetrics adds a node's policy counters to into, keyed
// "shadow|rule|tier|limit" and "denied|rule|tier|limit".
func scrapePolicyMetrics(t *testing.T, base string, into map[string]float64) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Errorf("scrape %s: %v", base, err)
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[2], ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		key := "shadow"
		if m[1] == "ratelab_policy_requests_total" {
			if labels["decision"] != "denied" {
				continue
			}
			key = "denied"
		}
		into[key+"|"+labels["rule"]+"|"+labels["tier"]+"|"+labels["limit"]] += v
	}
}

// TestHammerPolicyClients: each client keeps one tier, chosen from the seed, and
// sends that tier's key (the default tier none); the mix's shares are exact.
func TestHammerPolicyClients(t *testing.T) {
	t.Parallel()
	ids, _ := scenario.Identities(100, 3)
	opts := HammerOptions{LimitsFile: shadowFile, TierMix: "free=90,pro=9,internal=1", Seed: 11}
	hp, err := loadHammerPolicy(opts, IO{ErrOut: &bytes.Buffer{}}, ids)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	keysSeen := map[string]map[string]bool{}
	for i := range ids {
		tier := hp.tiers[hp.tierOf[i]]
		counts[tier]++
		hs := hp.headers[i]
		if tier == "free" {
			if len(hs) != 0 {
				t.Errorf("client %d of the default tier sends %+v; want no key", i, hs)
			}
			continue
		}
		if len(hs) != 1 || hs[0].Name != "X-Api-Key" || hp.file.Tiers.Of(hs[0].Value) != tier {
			t.Fatalf("client %d of tier %s sends %+v; want a key of its tier in X-Api-Key", i, tier, hs)
		}
		if keysSeen[tier] == nil {
			keysSeen[tier] = map[string]bool{}
		}
		keysSeen[tier][hs[0].Value] = true
	}
	if counts["free"] != 90 || counts["pro"] != 9 || counts["internal"] != 1 {
		t.Errorf("clients per tier %v; want exactly 90, 9, 1", counts)
	}
	if len(keysSeen["pro"]) != 2 {
		t.Errorf("the pro clients use keys %d of the file's 2", len(keysSeen["pro"]))
	}
	again, _ := loadHammerPolicy(opts, IO{ErrOut: &bytes.Buffer{}}, ids)
	if !slices.Equal(again.tierOf, hp.tierOf) {
		t.Error("the same seed gave the clients other tiers")
	}
	opts.Seed = 12
	other, _ := loadHammerPolicy(opts, IO{ErrOut: &bytes.Buffer{}}, ids)
	if slices.Equal(other.tierOf, hp.tierOf) {
		t.Error("another seed gave every client the same tier")
	}
}

// TestHammerPolicyHeaderIdentity: with identity header:NAME each client sends its
// own value in that header, beside its tier's key.
func TestHammerPolicyHeaderIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "limits.yaml")
	if err := os.WriteFile(file, []byte(`identity: header:X-Client-Id
tiers:
  header: X-API-Key
  keys:
    k1: pro
  default: free
rules:
  - match: {tier: pro}
    limits: unlimited
  - limits:
      - {name: s, algorithm: gcra, limit: 10, window: 1s}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, _ := scenario.Identities(4, 0)
	hp, err := loadHammerPolicy(HammerOptions{LimitsFile: file, TierMix: "free=1,pro=1", Seed: 1}, IO{ErrOut: &bytes.Buffer{}}, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, hs := range hp.headers {
		var id string
		for _, h := range hs {
			if h.Name == "X-Client-Id" {
				id = h.Value
			}
		}
		if id != ids[i] {
			t.Errorf("client %d sends %+v; want X-Client-Id %s", i, hs, ids[i])
		}
	}
	if ref, ok := hp.shortestLimit(); !ok || ref.Limit != 10 || ref.Window != time.Second {
		t.Errorf("the schedule's limit: %+v %v; want the free rule's 10/1s", ref, ok)
	}
}

func TestParseTierMix(t *testing.T) {
	t.Parallel()
	good, err := parseTierMix("free=90, pro=9,internal=0.5")
	if err != nil || len(good) != 3 || good[2].tier != "internal" || good[2].weight != 0.5 {
		t.Fatalf("parseTierMix: %+v, %v", good, err)
	}
	for in, want := range map[string]string{
		"free":             "name=weight",
		"free=x":           "must be a number",
		"free=-1":          "must be a number",
		"=3":               "name=weight",
		"free=1,free=2":    "listed twice",
		"free=0,pro=0":     "every weight is 0",
		"free=1,,pro=1":    "name=weight",
		"free=1e300,pro=1": "must be a number",
	} {
		if _, err := parseTierMix(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseTierMix(%q) = %v; want an error with %q", in, err, want)
		}
	}
}

// TestHammerPolicyUsage: a mix the file cannot give, a file that is not valid, and
// options that do not go with --limits are usage errors (exit 2) that say what to do.
func TestHammerPolicyUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("identity: ip\nrules:\n  - limits:\n      - {name: s, algorithm: nope, limit: 1, window: 1s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noTiers := filepath.Join(dir, "notiers.yaml")
	if err := os.WriteFile(noTiers, []byte("rules:\n  - limits: unlimited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*HammerOptions)
		want string
	}{
		{"tier not in file", func(o *HammerOptions) { o.TierMix = "free=90,pro=9,internal=1" }, `has no tier "internal"; its tiers are free, pro`},
		{"mix without tiers", func(o *HammerOptions) { o.LimitsFile, o.TierMix = noTiers, "free=1" }, "has no tiers"},
		{"invalid file", func(o *HammerOptions) { o.LimitsFile = bad }, "is not a valid policy file"},
		{"missing file", func(o *HammerOptions) { o.LimitsFile = filepath.Join(dir, "none.yaml") }, "none.yaml"},
		{"bad mix", func(o *HammerOptions) { o.TierMix = "free:90" }, "--tier-mix"},
		{"mix without file", func(o *HammerOptions) { o.LimitsFile, o.TierMix = "", "free=1" }, "--tier-mix needs --limits"},
		{"target", func(o *HammerOptions) { o.Targets = []string{"http://127.0.0.1:1"} }, "--limits and --target"},
		{"local store", func(o *HammerOptions) { o.Store = productapi.StoreLocal }, "drop --store local"},
		{"burst ratio", func(o *HammerOptions) { o.MaxBurstRatio = 1.1 }, "--max-burst-ratio and --limits"},
	} {
		opts := policyOptions("", issueFile, "", 2, 10)
		c.edit(&opts)
		var errOut bytes.Buffer
		err := opts.Validate()
		if err == nil {
			err = Hammer(context.Background(), opts, IO{Out: &bytes.Buffer{}, ErrOut: &errOut})
		}
		if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: exit %d, %v; want exit %d with %q", c.name, ExitCode(err), err, ExitUsage, c.want)
		}
		if c.name == "invalid file" && !strings.Contains(errOut.String(), "bad.yaml:4") {
			t.Errorf("the file's problem is not shown with its line: %q", errOut.String())
		}
	}
}

// TestHammerPolicyReportJSON: the JSON of a policy run carries the fields
// docs/report-schema.md names for it.
func TestHammerPolicyReportJSON(t *testing.T) {
	b := redistest.Embedded(t)
	opts := policyOptions(b.URL(), shadowFile, "free=1,pro=1,internal=1", 3, 20)
	opts.Duration = 500 * time.Millisecond
	var out bytes.Buffer
	if err := Hammer(context.Background(), opts, IO{Out: &out, ErrOut: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	pf, _ := raw["policy_file"].(map[string]any)
	for _, k := range []string{"path", "sha256", "identity", "tier_header", "default_tier"} {
		if _, ok := pf[k]; !ok {
			t.Errorf("policy_file has no %q: %v", k, pf)
		}
	}
	tiers, _ := raw["tiers"].([]any)
	if len(tiers) != 3 {
		t.Fatalf("tiers: %v", raw["tiers"])
	}
	for _, tr := range tiers {
		m := tr.(map[string]any)
		for _, k := range []string{"tier", "share_percent", "clients", "rule", "requests", "admitted", "denied", "errors", "shadow_checked", "shadow_denied", "limits"} {
			if _, ok := m[k]; !ok {
				t.Errorf("tier %v has no %q", m["tier"], k)
			}
		}
		for _, l := range m["limits"].([]any) {
			lm := l.(map[string]any)
			for _, k := range []string{"name", "algorithm", "policy", "limit", "window_ms", "burst", "shadow", "requests", "admitted", "denied_by", "shadow_denied"} {
				if _, ok := lm[k]; !ok {
					t.Errorf("tier %v limit %v has no %q", m["tier"], lm["name"], k)
				}
			}
		}
	}
}

// TestHammerPolicyAPIKeyIdentity: with identity api-key, a client of the default
// tier sends a key of its own that the file does not know (its own identity, never
// refused for a missing key), and the clients of a tier with one key share it, and
// so one identity: two pro clients at 40 a second under 50/1s burst 50 between them.
func TestHammerPolicyAPIKeyIdentity(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "limits.yaml")
	if err := os.WriteFile(file, []byte(`identity: api-key
tiers:
  header: X-API-Key
  keys:
    key-pro-1: pro
  default: free
rules:
  - match: {tier: pro}
    limits:
      - {name: shared, algorithm: sliding-log, limit: 50, window: 1h}
  - match: {tier: free}
    limits:
      - {name: own, algorithm: sliding-log, limit: 50, window: 1h}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	b := redistest.Embedded(t)
	opts := policyOptions(b.URL(), file, "free=1,pro=1", 4, 40)
	ids, _ := scenario.Identities(4, 0)
	// Only hour-long limits: the schedule keeps the defaults' windows, so the run
	// starts at once rather than on the next hour's edge.
	if hp, err := loadHammerPolicy(opts, IO{ErrOut: &bytes.Buffer{}}, ids); err != nil || hp.reference != opts.Policy {
		t.Fatalf("the schedule's limit with only 1h limits: %+v, %v; want the defaults %+v", hp.reference, err, opts.Policy)
	}
	h, err := hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	free, pro := tierOf(t, h, "free"), tierOf(t, h, "pro")
	if free.Errors != 0 || pro.Errors != 0 || free.Requests == 0 || pro.Requests == 0 {
		t.Fatalf("free %+v, pro %+v: every request is identified by its key", free, pro)
	}
	if free.Admitted != 2*50 || pro.Admitted != 50 {
		t.Errorf("admitted: free %d (want 50 for each of its 2 keys), pro %d (want 50 for its one shared key)", free.Admitted, pro.Admitted)
	}
}
