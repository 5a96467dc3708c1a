package productapi

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratelab/ratelab/internal/redisconn"
)

// DefaultProbeTimeout is the budget of the probe that confirms an outage when
// Config.ProbeTimeout is 0. It is long next to a check's budget on purpose: a node
// whose own CPU is starved (a burst of its own, a noisy neighbour, a container's CPU
// quota) misses short deadlines although Redis is healthy.
const DefaultProbeTimeout = time.Second

// outage decides, on evidence, whether Redis is failing: an outage is declared when
// a probe (Config.Health) fails while no check has succeeded since the probe began,
// or, without a probe, when checks have failed for ProbeTimeout with no success
// between. One slow check, a burst that starves the pool, a probe that fails while
// checks succeed, or a probe whose timeout this process noticed late (it was not
// running, so the probe says nothing about Redis) declares nothing. A successful
// check or probe ends the outage. Each outage is logged once when it starts and once
// when it ends, with its duration.
type outage struct {
	probe   func(ctx context.Context) error
	budget  time.Duration
	log     *slog.Logger
	what    string // what the fail mode does, for the log
	onStart func()
	onEnd   func()

	down        atomic.Bool
	lastSuccess atomic.Int64 // unix nanoseconds of the last successful check or probe
	firstFail   atomic.Int64 // unix nanoseconds of the first failure since the last success; 0 for none
	probing     atomic.Bool
	probes      sync.WaitGroup

	mu    sync.Mutex
	since time.Time
}

// declared reports whether an outage is declared.
func (o *outage) declared() bool { return o.down.Load() }

// succeeded records a check or probe that Redis answered.
func (o *outage) succeeded() {
	o.lastSuccess.Store(time.Now().UnixNano())
	if o.firstFail.Load() != 0 {
		o.firstFail.Store(0)
	}
	if o.down.Load() {
		o.end()
	}
}

// failed records a check that failed (not for overload) and gathers evidence: a probe
// when there is one, else the time since checks began failing.
func (o *outage) failed(err error) {
	if o.down.Load() {
		return
	}
	now := time.Now()
	if o.probe == nil {
		first := o.firstFail.Load()
		if first == 0 {
			o.firstFail.CompareAndSwap(0, now.UnixNano())
			return
		}
		if now.Sub(time.Unix(0, first)) >= o.budget {
			o.start(err)
		}
		return
	}
	if !o.probing.CompareAndSwap(false, true) {
		return
	}
	o.probes.Add(1)
	go func() {
		defer o.probes.Done()
		defer o.probing.Store(false)
		ctx, cancel := context.WithDeadline(context.Background(), now.Add(o.budget))
		defer cancel()
		o.probed(now, o.budget, o.probe(ctx))
	}()
}

// probed weighs the result of a probe that began at began with the given budget.
func (o *outage) probed(began time.Time, budget time.Duration, err error) {
	if err == nil {
		o.succeeded()
		return
	}
	late := time.Since(began) > budget+budget/4
	timedOut := redisconn.Diagnose(err).Kind == redisconn.KindTimeout
	if timedOut && late {
		o.log.Debug("a probe timed out, but this process noticed it late: no evidence against Redis", "took", time.Since(began))
		return
	}
	if time.Unix(0, o.lastSuccess.Load()).Before(began) {
		o.start(err)
	}
}

func (o *outage) start(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down.Load() {
		return
	}
	o.since = time.Now()
	o.down.Store(true)
	o.onStart()
	o.log.Warn("rate limiter unavailable: Redis is failing; "+o.what+" until Redis answers again",
		"reason", redisconn.Diagnose(err).Why, "err", redisconn.Explain(err, "for the rate limiter"))
}

func (o *outage) end() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down.Load() {
		return
	}
	o.down.Store(false)
	o.onEnd()
	o.log.Info("rate limiter available again; limits apply", "outage", time.Since(o.since).Round(time.Millisecond))
}

// wait waits for the probes in flight, which are bounded by the probe budget.
func (o *outage) wait() { o.probes.Wait() }
