package productapi

import (
	"context"
	"errors"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redisconn"
)

// errNoSlot is a check that found no free slot in time: this node had as many checks
// in flight as its Redis pool has connections, for half the check's budget.
var errNoSlot = errors.New("no free check slot in time: this node is overloaded")

// slots bound the limiter checks a node has in flight, so that its own load queues
// here, where it is seen as overload, rather than in the Redis pool, where it would
// look like a slow Redis.
type slots chan struct{}

// acquire takes a slot, waiting until by at most.
func (s slots) acquire(ctx context.Context, by time.Time) error {
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(by))
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errNoSlot
	case <-t.C:
		return errNoSlot
	}
}

func (s slots) release() { <-s }

// check runs one limiter check within the check budget, measured from one start: the
// deadline and the reported duration (Server-Timing, the histogram) begin together,
// the wait for a slot included. A check waits for a slot for at most half its budget,
// so that one that starts has time left to finish: a check cut short after Redis
// decided would consume a request the client never gets.
func (a *API) check(ctx context.Context, lim algorithms.Limiter, id string) (algorithms.Decision, time.Duration, error) {
	start := time.Now()
	deadline := start.Add(a.cfg.CheckTimeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	if err := a.slots.acquire(ctx, start.Add(a.cfg.CheckTimeout/2)); err != nil {
		return algorithms.Decision{}, time.Since(start), err
	}
	d, err := lim.Allow(ctx, id)
	took := time.Since(start)
	a.slots.release()
	return d, took, err
}

// failure is why a check failed, as far as the decision is concerned.
type failure int

const (
	// failOverload: the check never reached Redis in time because of this node's own
	// load (no check slot, no pool connection).
	failOverload failure = iota
	// failTimeout: Redis did not answer within the budget. One slow answer is no
	// evidence that Redis is failing.
	failTimeout
	// failRedis: Redis answered an error or the connection failed.
	failRedis
)

func classify(err error) failure {
	if errors.Is(err, errNoSlot) {
		return failOverload
	}
	switch redisconn.Diagnose(err).Kind {
	case redisconn.KindPoolTimeout:
		return failOverload
	case redisconn.KindTimeout:
		return failTimeout
	}
	return failRedis
}
