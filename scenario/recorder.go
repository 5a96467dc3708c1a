package scenario

import (
	"context"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ratelab/ratelab/algorithms"
)

const recorderShards = 16

// Recorder collects what the limiters decided during one run: each identity's
// admitted server times (for the burst analysis), the count of decisions and of
// limiter errors, and the latency of every check. It is safe for concurrent use.
type Recorder struct {
	index  map[string]int
	shards [recorderShards]recorderShard
	// bucket, when above 0, counts every decision per interval of that many
	// microseconds (recorder_buckets.go).
	bucket int64
}

type recorderShard struct {
	mu       sync.Mutex
	latency  *hdrhistogram.Histogram
	admitted map[int][]int64
	checks   Checks
	buckets  map[int64]*[2]int64
}

// Checks counts the limiter's own answers, as the nodes saw them.
type Checks struct {
	Allowed int64 `json:"allowed"`
	Denied  int64 `json:"denied"`
	// Errors are checks that returned an error (Redis unreachable, say): the node then
	// failed open or closed, as its API decides.
	Errors int64 `json:"errors"`
	// Unknown are decisions for identities that are not the run's.
	Unknown int64 `json:"unknown"`
}

// NewRecorder returns a Recorder for the run's identities.
func NewRecorder(identities []string) *Recorder {
	r := &Recorder{index: make(map[string]int, len(identities))}
	for i, id := range identities {
		r.index[id] = i
	}
	for i := range r.shards {
		r.shards[i].latency = NewCheckHistogram()
		r.shards[i].admitted = make(map[int][]int64)
	}
	return r
}

// Wrap returns l with every Allow timed and its decision recorded.
func (r *Recorder) Wrap(l algorithms.Limiter) algorithms.Limiter { return recordingLimiter{l, r} }

// Record notes one decision for identity at the server time t (microseconds), taking
// took; err is the limiter's error, if any. Wrap calls it; a sender that reads
// decisions from responses calls it with took 0, which records no latency.
func (r *Recorder) Record(identity string, t int64, allowed bool, took time.Duration, err error) {
	id, ok := r.index[identity]
	if !ok {
		if n, nerr := algorithms.NormalizeIdentity(identity); nerr == nil {
			id, ok = r.index[n]
		}
	}
	sh := &r.shards[max(0, id)%recorderShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if took > 0 {
		record(sh.latency, took)
	}
	if r.bucket > 0 && err == nil && ok {
		sh.count(t/r.bucket, allowed)
	}
	switch {
	case err != nil:
		sh.checks.Errors++
	case !ok:
		sh.checks.Unknown++
	case allowed:
		sh.checks.Allowed++
		sh.admitted[id] = append(sh.admitted[id], t)
	default:
		sh.checks.Denied++
	}
}

// Reset forgets everything recorded so far (a warm-up's decisions).
func (r *Recorder) Reset() {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.latency.Reset()
		sh.admitted = make(map[int][]int64)
		sh.checks = Checks{}
		sh.buckets = nil
		sh.mu.Unlock()
	}
}

// Checks sums the decisions recorded so far.
func (r *Recorder) Checks() Checks {
	var c Checks
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		c.Allowed += sh.checks.Allowed
		c.Denied += sh.checks.Denied
		c.Errors += sh.checks.Errors
		c.Unknown += sh.checks.Unknown
		sh.mu.Unlock()
	}
	return c
}

// Latency merges the per-check latency recorded so far.
func (r *Recorder) Latency() *hdrhistogram.Histogram {
	h := NewCheckHistogram()
	for i := range r.shards {
		r.shards[i].mu.Lock()
		h.Merge(r.shards[i].latency)
		r.shards[i].mu.Unlock()
	}
	return h
}

// Admitted returns each identity's admitted times (microseconds), indexed like the
// identities, in no particular order.
func (r *Recorder) Admitted() [][]int64 {
	out := make([][]int64, len(r.index))
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for id, times := range sh.admitted {
			out[id] = append([]int64(nil), times...)
		}
		sh.mu.Unlock()
	}
	return out
}

// recordingLimiter is the decorator Wrap returns.
type recordingLimiter struct {
	algorithms.Limiter
	rec *Recorder
}

func (l recordingLimiter) Allow(ctx context.Context, identity string) (algorithms.Decision, error) {
	start := time.Now()
	d, err := l.Limiter.Allow(ctx, identity)
	l.rec.Record(identity, d.TimeMicros, d.Allowed, max(time.Since(start), time.Nanosecond), err)
	return d, err
}
