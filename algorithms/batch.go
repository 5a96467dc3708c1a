package algorithms

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of WithBatching.
const (
	// DefaultBatchInFlight is how many round trips a batching limiter keeps in flight
	// at once unless WithBatching says otherwise.
	DefaultBatchInFlight = 4
	// DefaultBatchSize is the most checks one round trip carries unless WithBatching
	// says otherwise.
	DefaultBatchSize = 128
)

//go:embed lua/batch.lua
var batchLua string

// batchScript decides the checks of one batch in one call on a standalone server:
// the prelude's helpers, each algorithm's script as a function, and batch.lua.
var batchScript = redis.NewScript(composed("ratelab batched checks, generated from the algorithms' scripts (algorithms/batch.go)",
	"local function multi(KEYS, ARGV)\n"+multiLua+"\nend\n"+batchLua))

// multiBatch is the batcher's algorithm for a policy's combined checks.
const multiBatch = "multi"

// pipeliner is what a batching limiter needs of its client beyond redis.Scripter:
// *redis.Client and *redis.ClusterClient (whose pipelines go one per master) have it.
type pipeliner interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
}

// batcher sends the checks of one limiter that arrive while its round trips are in
// flight together, several per round trip ("natural" batching): a check that
// finds a round trip free goes at once, alone, on its own context, so that a lone
// check costs what an unbatched one does; checks that come while every round trip is
// busy queue, and the next round trip to finish takes up to maxSize of them.
//
// A batch goes as one call of batchScript when algorithm is set (an algorithm's
// name, or multiBatch for combined checks; a standalone server, where the call's keys
// may lie in any slot), else as a pipeline of the script's calls (a cluster, where
// go-redis sends the pipeline one part per master).
type batcher struct {
	rdb         pipeliner
	script      *redis.Script
	algorithm   string
	maxInFlight int
	maxSize     int
	// onQueue and onSend, when set (tests), are called after a check queues and
	// with each batch's size before it is sent.
	onQueue func()
	onSend  func(n int)

	mu       sync.Mutex
	queue    []*call
	inFlight int
	// failing is set while the latest round trip to finish failed: then no check goes
	// alone on its own context (which would cost its connection at its deadline, see
	// batchLinger), every check goes through the queue, until a round trip succeeds.
	failing bool

	roundTrips, batched atomic.Int64
}

// call is one check waiting for its answer.
type call struct {
	ctx  context.Context
	keys []string
	args []any
	// state is callWaiting until a batch takes the call (callSent) or its caller gives
	// up on it first (callAbandoned): a call never sent consumes nothing.
	state atomic.Int32
	res   []int64
	err   error
	done  chan struct{}
}

const (
	callWaiting int32 = iota
	callSent
	callAbandoned
)

// run runs the script on keys with args, batched with the other checks in flight.
// It returns when the answer comes or ctx ends, whichever is first.
func (b *batcher) run(ctx context.Context, keys []string, args []any) ([]int64, error) {
	b.mu.Lock()
	if b.inFlight < b.maxInFlight && len(b.queue) == 0 && !b.failing {
		// Nothing waits and a round trip is free: go now, alone, as an unbatched check.
		b.inFlight++
		b.mu.Unlock()
		b.roundTrips.Add(1)
		res, err := b.script.Run(ctx, b.rdb, keys, args...).Int64Slice()
		b.next(err != nil && !isReply(err))
		return res, err
	}
	c := &call{ctx: ctx, keys: keys, args: args, done: make(chan struct{})}
	if len(b.queue) == cap(b.queue) && len(b.queue) >= b.maxSize {
		b.compact()
	}
	b.queue = append(b.queue, c)
	if b.inFlight < b.maxInFlight {
		b.inFlight++
		batch := b.take()
		b.mu.Unlock()
		go b.drain(batch)
	} else {
		b.mu.Unlock()
	}
	if b.onQueue != nil {
		b.onQueue()
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		if c.state.CompareAndSwap(callWaiting, callAbandoned) {
			return nil, ctx.Err()
		}
		// Already sent: its answer may be on the way, but the caller's budget is over,
		// as it would be for an unbatched check cut short.
		select {
		case <-c.done:
			return c.res, c.err
		default:
			return nil, ctx.Err()
		}
	}
}

// next hands the round trip that just finished (failed, or not) to the checks that
// queued meanwhile, or frees it.
func (b *batcher) next(failed bool) {
	b.mu.Lock()
	b.failing = failed
	if len(b.queue) == 0 {
		b.inFlight--
		b.mu.Unlock()
		return
	}
	batch := b.take()
	b.mu.Unlock()
	go b.drain(batch)
}

// drain sends batch, then the checks that queued while it was in flight, until none
// wait, and frees its round trip.
func (b *batcher) drain(batch []*call) {
	for {
		if len(batch) > 0 {
			failed := b.send(batch)
			b.mu.Lock()
			b.failing = failed
		} else {
			b.mu.Lock()
		}
		if len(b.queue) == 0 {
			b.inFlight--
			b.mu.Unlock()
			return
		}
		batch = b.take()
		b.mu.Unlock()
	}
}

// isReply says whether err is an answer of the server (a script's error, NOSCRIPT):
// the round trip itself worked.
func isReply(err error) bool {
	var e redis.Error
	return errors.As(err, &e)
}

// take removes up to maxSize calls from the queue and marks them sent, leaving out
// those whose callers gave up. b.mu is held.
func (b *batcher) take() []*call {
	n := min(len(b.queue), b.maxSize)
	batch := make([]*call, 0, n)
	for _, c := range b.queue[:n] {
		if c.state.CompareAndSwap(callWaiting, callSent) {
			batch = append(batch, c)
		}
	}
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// compact drops the calls whose callers gave up from the queue, before it would
// grow: while Redis stalls, checks time out in the queue faster than batches leave,
// and their calls must not pile up. b.mu is held.
func (b *batcher) compact() {
	kept := b.queue[:0]
	for _, c := range b.queue {
		if c.state.Load() == callWaiting {
			kept = append(kept, c)
		}
	}
	clear(b.queue[len(kept):])
	b.queue = kept
}

// send runs batch in one pipeline (on a cluster, one per master) and answers each
// call. A call the server answers NOSCRIPT (its script cache was flushed) is sent
// again with EVAL, which loads the script: a flush costs a round trip, not a check.
func (b *batcher) send(batch []*call) (failed bool) {
	if b.onSend != nil {
		b.onSend(len(batch))
	}
	b.roundTrips.Add(1)
	b.batched.Add(int64(len(batch)))
	ctx, cancel := batchContext(batch)
	defer cancel()
	if b.algorithm != "" {
		return b.sendCombined(ctx, batch)
	}
	cmds := make([]*redis.Cmd, len(batch))
	pipe := b.rdb.Pipeline()
	for i, c := range batch {
		cmds[i] = b.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, err := pipe.Exec(ctx)
	failed = err != nil && !isReply(err)
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
			continue
		}
		batch[i].answer(cmd)
	}
	if len(again) == 0 {
		return failed
	}
	b.roundTrips.Add(1)
	pipe = b.rdb.Pipeline()
	for _, i := range again {
		cmds[i] = b.script.Eval(ctx, pipe, batch[i].keys, batch[i].args...)
	}
	_, err = pipe.Exec(ctx)
	for _, i := range again {
		batch[i].answer(cmds[i])
	}
	return err != nil && !isReply(err)
}

// sendCombined runs batch as one call of batchScript: one script run decides every
// check in turn, as their own scripts would one after the other, which costs Redis
// one command's dispatch, reply and Lua call for the batch instead of one for each
// check. A check that fails in the script gets its own error; an error of the call
// (a timeout, a dead connection) reaches every check.
func (b *batcher) sendCombined(ctx context.Context, batch []*call) (failed bool) {
	keys := make([]string, 0, len(batch)*len(batch[0].keys))
	args := make([]any, 1, 1+len(batch)*(2+len(batch[0].args)))
	args[0] = b.algorithm
	for _, c := range batch {
		keys = append(keys, c.keys...)
		args = append(args, len(c.keys), len(c.args))
		args = append(args, c.args...)
	}
	cmd := batchScript.EvalSha(ctx, b.rdb, keys, args...)
	if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
		b.roundTrips.Add(1)
		cmd = batchScript.Eval(ctx, b.rdb, keys, args...)
	}
	replies, err := cmd.Slice()
	if err == nil && len(replies) != len(batch) {
		err = fmt.Errorf("%w: %d replies to a batch of %d checks", ErrBadReply, len(replies), len(batch))
	}
	for i, c := range batch {
		if err != nil {
			c.err = err
		} else {
			c.res, c.err = int64Reply(replies[i])
		}
		close(c.done)
	}
	return err != nil && !isReply(err)
}

// int64Reply is one check's reply inside a batch's: its values, or its error.
func int64Reply(v any) ([]int64, error) {
	switch v := v.(type) {
	case error:
		return nil, v
	case []any:
		res := make([]int64, len(v))
		for i, x := range v {
			n, ok := x.(int64)
			if !ok {
				return nil, fmt.Errorf("%w: value %d is %T", ErrBadReply, i, x)
			}
			res[i] = n
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w: a check's reply is %T", ErrBadReply, v)
}

func (c *call) answer(cmd *redis.Cmd) {
	c.res, c.err = cmd.Int64Slice()
	close(c.done)
}

// batchLinger is how long a batch's round trip may outlast the latest deadline of
// its checks. The checks return at their own deadlines whatever the round trip does.
// A round trip cut off at theirs would cost its connection (the client closes a
// connection whose reply may still come), and while Redis stalls every round trip
// would then dial a new one, hundreds a second, all torn down together when Redis
// answers again: work that lands on the checks of that moment and makes them late.
// Lingering, a stalled Redis holds at most maxInFlight round trips of a limiter; the
// checks that come meanwhile wait in the queue and give up there, never sent.
const batchLinger = time.Second

// batchContext is the context of one round trip: no one check's cancellation ends it
// (each check waits on its own context), and it lasts until batchLinger past the
// latest deadline of its checks, or without one when any check has none (the
// client's read and write timeouts still bound it).
func batchContext(batch []*call) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			return context.WithoutCancel(batch[0].ctx), func() {}
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest.Add(batchLinger))
}
