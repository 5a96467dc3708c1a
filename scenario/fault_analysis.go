package scenario

import (
	"slices"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

// FaultSpan is when a fault held during a run: from Start (from the run's start) for
// Duration, 0 for one that happens at an instant (a restart, a script flush).
type FaultSpan struct {
	Start, Duration time.Duration
}

// End is when the fault ended.
func (s FaultSpan) End() time.Duration { return s.Start + s.Duration }

// Measured is the span the fault's figures cover: the fault itself, and at least one
// window W from its start, so that an instant fault's consequences are counted too.
func (s FaultSpan) Measured(window time.Duration) (from, to time.Duration) {
	return s.Start, s.Start + max(s.Duration, window)
}

// FaultBucket is the timeline's bucket: a tenth of a second.
const FaultBucket = 100 * time.Millisecond

// faultMargin is how much of the run the timeline shows either side of the fault.
const faultMargin = 500 * time.Millisecond

// Judgement is what the nodes let through and refused in a span, judged against the
// exact sliding log of what was admitted: a request was within the limit when fewer
// than L of its identity's requests were admitted in the window W before it, (t−W, t).
type Judgement struct {
	// Requests were decided in the span; Admitted of them were served.
	Requests int64
	Admitted int64
	// OverLimitAttempts were over the limit; OverLimitAdmitted of them were served
	// anyway: abuse let through.
	OverLimitAttempts int64
	OverLimitAdmitted int64
	// WithinLimitAttempts were within the limit; WithinLimitRefused of them were not
	// served (429, fail-closed or any other refusal): good traffic lost.
	WithinLimitAttempts int64
	WithinLimitRefused  int64
}

// Judge counts, over the requests decided in [from, to), those admitted over the
// limit and those refused within it. events are every traced request of the run in
// time order: what was admitted before from counts toward the windows inside.
func Judge(events []TraceEvent, limit int64, window time.Duration, from, to time.Duration) Judgement {
	var j Judgement
	logs := map[int32][]time.Duration{}
	for _, e := range events {
		log := logs[e.Identity]
		// Drop what left the window (t−W, t]; the log is in time order.
		cut := 0
		for cut < len(log) && log[cut] <= e.At-window {
			cut++
		}
		log = log[cut:]
		within := int64(len(log)) < limit
		admitted := e.Outcome.Admitted()
		if e.At >= from && e.At < to {
			j.Requests++
			if admitted {
				j.Admitted++
			}
			switch {
			case within:
				j.WithinLimitAttempts++
				if !admitted {
					j.WithinLimitRefused++
				}
			default:
				j.OverLimitAttempts++
				if admitted {
					j.OverLimitAdmitted++
				}
			}
		}
		if admitted {
			log = append(log, e.At)
		}
		logs[e.Identity] = log
	}
	return j
}

// FaultTimeline counts the run's requests per FaultBucket through the fault, by how
// they were decided.
type FaultTimeline struct {
	// Start is the first bucket's start, from the run's start.
	Start  time.Duration
	Bucket time.Duration
	// Admitted and Denied were the limiter's decisions; FailOpen and FailClosed the
	// fail mode's; Local the in-memory limiter's (admitted or not); Errors the node's
	// own refusals.
	Admitted, Denied, FailOpen, FailClosed, Local, Errors []int64
}

// FaultAnalysis is what one fault did to one algorithm's run under one fail mode.
type FaultAnalysis struct {
	// From and To are the span the figures cover (FaultSpan.Measured).
	From, To time.Duration
	Judgement
	// How the requests of the span were decided.
	FailOpen, FailClosed, Local, Errors int64
	// PeakInWindow is the most requests admitted for one identity in any interval of
	// length W within the span.
	PeakInWindow int64
	// FailModePeakInWindow is the same for the requests a fail mode admitted (open or
	// local): what the nodes let through on their own.
	FailModePeakInWindow int64
	// CheckLatency is the limiter check's time in the span, as the nodes reported it.
	CheckLatency Latency
	// PreFaultCheckP99 is the checks' p99 before the fault (µs), of those Redis answered.
	PreFaultCheckP99 int64
	// Recovery is from the fault's end to the first request the limiter decided again
	// (its check succeeded); Recovered is false when none did before the run ended.
	Recovery  time.Duration
	Recovered bool
	// LatencyRecovery is from the fault's end to the start of the first FaultBucket
	// whose check p99 is back at or under PreFaultCheckP99; LatencyRecovered is false
	// when none was.
	LatencyRecovery  time.Duration
	LatencyRecovered bool
	Timeline         FaultTimeline
}

// AnalyzeFault measures one fault over a run's trace (events in time order), for the
// policy p, in a run whose schedule lasts runEnd.
func AnalyzeFault(events []TraceEvent, p algorithms.Policy, span FaultSpan, runEnd time.Duration) FaultAnalysis {
	from, to := span.Measured(p.Window)
	a := FaultAnalysis{From: from, To: to, Judgement: Judge(events, p.Limit, p.Window, from, to)}
	latency := NewCheckHistogram()
	var pre []int64
	admitted, byFailMode := map[int32][]int64{}, map[int32][]int64{}
	for _, e := range events {
		if e.At < span.Start && e.Outcome.ByLimiter() {
			pre = append(pre, e.Took.Microseconds())
		}
		if e.At < from || e.At >= to {
			continue
		}
		record(latency, e.Took)
		switch e.Outcome {
		case OutcomeFailOpen:
			a.FailOpen++
		case OutcomeFailClosed:
			a.FailClosed++
		case OutcomeLocalAllowed, OutcomeLocalDenied:
			a.Local++
		case OutcomeError:
			a.Errors++
		}
		if e.Outcome.Admitted() {
			admitted[e.Identity] = append(admitted[e.Identity], e.At.Microseconds())
			if !e.Outcome.ByLimiter() {
				byFailMode[e.Identity] = append(byFailMode[e.Identity], e.At.Microseconds())
			}
		}
	}
	for _, times := range admitted {
		a.PeakInWindow = max(a.PeakInWindow, PeakInInterval(times, p.Window.Microseconds()))
	}
	for _, times := range byFailMode {
		a.FailModePeakInWindow = max(a.FailModePeakInWindow, PeakInInterval(times, p.Window.Microseconds()))
	}
	if a.Requests > 0 {
		a.CheckLatency = Summarize(latency)
	}
	a.PreFaultCheckP99 = nearestRank(pre, 99)
	end := span.End()
	for _, e := range events {
		if e.At >= end && e.Outcome.ByLimiter() {
			a.Recovery, a.Recovered = e.At-end, true
			break
		}
	}
	a.LatencyRecovery, a.LatencyRecovered = latencyRecovery(events, end, runEnd, a.PreFaultCheckP99, len(pre) > 0)
	a.Timeline = faultTimeline(events, max(0, from-faultMargin).Truncate(FaultBucket), min(runEnd, to+faultMargin))
	return a
}

// latencyRecovery finds the first FaultBucket from end whose checks' p99 is at most
// pre (µs).
func latencyRecovery(events []TraceEvent, end, runEnd time.Duration, pre int64, known bool) (time.Duration, bool) {
	if !known {
		return 0, false
	}
	i, _ := slices.BinarySearchFunc(events, end, func(e TraceEvent, t time.Duration) int { return cmpDuration(e.At, t) })
	for start := end; start < runEnd && i < len(events); start += FaultBucket {
		var took []int64
		for ; i < len(events) && events[i].At < start+FaultBucket; i++ {
			took = append(took, events[i].Took.Microseconds())
		}
		if len(took) > 0 && nearestRank(took, 99) <= pre {
			return start - end, true
		}
	}
	return 0, false
}

func faultTimeline(events []TraceEvent, from, to time.Duration) FaultTimeline {
	n := int(max(0, (to-from+FaultBucket-1)/FaultBucket))
	tl := FaultTimeline{Start: from, Bucket: FaultBucket,
		Admitted: make([]int64, n), Denied: make([]int64, n), FailOpen: make([]int64, n),
		FailClosed: make([]int64, n), Local: make([]int64, n), Errors: make([]int64, n)}
	for _, e := range events {
		if e.At < from || e.At >= to {
			continue
		}
		b := int((e.At - from) / FaultBucket)
		switch e.Outcome {
		case OutcomeAllowed:
			tl.Admitted[b]++
		case OutcomeDenied:
			tl.Denied[b]++
		case OutcomeFailOpen:
			tl.FailOpen[b]++
		case OutcomeFailClosed:
			tl.FailClosed[b]++
		case OutcomeLocalAllowed, OutcomeLocalDenied:
			tl.Local[b]++
		default:
			tl.Errors[b]++
		}
	}
	return tl
}

// nearestRank is the q-th percentile of vs by the nearest-rank method (0 for none).
func nearestRank(vs []int64, q int) int64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	rank := (q*len(s) + 99) / 100
	return s[max(0, rank-1)]
}

func cmpDuration(a, b time.Duration) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
