package scenario

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/wire"
)

const ms = time.Millisecond

func ev(at time.Duration, id int32, o Outcome) TraceEvent {
	return TraceEvent{At: at, Identity: id, Outcome: o, Took: ms}
}

// judgeTrace is a hand-built trace with L = 2 per 100 ms. Identity 0: two admitted,
// then a fail-open over the limit (abuse let through), a fail-closed and a local
// refusal over it, and a 429 once the window has moved on (good traffic lost).
// Identity 1: a fail-closed within the limit (lost), two fail-opens within it, a third
// over it.
var judgeTrace = []TraceEvent{
	ev(0, 0, OutcomeAllowed),
	ev(10*ms, 0, OutcomeAllowed),
	ev(20*ms, 0, OutcomeFailOpen),
	ev(30*ms, 0, OutcomeFailClosed),
	ev(50*ms, 1, OutcomeFailClosed),
	ev(60*ms, 1, OutcomeFailOpen),
	ev(70*ms, 1, OutcomeFailOpen),
	ev(80*ms, 1, OutcomeFailOpen),
	ev(105*ms, 0, OutcomeLocalDenied),
	ev(125*ms, 0, OutcomeDenied),
}

func TestJudge(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		from, to time.Duration
		want     Judgement
	}{
		{"whole trace", 0, time.Hour, Judgement{Requests: 10, Admitted: 6, OverLimitAttempts: 4, OverLimitAdmitted: 2, WithinLimitAttempts: 6, WithinLimitRefused: 2}},
		{"the history before the span counts", 15 * ms, 200 * ms, Judgement{Requests: 8, Admitted: 4, OverLimitAttempts: 4, OverLimitAdmitted: 2, WithinLimitAttempts: 4, WithinLimitRefused: 2}},
		{"before the fault", 0, 15 * ms, Judgement{Requests: 2, Admitted: 2, WithinLimitAttempts: 2}},
		{"an empty span", 200 * ms, 300 * ms, Judgement{}},
	} {
		if got := Judge(judgeTrace, 2, 100*ms, tt.from, tt.to); got != tt.want {
			t.Errorf("%s: Judge = %+v; want %+v", tt.name, got, tt.want)
		}
	}
	// A window's edge: what was admitted exactly W before no longer counts.
	edge := []TraceEvent{ev(0, 0, OutcomeAllowed), ev(100*ms, 0, OutcomeFailOpen)}
	if got := Judge(edge, 1, 100*ms, 0, time.Hour); got.OverLimitAdmitted != 0 || got.WithinLimitAttempts != 2 {
		t.Errorf("at the window's edge: %+v; want both within the limit", got)
	}
}

func TestAnalyzeFault(t *testing.T) {
	t.Parallel()
	took := func(e TraceEvent, d time.Duration) TraceEvent { e.Took = d; return e }
	events := []TraceEvent{
		took(ev(0, 0, OutcomeAllowed), 1*ms),
		took(ev(50*ms, 0, OutcomeDenied), 2*ms),
		took(ev(150*ms, 0, OutcomeFailOpen), 50*ms),
		took(ev(200*ms, 0, OutcomeFailOpen), 50*ms),
		took(ev(310*ms, 0, OutcomeError), 50*ms),
		took(ev(350*ms, 0, OutcomeDenied), 1*ms),
		took(ev(420*ms, 0, OutcomeAllowed), 1*ms),
	}
	p := algorithms.Policy{Limit: 1, Window: 100 * ms}
	a := AnalyzeFault(events, p, FaultSpan{Start: 100 * ms, Duration: 200 * ms}, time.Second)
	if a.From != 100*ms || a.To != 300*ms {
		t.Errorf("measured %s to %s; want 100ms to 300ms", a.From, a.To)
	}
	want := Judgement{Requests: 2, Admitted: 2, OverLimitAttempts: 1, OverLimitAdmitted: 1, WithinLimitAttempts: 1}
	if a.Judgement != want {
		t.Errorf("judgement %+v; want %+v", a.Judgement, want)
	}
	if a.FailOpen != 2 || a.FailClosed != 0 || a.Errors != 0 || a.PeakInWindow != 2 {
		t.Errorf("fail-open %d, fail-closed %d, errors %d, peak %d; want 2, 0, 0, 2", a.FailOpen, a.FailClosed, a.Errors, a.PeakInWindow)
	}
	if a.CheckLatency.Max < 49_000 || a.CheckLatency.Count != 2 {
		t.Errorf("check latency during the fault %+v; want two checks of 50ms", a.CheckLatency)
	}
	if a.PreFaultCheckP99 != 2000 {
		t.Errorf("pre-fault p99 %dµs; want 2000", a.PreFaultCheckP99)
	}
	if !a.Recovered || a.Recovery != 50*ms {
		t.Errorf("recovery %s (%v); want 50ms: the 429 at 350ms", a.Recovery, a.Recovered)
	}
	if !a.LatencyRecovered || a.LatencyRecovery != 100*ms {
		t.Errorf("latency recovery %s (%v); want 100ms: the bucket from 400ms", a.LatencyRecovery, a.LatencyRecovered)
	}
	tl := a.Timeline
	if tl.Start != 0 || tl.Bucket != FaultBucket || len(tl.Admitted) != 8 {
		t.Fatalf("timeline from %s per %s, %d buckets; want from 0 per 100ms, 8", tl.Start, tl.Bucket, len(tl.Admitted))
	}
	for name, got := range map[string][]int64{"admitted": tl.Admitted, "denied": tl.Denied, "fail-open": tl.FailOpen, "errors": tl.Errors} {
		wantRow := map[string][]int64{
			"admitted":  {1, 0, 0, 0, 1, 0, 0, 0},
			"denied":    {1, 0, 0, 1, 0, 0, 0, 0},
			"fail-open": {0, 1, 1, 0, 0, 0, 0, 0},
			"errors":    {0, 0, 0, 1, 0, 0, 0, 0},
		}[name]
		if !slices.Equal(got, wantRow) {
			t.Errorf("timeline %s %v; want %v", name, got, wantRow)
		}
	}

	// An instant fault is measured over the window after it; no decision by the
	// limiter after it means no recovery.
	inst := AnalyzeFault(events[:4], p, FaultSpan{Start: 150 * ms}, time.Second)
	if inst.From != 150*ms || inst.To != 250*ms || inst.Recovered || inst.Requests != 2 {
		t.Errorf("instant fault: %s to %s, recovered %v, %d requests; want 150ms to 250ms, false, 2", inst.From, inst.To, inst.Recovered, inst.Requests)
	}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code    int
		outcome string
		want    Outcome
	}{
		{200, wire.CheckAllowed, OutcomeAllowed},
		{429, wire.CheckDenied, OutcomeDenied},
		{200, wire.CheckError, OutcomeFailOpen},
		{503, wire.CheckError, OutcomeFailClosed},
		{200, wire.CheckLocal, OutcomeLocalAllowed},
		{429, wire.CheckLocal, OutcomeLocalDenied},
		{503, wire.CheckTimeout, OutcomeError},
		{503, wire.CheckOverloaded, OutcomeError},
		{503, wire.CheckAllowed, OutcomeError},
		{200, "", OutcomeError},
	} {
		if got := OutcomeOf(tt.code, tt.outcome); got != tt.want {
			t.Errorf("OutcomeOf(%d, %q) = %d; want %d", tt.code, tt.outcome, got, tt.want)
		}
	}
}

// TestTraceWrap: the trace records each answer of a run's identity with the node's
// outcome and check time, and ignores other identities.
func TestTraceWrap(t *testing.T) {
	t.Parallel()
	tr := NewTrace([]string{"10.0.0.1", "10.0.0.2"}, false)
	tr.Begin(time.Now())
	h := tr.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(wire.HeaderServerTiming, wire.FormatServerTiming(3*ms, wire.CheckError))
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	for _, xff := range []string{"10.0.0.2", "192.0.2.1"} {
		r := httptest.NewRequest("GET", "/products/1", nil)
		r.Header.Set("X-Forwarded-For", xff)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	got := tr.Events()
	if len(got) != 1 || got[0].Identity != 1 || got[0].Outcome != OutcomeFailClosed || got[0].Took != 3*ms || got[0].At < 3*ms {
		t.Fatalf("traced %+v; want one fail-closed answer of identity 1 with a 3ms check, decided once it failed", got)
	}
}

// TestTraceWrapLocal: a local decision is traced at the in-memory limiter's own time,
// not at when the node got round to answering.
func TestTraceWrapLocal(t *testing.T) {
	t.Parallel()
	start := time.Now()
	tr := NewTrace([]string{"10.0.0.1"}, false)
	tr.Begin(start)
	local, err := algorithms.NewLocal(algorithms.SlidingLog, algorithms.Policy{Limit: 1, Window: time.Second},
		func() time.Time { return start.Add(123 * ms) })
	if err != nil {
		t.Fatal(err)
	}
	lim := tr.WrapLocal(local)
	h := tr.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := lim.Allow(r.Context(), "10.0.0.1"); err != nil {
			t.Error(err)
		}
		w.Header().Set(wire.HeaderServerTiming, wire.FormatServerTiming(50*ms, wire.CheckLocal))
	}))
	r := httptest.NewRequest("GET", "/products/1", nil)
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	h.ServeHTTP(httptest.NewRecorder(), r)
	got := tr.Events()
	// The limiter's time is in whole microseconds.
	if len(got) != 1 || got[0].At > 123*ms || 123*ms-got[0].At >= time.Microsecond || got[0].Outcome != OutcomeLocalAllowed {
		t.Fatalf("traced %+v; want one local admission at 123ms, the limiter's time", got)
	}
}
