package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func sampleSimulate(sweep bool) *Simulate {
	first := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	denial := first.Add(1500 * time.Millisecond)
	s := &Simulate{
		SchemaVersion: SimulateSchemaVersion, Version: "v0.test", CommandLine: []string{"ratelab", "simulate", "--trace", "access.log"},
		Source: "trace",
		Trace: &SimulateTrace{File: "access\x1b[2J.log", Format: "combined", Client: "remote-addr", Bytes: 3 << 20, Lines: 20_000, BadLines: 40,
			BadSamples: []BadLine{{Line: 17, Reason: "no [time]"}, {Line: 90, Reason: "no remote address"}}, Reordered: 2},
		Seed: 1, Requests: 19_960, Clients: 180, First: first, Last: first.Add(70 * time.Minute), SpanMs: 4.2e6,
		Nodes: 1, Store: "redis", Sweep: sweep,
	}
	tl := func(before, after int64) *Timeline {
		c := make([]int64, 20)
		c[9], c[10] = before, after
		return &Timeline{Identity: "100.0.0.0", EdgeOffsetMs: 120_000, BucketMs: 6000, Counts: c}
	}
	add := func(name string, limit int64, peak, bound int64, refused, abuse int64, before, after int64) {
		a := SimulateAlgorithm{Name: name, Limit: limit, WindowMs: 60_000, Burst: limit, Sent: 19_960, Allowed: 18_000 - 50*limit, Denied: 1960 + 50*limit,
			PeakInWindow: peak, PeakInTenthWindow: peak / 3, PeakClient: "100.0.0.0", ExpectedMaxInWindow: bound, BurstRatio: float64(peak) / float64(limit),
			WellBehavedRefused: WhoPaid{Clients: refused, Requests: 3 * refused}, AbuseAdmitted: WhoPaid{Clients: abuse, Requests: peak - limit},
			Clients: []SimulateClient{{Client: "100.0.0.0", Requests: 21_000, Allowed: 7000, Denied: 14_000, PeakInWindow: peak, FirstDenial: &denial},
				{Client: "2001:db8::/64", Requests: 300, Allowed: 290, Denied: 10, PeakInWindow: limit, FirstDenial: &denial}}}
		if !sweep {
			a.Timeline = tl(before, after)
		}
		s.Algorithms = append(s.Algorithms, a)
	}
	add("fixed-window", 100, 200, 200, 4, 1, 100, 100)
	add("sliding-log", 100, 100, 100, 6, 0, 100, 0)
	if sweep {
		add("fixed-window", 200, 400, 400, 1, 1, 0, 0)
		add("sliding-log", 200, 200, 200, 0, 0, 0, 0)
	}
	return s
}

func TestSimulateGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format string
		sweep  bool
	}{
		{"simulate.table.golden", FormatTable, false},
		{"simulate.markdown.golden", FormatMarkdown, false},
		{"simulate.json.golden", FormatJSON, false},
		{"simulate_sweep.table.golden", FormatTable, true},
	} {
		var buf bytes.Buffer
		if err := WriteSimulate(&buf, tc.format, sampleSimulate(tc.sweep)); err != nil {
			t.Fatal(err)
		}
		golden(t, tc.name, buf.Bytes())
		if strings.Contains(buf.String(), "\x1b") {
			t.Errorf("%s: a control byte of the file name reached the output", tc.name)
		}
	}
}

// TestSimulateJSONFields checks the documented fields a script reads.
func TestSimulateJSONFields(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := WriteSimulate(&buf, FormatJSON, sampleSimulate(false)); err != nil {
		t.Fatal(err)
	}
	var v struct {
		SchemaVersion int `json:"schema_version"`
		Algorithms    []struct {
			Name               string `json:"name"`
			PeakInWindow       int64  `json:"peak_in_window"`
			WellBehavedRefused struct {
				Clients int64 `json:"clients"`
			} `json:"well_behaved_refused"`
			AbuseAdmitted struct {
				Clients int64 `json:"clients"`
			} `json:"abuse_admitted"`
			Clients []struct {
				Client string `json:"client"`
			} `json:"clients"`
		} `json:"algorithms"`
	}
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.SchemaVersion != 1 || len(v.Algorithms) != 2 || v.Algorithms[0].AbuseAdmitted.Clients != 1 ||
		v.Algorithms[1].WellBehavedRefused.Clients != 6 || v.Algorithms[0].Clients[0].Client != "100.0.0.0" {
		t.Errorf("decoded %+v", v)
	}
	if err := WriteSimulate(&buf, "yaml", sampleSimulate(false)); err == nil {
		t.Error("format yaml accepted")
	}
}
