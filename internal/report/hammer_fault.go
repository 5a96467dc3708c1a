package report

import (
	"fmt"
	"strconv"
	"strings"
)

// Fault is what an injected fault did to one algorithm's run under one fail mode
// (docs/faults.md): the requests decided while it held (and, for an instant fault,
// in the window after it), judged against the exact sliding log of what was
// admitted, the checks' latency, and how soon the limiter decided again.
type Fault struct {
	// Kind is the fault (stall, latency, drop, restart, script-flush); several faults
	// in one run are joined with "+", and measured as one from the first's start to
	// the last's end.
	Kind string `json:"kind"`
	// StartMs is the fault's start from the run's start; DurationMs how long it held
	// (0 for an instant fault); MeasuredMs the span the counts below cover, at least
	// one window.
	StartMs    float64 `json:"start_ms"`
	DurationMs float64 `json:"duration_ms"`
	MeasuredMs float64 `json:"measured_ms"`
	Requests   int64   `json:"requests"`
	Admitted   int64   `json:"admitted"`
	// OverLimitAdmitted were served although L of their identity's requests had been
	// admitted in the window before them: abuse let through; OverLimitAttempts all
	// such requests, admitted or not.
	OverLimitAdmitted int64 `json:"over_limit_admitted"`
	OverLimitAttempts int64 `json:"over_limit_attempts"`
	// WithinLimitRefused were refused although within the limit: good traffic lost;
	// WithinLimitAttempts all such requests.
	WithinLimitRefused  int64 `json:"within_limit_refused"`
	WithinLimitAttempts int64 `json:"within_limit_attempts"`
	// AbuseRatio is OverLimitAdmitted / OverLimitAttempts, GoodRefusedRatio
	// WithinLimitRefused / WithinLimitAttempts (0 when there were none).
	AbuseRatio       float64 `json:"abuse_ratio"`
	GoodRefusedRatio float64 `json:"good_refused_ratio"`
	// How the requests of the span were decided by other than the limiter.
	FailOpen   int64 `json:"fail_open"`
	FailClosed int64 `json:"fail_closed"`
	Local      int64 `json:"local"`
	Errors     int64 `json:"errors"`
	// PeakInWindow is the most admitted for one identity in any interval of length W
	// within the span.
	PeakInWindow int64 `json:"peak_in_window"`
	// FailModePeakInWindow is the same for what a fail mode admitted (open or local).
	FailModePeakInWindow int64 `json:"fail_mode_peak_in_window"`
	// LocalBound is, in fail mode local, what the nodes' in-memory limiters may admit
	// together for one identity in any W: N × the algorithm's worst case at
	// ceil(L/N) (N·ceil(L/N) for sliding-log); absent otherwise.
	LocalBound int64 `json:"local_bound,omitempty"`
	// CheckLatencyUs is the limiter check's time within the span.
	CheckLatencyUs FaultLatency `json:"check_latency_us"`
	// PreFaultCheckP99Us is the checks' p99 before the fault, those Redis answered.
	PreFaultCheckP99Us int64 `json:"pre_fault_check_p99_us"`
	// RecoveryMs is from the fault's end to the first request the limiter decided
	// again; null when none did before the run ended.
	RecoveryMs *float64 `json:"recovery_ms"`
	// LatencyRecoveryMs is from the fault's end to the first 100 ms whose check p99 is
	// back at or under PreFaultCheckP99Us; null when none was.
	LatencyRecoveryMs *float64      `json:"latency_recovery_ms"`
	Timeline          FaultTimeline `json:"timeline"`
}

// FaultLatency is the check latency during a fault, in microseconds.
type FaultLatency struct {
	P50 int64 `json:"p50"`
	P99 int64 `json:"p99"`
	Max int64 `json:"max"`
}

// FaultTimeline counts every request per BucketMs through the fault, from StartMs
// (from the run's start), by how it was decided.
type FaultTimeline struct {
	StartMs    float64 `json:"start_ms"`
	BucketMs   float64 `json:"bucket_ms"`
	Admitted   []int64 `json:"admitted"`
	Denied     []int64 `json:"denied"`
	FailOpen   []int64 `json:"fail_open"`
	FailClosed []int64 `json:"fail_closed"`
	Local      []int64 `json:"local"`
	Errors     []int64 `json:"errors"`
}

// Label names a row: the algorithm, and its fail mode when the run compared them.
func (a Algorithm) Label() string {
	if a.FailMode == "" {
		return a.Name
	}
	return a.Name + "/" + a.FailMode
}

// faultSections are the fault lab's parts of the report: what each algorithm and
// mode let through during the fault, and the timeline through it; none without one.
func faultSections(h *Hammer) []hammerSection {
	var first *Fault
	for _, a := range h.Algorithms {
		if a.Fault != nil {
			first = a.Fault
			break
		}
	}
	if first == nil {
		return nil
	}
	g := &grid{headers: []string{"algorithm", "requests", "admitted", "over-limit admitted", "within-limit refused",
		"fail-open", "fail-closed", "local", "errors", "peak in W", "fail-mode peak", "check p50", "p99", "max", "recovery", "p99 recovery"}, firstNumeric: 1}
	for _, a := range h.Algorithms {
		f := a.Fault
		if f == nil {
			continue
		}
		g.rows = append(g.rows, []string{a.Label(), count(f.Requests), count(f.Admitted),
			fmt.Sprintf("%d of %d", f.OverLimitAdmitted, f.OverLimitAttempts),
			fmt.Sprintf("%d of %d", f.WithinLimitRefused, f.WithinLimitAttempts),
			count(f.FailOpen), count(f.FailClosed), count(f.Local), count(f.Errors), count(f.PeakInWindow), failModePeak(f),
			micros(f.CheckLatencyUs.P50), micros(f.CheckLatencyUs.P99), micros(f.CheckLatencyUs.Max),
			optionalMillis(f.RecoveryMs), optionalMillis(f.LatencyRecoveryMs)})
	}
	title := fmt.Sprintf("Fault: %s at +%s for %s (figures over %s from its start; over-limit judged by the exact sliding log of what was admitted)",
		first.Kind, millis(first.StartMs), millis(first.DurationMs), millis(first.MeasuredMs))
	return []hammerSection{
		{title: title, grid: g},
		{title: fmt.Sprintf("Fault timeline: requests per %s by decision, from +%s", millis(first.Timeline.BucketMs), millis(first.Timeline.StartMs)),
			chart: faultChart(h, first)},
	}
}

// failModePeak is what the fail mode admitted in a window, with the local bound.
func failModePeak(f *Fault) string {
	if f.LocalBound > 0 {
		return fmt.Sprintf("%d (bound %d)", f.FailModePeakInWindow, f.LocalBound)
	}
	return count(f.FailModePeakInWindow)
}

func optionalMillis(ms *float64) string {
	if ms == nil {
		return "never"
	}
	return millis(*ms)
}

// faultChart draws, for each row, one line per kind of decision with a bar per
// bucket, the fault's buckets between two marks.
func faultChart(h *Hammer, first *Fault) string {
	var top int64 = 1
	width := 0
	for _, a := range h.Algorithms {
		if f := a.Fault; f != nil {
			width = max(width, len(a.Label()))
			for _, row := range [][]int64{f.Timeline.Admitted, f.Timeline.Denied, f.Timeline.FailOpen, f.Timeline.FailClosed, f.Timeline.Local, f.Timeline.Errors} {
				for _, c := range row {
					top = max(top, c)
				}
			}
		}
	}
	kinds := []string{"admitted", "denied", "fail-open", "fail-closed", "local", "errors"}
	width = max(width, len("fail-closed"))
	var b strings.Builder
	tl := first.Timeline
	from := int((first.StartMs - tl.StartMs) / tl.BucketMs)
	to := int((first.StartMs + first.DurationMs - tl.StartMs + tl.BucketMs - 1) / tl.BucketMs)
	for _, a := range h.Algorithms {
		f := a.Fault
		if f == nil {
			continue
		}
		fmt.Fprintf(&b, "%s\n", a.Label())
		rows := [][]int64{f.Timeline.Admitted, f.Timeline.Denied, f.Timeline.FailOpen, f.Timeline.FailClosed, f.Timeline.Local, f.Timeline.Errors}
		for k, row := range rows {
			var sum int64
			for _, c := range row {
				sum += c
			}
			if sum == 0 {
				continue
			}
			fmt.Fprintf(&b, "  %-*s  ", width, kinds[k])
			for i, c := range row {
				if i == from || (i == to && to > from) {
					b.WriteRune('│')
				}
				b.WriteString(bar(c, top))
			}
			fmt.Fprintf(&b, "  %s\n", strconv.FormatInt(sum, 10))
		}
	}
	fmt.Fprintf(&b, "one bar per %s, the fault between the marks; full height = %d requests\n", millis(tl.BucketMs), top)
	return b.String()
}
