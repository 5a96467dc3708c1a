package scenario

import (
	"context"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Status is what became of one request.
type Status uint8

// The statuses a Starter reports.
const (
	// Allowed: the API served the request.
	Allowed Status = iota
	// Denied: the API refused it with 429.
	Denied
	// Failed: a transport error or a server error.
	Failed
	// Cancelled: the run stopped (Ctrl-C, or the drain time ran out) before the answer came.
	Cancelled
)

// A Starter sends a request without waiting for its answer: Start returns once the
// request is written (waited reports that it first waited for a free connection) and
// calls done once with what became of it: from another goroutine once the answer
// comes, or before Start returns when the request could not be written. Abort
// makes the requests in flight end now, reported Cancelled.
type Starter interface {
	Start(ctx context.Context, a Arrival, done func(Status)) (waited bool, err error)
	Abort()
}

// Defaults for a Runner.
const (
	// DefaultWorkers bounds the requests in flight: the connections a target keeps
	// open per node.
	DefaultWorkers   = 512
	DefaultLateAfter = time.Millisecond
	DefaultDrain     = 10 * time.Second
	// interruptGrace is how long requests in flight may finish after Ctrl-C.
	interruptGrace = time.Second
	// preciseBelow is the wait under which the pacer sleeps precisely (see sleepShort).
	preciseBelow = 2 * time.Millisecond
)

// Runner sends a schedule open loop: a pacer, on a real-time thread where the OS
// permits it, follows the schedule and writes each request itself, at its intended
// time, through a Starter. When every connection is busy the pacer waits, the requests
// it holds go out late, and the lateness is counted and included in their latency:
// end-to-end latency is measured from each request's intended send time, so a
// saturated generator cannot hide (no coordinated omission).
type Runner struct {
	Schedule *Schedule
	// Starter sends: Start returns once the request is written, and a send is late
	// when its write is.
	Starter Starter
	// LateAfter is how far behind its intended time a request may go out before it
	// counts as a late send (DefaultLateAfter when 0).
	LateAfter time.Duration
	// Drain is how long requests in flight may take after the last send before they
	// are cancelled (DefaultDrain when 0).
	Drain time.Duration
	// Progress, when set, is called after each sent request, from one goroutine.
	Progress func()
}

// Result is what one run of a schedule measured.
type Result struct {
	Sent      int64 `json:"sent"`
	Allowed   int64 `json:"allowed"`
	Denied    int64 `json:"denied"`
	Errors    int64 `json:"errors"`
	Cancelled int64 `json:"cancelled"`
	// Late counts requests that went out more than LateAfter after their intended time.
	Late int64 `json:"late_sends"`
	// Elapsed is the sending phase: from the start until the last request was sent
	// and the schedule's duration was over (or the run was interrupted).
	Elapsed time.Duration `json:"elapsed"`
	// AchievedRPS is Sent / Elapsed.
	AchievedRPS float64 `json:"achieved_rps"`
	// Interrupted reports that the context was cancelled before the schedule ended.
	Interrupted bool `json:"interrupted"`
	// FirstSend and LastSend are when the first and the last request were written
	// (zero when none was): with Interrupted, LastSend tells how soon the pacer stopped.
	FirstSend time.Time `json:"-"`
	LastSend  time.Time `json:"-"`
	// E2E is the end-to-end latency from intended send time to answer, merged over the answers.
	E2E *hdrhistogram.Histogram `json:"-"`
	// SendLag is how far behind its intended time each request went out.
	SendLag *hdrhistogram.Histogram `json:"-"`
	// PacerLag is how far behind its intended time the pacer was ready to write each
	// request; PacerLate counts those more than LateAfter behind. PoolFull counts the
	// sends that found every connection busy and waited. With PoolFull at 0, the
	// pacer's lag is the OS running it late: the machine, not the generator's pool.
	PacerLag  *hdrhistogram.Histogram `json:"-"`
	PacerLate int64                   `json:"pacer_late"`
	PoolFull  int64                   `json:"pool_full"`
	// PacerRealtime reports that the pacer ran on a real-time (SCHED_FIFO) thread; it
	// needs CAP_SYS_NICE or an RLIMIT_RTPRIO allowance, and Linux.
	PacerRealtime bool `json:"pacer_realtime"`
}

// answers counts what became of requests, and their end-to-end latency.
type answers struct {
	allowed, denied, errors, cancelled int64
	e2e                                *hdrhistogram.Histogram
}

// answer counts one request's status; an answered one's latency runs from intended.
func (a *answers) answer(st Status, intended time.Time) {
	switch st {
	case Allowed:
		a.allowed++
	case Denied:
		a.denied++
	case Failed:
		a.errors++
	case Cancelled:
		a.cancelled++
		return
	}
	record(a.e2e, time.Since(intended))
}

// addTo adds the counts and the latencies to res.
func (a *answers) addTo(res *Result) {
	res.Allowed += a.allowed
	res.Denied += a.denied
	res.Errors += a.errors
	res.Cancelled += a.cancelled
	res.E2E.Merge(a.e2e)
}

// due waits until request sent is due and returns its intended time, having recorded
// how late the pacer was ready for it. It returns false when the schedule is over, or
// when ctx ends first (res.Interrupted is then set). ctx is looked at before every
// wait, the short ones included: at 1000 rps every gap is under preciseBelow, and a
// cancel must stop the pacer within one gap, not at the end of the schedule.
func (r Runner) due(ctx context.Context, start time.Time, sent int, lateAfter time.Duration, timer *time.Timer, res *Result) (time.Time, bool) {
	done := ctx.Done()
	for {
		select {
		case <-done:
			res.Interrupted = true
			return time.Time{}, false
		default:
		}
		wait, stop := r.Schedule.Pace(time.Since(start), sent)
		switch {
		case stop:
			return time.Time{}, false
		case wait > preciseBelow:
			// A runtime timer for the long waits, woken early by a cancel; the last
			// stretch in sleepShort, to the request's intended time.
			timer.Reset(wait - preciseBelow)
			select {
			case <-done:
				res.Interrupted = true
				return time.Time{}, false
			case <-timer.C:
			}
		case wait > 0:
			sleepShort(wait)
		default:
			intended := start.Add(r.Schedule.Arrivals[sent].At)
			lag := time.Since(intended)
			record(res.PacerLag, lag)
			if lag > lateAfter {
				res.PacerLate++
			}
			return intended, true
		}
	}
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// startedStats is one shard of what the answers to started requests said.
type startedStats struct {
	mu sync.Mutex
	answers
}

// startedShards spreads the answers' bookkeeping over locks.
const startedShards = 32

// Run sends the schedule with schedule time 0 at start (which may be in the future)
// and returns what it measured: the pacer writes each request itself, at its intended
// time, and the answers are counted as they come. Cancelling ctx stops the sending;
// requests in flight get a moment to finish, and the result covers what was sent.
func (r Runner) Run(ctx context.Context, start time.Time) Result {
	lateAfter := cmpOr(r.LateAfter, DefaultLateAfter)
	drain := cmpOr(r.Drain, DefaultDrain)
	arrivals := r.Schedule.Arrivals
	var shards [startedShards]startedStats
	for i := range shards {
		shards[i].e2e = NewE2EHistogram()
	}
	var inFlight sync.WaitGroup
	res := Result{PacerLag: NewE2EHistogram(), SendLag: NewE2EHistogram()}
	paced := make(chan struct{})
	go func() {
		defer close(paced)
		res.PacerRealtime = realtimePacer()
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for {
			i := int(res.Sent)
			intended, ok := r.due(ctx, start, i, lateAfter, timer, &res)
			if !ok {
				return
			}
			sh := &shards[i%startedShards]
			inFlight.Add(1)
			waited, err := r.Starter.Start(ctx, arrivals[i], func(st Status) {
				defer inFlight.Done()
				sh.mu.Lock()
				defer sh.mu.Unlock()
				sh.answer(st, intended)
			})
			if err != nil {
				inFlight.Done()
				res.Interrupted = true
				return
			}
			// The request is written: that is its send.
			sentAt := time.Now()
			sendLag := sentAt.Sub(intended)
			record(res.SendLag, sendLag)
			if sendLag > lateAfter {
				res.Late++
			}
			if waited {
				res.PoolFull++
			}
			if res.Sent == 0 {
				res.FirstSend = sentAt
			}
			res.LastSend = sentAt
			res.Sent++
			if r.Progress != nil {
				r.Progress()
			}
		}
	}()
	<-paced
	res.Elapsed = max(0, time.Since(start))

	grace := drain
	if res.Interrupted {
		grace = min(grace, interruptGrace)
	}
	answered := make(chan struct{})
	go func() { inFlight.Wait(); close(answered) }()
	select {
	case <-answered:
	case <-time.After(grace):
		r.Starter.Abort()
		<-answered
	}

	res.E2E = NewE2EHistogram()
	for i := range shards {
		sh := &shards[i]
		sh.addTo(&res)
	}
	if res.Elapsed > 0 {
		res.AchievedRPS = float64(res.Sent) / res.Elapsed.Seconds()
	}
	return res
}
