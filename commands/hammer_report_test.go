package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// latencies is a histogram of the given microseconds.
func latencies(us ...int64) *hdrhistogram.Histogram {
	h := scenario.NewE2EHistogram()
	for _, v := range us {
		_ = h.RecordValue(v)
	}
	return h
}

// times are n admitted times from at, every step µs.
func times(at, step int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = at + int64(i)*step
	}
	return out
}

func TestBuildReport(t *testing.T) {
	t.Parallel()
	p := algorithms.Policy{Limit: 5, Window: time.Second}
	sched := &scenario.Schedule{Config: scenario.Config{Window: p.Window}, Attackers: []int{1}}
	ids := []string{"10.0.0.1", "10.0.0.2"}
	const edge = 10_000_000 // a window edge, in limiter µs
	// Identity 1 gets L just before the edge and L just after: 2L in one window.
	boundary := [][]int64{times(edge-2_000_000, 100_000, 3), append(times(edge-50_000, 1_000, 5), times(edge, 1_000, 5)...)}
	// Identity 1 gets L, spread over the window either side.
	spread := [][]int64{nil, times(edge-400_000, 200_000, 5)}
	res := func(sent, allowed, late int64, elapsed time.Duration) scenario.Result {
		return scenario.Result{
			Sent: sent, Allowed: allowed, Denied: sent - allowed, Late: late, Elapsed: elapsed,
			AchievedRPS: float64(sent) / elapsed.Seconds(), E2E: latencies(300, 400, 500),
			SendLag: latencies(10, 20), PacerLag: latencies(5), PacerRealtime: true,
		}
	}
	fixed := hammerRun{
		name: algorithms.FixedWindow, policy: p, res: res(100, 13, 1, 2*time.Second), admitted: boundary,
		checks: scenario.Checks{Allowed: 13, Denied: 87}, checkLatency: latencies(100, 200, 900),
		edgeMicro: edge, bound: 10, cache: report.Cache{Hits: 8, Misses: 2, BackendCalls: 2, RedisHits: 8},
		localEvictions: 3,
	}
	slog := hammerRun{
		name: algorithms.SlidingLog, policy: p, res: res(100, 5, 0, 2*time.Second), admitted: spread,
		checks: scenario.Checks{Allowed: 5, Denied: 95}, checkLatency: latencies(100, 200, 300),
		edgeMicro: edge, bound: 5, cache: report.Cache{Hits: 2, Misses: 3, BackendCalls: 3, RedisHits: 2},
	}
	tests := []struct {
		name  string
		runs  []hammerRun
		opts  HammerOptions
		check func(t *testing.T, h *report.Hammer)
	}{
		{
			name: "rows, bursts and totals",
			runs: []hammerRun{fixed, slog},
			check: func(t *testing.T, h *report.Hammer) {
				if len(h.Algorithms) != 2 || h.Sent != 200 || h.LateSends != 1 || h.LateSendRatio != 0.005 {
					t.Fatalf("totals: %d rows, sent %d, late %d (%v)", len(h.Algorithms), h.Sent, h.LateSends, h.LateSendRatio)
				}
				if h.AchievedRPS != 50 || !h.PacerRealtime || len(h.Thresholds) != 0 {
					t.Errorf("achieved %v rps, realtime %v, thresholds %v; want 50, true, none", h.AchievedRPS, h.PacerRealtime, h.Thresholds)
				}
				f, s := h.Algorithms[0], h.Algorithms[1]
				if f.LocalEvictions != 3 || s.LocalEvictions != 0 {
					t.Errorf("local evictions %d, %d; want the runs' 3 and 0", f.LocalEvictions, s.LocalEvictions)
				}
				if f.PeakInWindow != 10 || f.BurstRatio != 2 || f.ExpectedMaxInWindow != 10 || f.AllowedPerSecond != 6.5 {
					t.Errorf("fixed-window: peak %d, ratio %v, bound %d, %v/s; want 10, 2, 10, 6.5", f.PeakInWindow, f.BurstRatio, f.ExpectedMaxInWindow, f.AllowedPerSecond)
				}
				if s.PeakInWindow != 5 || s.BurstRatio != 1 || s.CheckLatencyUs.Count != 3 || s.CheckLatencyUs.Max < 300 {
					t.Errorf("sliding-log: peak %d, ratio %v, checks %+v", s.PeakInWindow, s.BurstRatio, s.CheckLatencyUs)
				}
				// The timeline follows the attacker: its ten requests sit in the two
				// buckets either side of the edge.
				tl := f.Timeline
				if tl.Identity != "10.0.0.2" || tl.Counts[scenario.TimelineBuckets/2-1] != 5 || tl.Counts[scenario.TimelineBuckets/2] != 5 {
					t.Errorf("timeline of %s: %v", tl.Identity, tl.Counts)
				}
				if c := h.Cache; c.Hits != 10 || c.Misses != 5 || c.BackendCalls != 5 || c.HitRatio != 10.0/15 {
					t.Errorf("cache %+v; want the runs' sums and a hit ratio of 2/3", c)
				}
			},
		},
		{
			name: "thresholds met and missed",
			runs: []hammerRun{fixed, slog},
			opts: HammerOptions{MaxBurstRatio: 1.1, MaxCheckP99: 500 * time.Microsecond, MinHitRatio: 0.9, MinAchievedRPS: 40},
			check: func(t *testing.T, h *report.Hammer) {
				got := map[string]bool{}
				for _, th := range h.Thresholds {
					got[th.Name+" "+th.Subject] = th.OK
				}
				want := map[string]bool{
					"max-burst-ratio fixed-window": false, "max-burst-ratio sliding-log": true,
					"max-check-p99 fixed-window": false, "max-check-p99 sliding-log": true,
					"min-achieved-rps fixed-window": true, "min-achieved-rps sliding-log": true,
					"min-hit-ratio cache": false,
				}
				if len(got) != len(want) {
					t.Fatalf("thresholds %v; want %v", got, want)
				}
				for k, ok := range want {
					if v, present := got[k]; !present || v != ok {
						t.Errorf("%s: ok %v (present %v); want %v", k, v, present, ok)
					}
				}
				if len(h.Missed()) != 3 {
					t.Errorf("missed %v; want three", h.Missed())
				}
			},
		},
		{
			name: "error, late and fail-open thresholds",
			runs: []hammerRun{func() hammerRun {
				r := fixed
				r.answers = scenario.Answers{
					Codes:      map[int]int64{200: 13, 429: 80, 500: 3, 503: 2},
					FailClosed: 2,
					FailOpen:   2, // two of the 200s were served although their check failed
					Errors:     map[string]scenario.ErrorCount{"timeout": {Count: 2, Example: "read: i/o timeout"}},
				}
				r.checks.Errors = 4
				return r
			}()},
			opts: HammerOptions{MaxErrorRatio: ptr(0.01), MaxLateRatio: ptr(0.02), MaxFailOpen: ptr[int64](0)},
			check: func(t *testing.T, h *report.Hammer) {
				a := h.Algorithms[0]
				// 2 transport errors and 3 500s; the two 503s were fail-closed refusals.
				if a.ErrorRatio != 0.05 || a.FailClosed != 2 || a.FailOpen != 2 || a.StatusCodes["500"] != 3 || len(a.ErrorSet) != 1 || a.ErrorSet[0].Example == "" {
					t.Errorf("error ratio %v, fail-closed %d, codes %v, errors %+v", a.ErrorRatio, a.FailClosed, a.StatusCodes, a.ErrorSet)
				}
				got := map[string]bool{}
				for _, th := range h.Thresholds {
					got[th.Name] = th.OK
				}
				if len(got) != 3 || got["max-error-ratio"] || !got["max-late-ratio"] || got["max-fail-open"] {
					t.Errorf("thresholds %v; want error ratio and fail-open missed, late ratio (1%%) met", got)
				}
				if h.Valid || !strings.Contains(strings.Join(h.InvalidReasons, ";"), "4 limiter checks failed") {
					t.Errorf("failed checks make a run invalid: valid %v, %q", h.Valid, h.InvalidReasons)
				}
			},
		},
		{
			name: "thresholds without data are missed",
			runs: []hammerRun{func() hammerRun {
				r := slog
				r.admitted, r.checkLatency, r.checks, r.cache = nil, nil, scenario.Checks{}, report.Cache{}
				return r
			}()},
			opts: HammerOptions{MaxBurstRatio: 2, MaxCheckP99: time.Second, MinHitRatio: 0.1, MaxFailOpen: ptr[int64](10)},
			check: func(t *testing.T, h *report.Hammer) {
				if len(h.Thresholds) != 4 {
					t.Fatalf("thresholds %+v; want four", h.Thresholds)
				}
				for _, th := range h.Thresholds {
					if th.OK || th.NoData == "" {
						t.Errorf("%s on %s with nothing measured: ok %v, no data %q", th.Name, th.Subject, th.OK, th.NoData)
					}
				}
				if msg := report.DescribeMissed(h.Missed()); !strings.Contains(msg, "--max-check-p99: sliding-log has no data (no limiter check was timed)") {
					t.Errorf("the message does not say what was missing: %s", msg)
				}
			},
		},
		{
			name: "valid and invalid runs",
			runs: []hammerRun{slog},
			check: func(t *testing.T, h *report.Hammer) {
				if !h.Valid || len(h.InvalidReasons) != 0 {
					t.Errorf("a clean run: valid %v, %q", h.Valid, h.InvalidReasons)
				}
			},
		},
		{
			name: "late, starved and short runs are not valid",
			runs: []hammerRun{func() hammerRun {
				r := fixed
				r.res.Late, r.res.PoolFull, r.res.Elapsed = 5, 7, 1500*time.Millisecond
				return r
			}()},
			check: func(t *testing.T, h *report.Hammer) {
				reasons := strings.Join(h.InvalidReasons, "\n")
				for _, want := range []string{"5.0% of sends were late", "ran out 7 times: raise --workers", "shorter than two windows (2 × 1s): fixed-window 1.5s"} {
					if !strings.Contains(reasons, want) {
						t.Errorf("reasons %q do not say %q", reasons, want)
					}
				}
				if h.Valid || len(h.InvalidReasons) != 3 {
					t.Errorf("valid %v with %d reasons; want invalid with 3", h.Valid, len(h.InvalidReasons))
				}
			},
		},
		{
			name: "an interrupted run",
			runs: []hammerRun{func() hammerRun { r := slog; r.res.Interrupted = true; return r }()},
			check: func(t *testing.T, h *report.Hammer) {
				if !h.Interrupted || !h.Algorithms[0].Interrupted {
					t.Errorf("interrupted: report %v, row %v", h.Interrupted, h.Algorithms[0].Interrupted)
				}
			},
		},
		{
			name: "no runs",
			check: func(t *testing.T, h *report.Hammer) {
				if h.Sent != 0 || h.AchievedRPS != 0 || h.PacerRealtime || len(h.Algorithms) != 0 || h.Valid {
					t.Errorf("an empty report claims %+v", h)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := &report.Hammer{}
			buildReport(h, tt.runs, sched, ids, tt.opts)
			tt.check(t, h)
		})
	}
}

func TestTargetPolicyMismatch(t *testing.T) {
	t.Parallel()
	opts := HammerOptions{Policy: algorithms.Policy{Limit: 10, Window: time.Second}, Algorithms: []string{algorithms.SlidingLog}}
	targets := []string{"http://127.0.0.1:8080"}
	tests := []struct {
		name   string
		policy string
		opts   HammerOptions
		want   []string // substrings, one per mismatch
	}{
		{"the same policy", `"default";q=10;w=1;ratelab-window-ms=1000;ratelab-algorithm=sliding-log`, opts, nil},
		{"no policy sent", ``, opts, nil},
		{"another quota", `"default";q=5;w=1;ratelab-window-ms=1000`, opts, []string{"quota of 5, not --limit 10"}},
		// The draft's w rounds 500ms up to 1s: only the exact window tells them apart.
		{"500ms against 1s", `"default";q=10;w=1;ratelab-window-ms=500;ratelab-algorithm=sliding-log`, opts, []string{"window of 500ms, not --window 1s"}},
		{"whole seconds only, equal", `"default";q=10;w=1`, opts, nil},
		{"whole seconds only, different", `"default";q=10;w=60`, opts, []string{"window of 60s"}},
		{"another algorithm", `"default";q=10;w=1;ratelab-window-ms=1000;ratelab-algorithm=gcra`, opts, []string{"enforces gcra, not --algorithms sliding-log"}},
		{"algorithm not named", `"default";q=10;w=1;ratelab-window-ms=1000;ratelab-algorithm=gcra`,
			HammerOptions{Policy: opts.Policy, Algorithms: []string{"gcra", "sliding-log"}}, nil},
		{"unreadable", `"default";w=1`, opts, []string{"cannot read"}},
	}
	for _, tt := range tests {
		got := targetPolicyMismatch(targets, []string{tt.policy}, tt.opts)
		if len(got) != len(tt.want) {
			t.Errorf("%s: %q; want %d mismatches %q", tt.name, got, len(tt.want), tt.want)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: %q; want %q", tt.name, got[i], w)
			}
		}
	}
}
