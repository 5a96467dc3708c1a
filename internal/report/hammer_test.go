package report

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ratelab/ratelab/scenario"
)

func init() {
	// Another file of this package's tests may define -update too; one flag serves both.
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite the golden files under testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if updating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/report -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test ./internal/report -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func sampleHammer() *Hammer {
	tl := func(before, after int64) *Timeline {
		c := make([]int64, 20)
		c[9], c[10], c[11] = before, after, 1
		c[3] = 2
		return &Timeline{Identity: "10.7.0.0", EdgeOffsetMs: 500, BucketMs: 50, Counts: c}
	}
	alg := func(name string, peak, bound int64, before, after int64) Algorithm {
		return Algorithm{
			Name: name, Limit: 10, WindowMs: 500, Burst: 10,
			Sent: 3000, Allowed: 1400, Denied: 1590, Errors: 10, AllowedPerSecond: 466.7, AchievedRPS: 1000,
			PeakInWindow: peak, PeakInTenthWindow: before, ExpectedMaxInWindow: bound, BurstRatio: float64(peak) / 10,
			CheckLatencyUs: CheckLatency{Count: 3000, P50: 180, P90: 260, P99: 640, P999: 1320, Max: 2410},
			E2ELatencyUs:   E2ELatency{P50: 420, P90: 700, P99: 1900, P999: 4000, Max: 12000},
			Timeline:       tl(before, after),
			Checks:         scenario.Checks{Allowed: 1400, Denied: 1590},
			StatusCodes:    map[string]int64{"200": 1400, "429": 1590, "500": 4},
			ErrorSet:       []ErrorKind{{Kind: "timeout", Count: 6, Example: "read tcp 127.0.0.1:40000->127.0.0.1:8080: i/o timeout"}},
			ErrorRatio:     0.003, LateSendRatio: 0.0005, ElapsedMs: 3000,
			Limiter: &LimiterCalls{LocalAnswers: 1200, RedisCalls: 1790, RoundTrips: 1500,
				RedisCallsPerRequest: 0.599, RedisCallsPerDenied: 0.245},
		}
	}
	return &Hammer{
		SchemaVersion: HammerSchemaVersion, Version: "7253cda69024", CommandLine: []string{"ratelab", "hammer", "--nodes=3"},
		StartedAt: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), GOMAXPROCS: 2, NumCPU: 2, Valid: true,
		Errors: 20, ErrorRatio: 0.0033,
		Backend: "redis://127.0.0.1:6379", Nodes: 3, Store: "redis",
		Pattern: "mixed", IPs: 50, Products: 40, TargetRPS: 1000, AchievedRPS: 999.8, Sent: 6000,
		LateSends: 3, LateSendRatio: 0.0005, LateAfterUs: 1000, Seed: 1, DurationMs: 3000, Workers: 512,
		SendLagUs: SendLag{P50: 80, P99: 260, Max: 2700}, PacerRealtime: true,
		PacerLagUs: SendLag{P50: 45, P99: 100, Max: 1100}, PacerLate: 1,
		Cache: Cache{Hits: 5900, Misses: 100, HitRatio: 0.983, BackendCalls: 100, LocalHits: 5000, RedisHits: 900, FillLockWaits: 4},
		Algorithms: []Algorithm{
			alg("fixed-window", 20, 20, 10, 10),
			alg("sliding-log", 10, 10, 10, 0),
		},
		Thresholds: []Threshold{
			{Name: "max-burst-ratio", Subject: "fixed-window", Limit: 1.5, Value: 2, OK: false},
			{Name: "max-check-p99", Subject: "sliding-log", Limit: 1000, Value: 640, OK: true},
		},
	}
}

func TestHammerGolden(t *testing.T) {
	for _, format := range Formats() {
		if format == FormatHTML {
			continue // the page is tested in hammer_html_test.go
		}
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteHammer(&b, format, sampleHammer()); err != nil {
				t.Fatal(err)
			}
			golden(t, "hammer."+format+".golden", b.Bytes())
		})
	}
}

func TestHammerJSONSchema(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HammerJSON(&b, sampleHammer()); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	// The documented, stable names (docs/report-schema.md): never renamed.
	for _, k := range []string{"backend", "nodes", "store", "target_rps", "achieved_rps", "late_sends", "seed", "cache", "algorithms"} {
		if _, ok := m[k]; !ok {
			t.Errorf("top level lacks %q", k)
		}
	}
	cache := m["cache"].(map[string]any)
	for _, k := range []string{"hits", "misses", "hit_ratio", "backend_calls"} {
		if _, ok := cache[k]; !ok {
			t.Errorf("cache lacks %q", k)
		}
	}
	alg := m["algorithms"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "limit", "window_ms", "burst", "sent", "allowed", "denied", "errors", "peak_in_window",
		"peak_in_tenth_window", "expected_max_in_window", "burst_ratio", "check_latency_us", "e2e_latency_us"} {
		if _, ok := alg[k]; !ok {
			t.Errorf("algorithm lacks %q", k)
		}
	}
	for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
		if _, ok := alg["check_latency_us"].(map[string]any)[k]; !ok {
			t.Errorf("check_latency_us lacks %q", k)
		}
	}
	for _, k := range []string{"p50", "p99"} {
		if _, ok := alg["e2e_latency_us"].(map[string]any)[k]; !ok {
			t.Errorf("e2e_latency_us lacks %q", k)
		}
	}
}

func TestHammerTableForTargets(t *testing.T) {
	t.Parallel()
	h := sampleHammer()
	h.Backend, h.Store, h.Nodes = "targets", "remote", 2
	h.Targets = []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"}
	h.TargetPolicies = []string{`"default";q=100;w=1`, ""}
	h.TargetPolicyMismatch = []string{"http://127.0.0.1:8080 enforces a quota of 100, not --limit 10"}
	h.PacerRealtime, h.PoolFull = false, 12
	var b bytes.Buffer
	if err := HammerTable(&b, h); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`http://127.0.0.1:8080 (RateLimit-Policy "default";q=100;w=1)`,
		"POLICY MISMATCH: http://127.0.0.1:8080 enforces a quota of 100, not --limit 10; set --limit, --window and --algorithms",
		"http://127.0.0.1:8081 (no RateLimit-Policy header)",
		"by the time each answer arrived",
		"Cache (from the targets' X-Cache headers)",
		"as the serve processes report it in Server-Timing",
		"normal priority (a real-time thread needs CAP_SYS_NICE)",
		"waited for a free connection 12 times (raise --workers)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	// A target enforcing --limit gets no warning.
	h.TargetPolicies[0] = `"default";q=10;w=1`
	h.TargetPolicyMismatch = nil
	b.Reset()
	if err := HammerTable(&b, h); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "MISMATCH") {
		t.Errorf("a warning for a target that enforces --limit:\n%s", b.String())
	}
}

func TestHammerAlarmsComeFirst(t *testing.T) {
	t.Parallel()
	h := sampleHammer()
	h.Valid, h.InvalidReasons = false, []string{"41.0% of sends were late (more than 1%)", "the connection pool ran out 722 times: raise --workers"}
	h.Failed = &Failure{Algorithm: "gcra", Error: "cannot reach Redis"}
	stop := int64(180)
	at := time.Date(2026, 12, 1, 8, 0, 1, 0, time.UTC)
	h.Interrupted, h.InterruptSignal, h.InterruptedAt, h.StopLatencyUs = true, "SIGINT", &at, &stop
	for _, format := range []string{FormatTable, FormatMarkdown} {
		var b bytes.Buffer
		if err := WriteHammer(&b, format, h); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		head, _, _ := strings.Cut(out, "backend")
		for _, want := range []string{"FAILED: the gcra run: cannot reach Redis", "NOT VALID: 41.0% of sends were late", "NOT VALID: the connection pool ran out 722 times"} {
			if !strings.Contains(head, want) {
				t.Errorf("%s: the top of the report lacks %q:\n%s", format, want, out)
			}
		}
		if !strings.Contains(out, "yes, by SIGINT: the last request went out 180µs after it") {
			t.Errorf("%s: the interrupt is not described:\n%s", format, out)
		}
	}
	h = sampleHammer()
	var b bytes.Buffer
	if err := HammerTable(&b, h); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "NOT VALID") || strings.Contains(b.String(), "FAILED") {
		t.Errorf("a valid run raises an alarm:\n%s", b.String())
	}
}

func TestHammerTableShowsTheBoundaryBurst(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HammerTable(&b, sampleHammer()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"fixed-window", "peak in W 20 = 2.00 L", "peak in W 10 = 1.00 L", "MISSED", "--max-burst-ratio: fixed-window 2, want ≤ 1.5"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if err := WriteHammer(&b, "yaml", sampleHammer()); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}
