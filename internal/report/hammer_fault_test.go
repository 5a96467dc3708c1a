package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// sampleFaultHammer is sampleHammer's run with a stall at +1s for 1s, compared under
// fail modes open and local.
func sampleFaultHammer() *Hammer {
	h := sampleHammer()
	base := h.Algorithms[1]
	ms := func(v float64) *float64 { return &v }
	tl := FaultTimeline{StartMs: 500, BucketMs: 100,
		Admitted:   []int64{9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9},
		Denied:     []int64{20, 20, 20, 20, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 20, 20, 20, 20},
		FailOpen:   make([]int64, 20),
		FailClosed: make([]int64, 20),
		Local:      make([]int64, 20),
		Errors:     []int64{0, 0, 0, 0, 0, 29, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	}
	open, local := base, base
	open.FailMode, local.FailMode = "open", "local"
	openTL, localTL := tl, tl
	openTL.FailOpen = []int64{0, 0, 0, 0, 0, 0, 29, 29, 29, 29, 29, 29, 29, 29, 29, 0, 0, 0, 0, 0}
	localTL.Local = []int64{0, 0, 0, 0, 0, 0, 29, 29, 29, 29, 29, 29, 29, 29, 29, 0, 0, 0, 0, 0}
	open.Fault = &Fault{Kind: "stall", StartMs: 1000, DurationMs: 1000, MeasuredMs: 1000, Requests: 290, Admitted: 261,
		OverLimitAdmitted: 180, OverLimitAttempts: 200, WithinLimitRefused: 29, WithinLimitAttempts: 90,
		AbuseRatio: 0.9, GoodRefusedRatio: 0.322, FailOpen: 261, Errors: 29, PeakInWindow: 140, FailModePeakInWindow: 140,
		CheckLatencyUs: FaultLatency{P50: 50100, P99: 50900, Max: 51200}, PreFaultCheckP99Us: 640,
		RecoveryMs: ms(0.4), LatencyRecoveryMs: ms(100), Timeline: openTL}
	local.Fault = &Fault{Kind: "stall", StartMs: 1000, DurationMs: 1000, MeasuredMs: 1000, Requests: 290, Admitted: 80,
		OverLimitAdmitted: 0, OverLimitAttempts: 200, WithinLimitRefused: 40, WithinLimitAttempts: 90,
		AbuseRatio: 0, GoodRefusedRatio: 0.444, Local: 261, Errors: 29, PeakInWindow: 12, FailModePeakInWindow: 12, LocalBound: 12,
		CheckLatencyUs: FaultLatency{P50: 50100, P99: 50900, Max: 51200}, PreFaultCheckP99Us: 640,
		RecoveryMs: ms(0.5), Timeline: localTL}
	h.Algorithms = []Algorithm{open, local}
	h.Thresholds = []Threshold{{Name: "max-abuse-ratio", Subject: "sliding-log/open", Limit: 0.1, Value: 0.9}}
	return h
}

func TestHammerFaultGolden(t *testing.T) {
	for _, format := range Formats() {
		if format == FormatHTML {
			continue // the page is tested in hammer_html_fault_test.go
		}
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteHammer(&b, format, sampleFaultHammer()); err != nil {
				t.Fatal(err)
			}
			golden(t, "hammer_fault."+format+".golden", b.Bytes())
		})
	}
}

// TestHammerFaultJSONNames: the names the issue fixed for the fault lab, which tests
// and CI scripts read.
func TestHammerFaultJSONNames(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	if err := HammerJSON(&b, sampleFaultHammer()); err != nil {
		t.Fatal(err)
	}
	var m struct {
		SchemaVersion int              `json:"schema_version"`
		Algorithms    []map[string]any `json:"algorithms"`
	}
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 3 || m.Algorithms[0]["fail_mode"] != "open" {
		t.Fatalf("schema %d, fail_mode %v; want 3 and open", m.SchemaVersion, m.Algorithms[0]["fail_mode"])
	}
	f := m.Algorithms[0]["fault"].(map[string]any)
	for _, k := range []string{"kind", "start_ms", "duration_ms", "requests", "admitted", "over_limit_admitted",
		"within_limit_refused", "check_latency_us", "recovery_ms", "timeline"} {
		if _, ok := f[k]; !ok {
			t.Errorf("fault lacks %q", k)
		}
	}
	for _, k := range []string{"p50", "p99", "max"} {
		if _, ok := f["check_latency_us"].(map[string]any)[k]; !ok {
			t.Errorf("fault.check_latency_us lacks %q", k)
		}
	}
	// Without --fail-modes and without a fault, neither name appears.
	b.Reset()
	if err := HammerJSON(&b, sampleHammer()); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); strings.Contains(s, `"fail_mode"`) || strings.Contains(s, `"fault"`) {
		t.Error("a run without --fail-modes or --fault has fail_mode or fault")
	}
}
