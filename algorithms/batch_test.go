package algorithms_test

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redistest"
)

// holdHook holds the first lone EVALSHA until release is closed (after closing
// held), so that the checks that come meanwhile queue behind it; beforeBatch, when
// set, runs before each batch is sent: a pipeline of scripts (a cluster) or one call
// of the batch script (a standalone server).
type holdHook struct {
	held, release chan struct{}
	once          sync.Once
	beforeBatch   func(cmds []redis.Cmder)
}

// isBatchCall says whether cmd calls the script that decides a standalone batch.
func isBatchCall(cmd redis.Cmder) bool {
	args := cmd.Args()
	if len(args) < 2 {
		return false
	}
	switch cmd.Name() {
	case "evalsha":
		return args[1] == algorithms.BatchScriptSHA()
	case "eval":
		src, _ := args[1].(string)
		return fmt.Sprintf("%x", sha1.Sum([]byte(src))) == algorithms.BatchScriptSHA()
	}
	return false
}

// checksIn is how many checks cmd carries: its keys for a batch call, else one.
func checksIn(cmd redis.Cmder) int {
	if !isBatchCall(cmd) {
		return 1
	}
	n, _ := strconv.Atoi(fmt.Sprint(cmd.Args()[2]))
	return n
}

func newHoldHook() *holdHook {
	return &holdHook{held: make(chan struct{}), release: make(chan struct{})}
}

func (h *holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "evalsha" {
			h.once.Do(func() { close(h.held); <-h.release })
		}
		if h.beforeBatch != nil && isBatchCall(cmd) {
			h.beforeBatch([]redis.Cmder{cmd})
		}
		return next(ctx, cmd)
	}
}

func (h *holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		// A new connection's handshake is a pipeline too; only batches count.
		if h.beforeBatch != nil && len(cmds) > 0 && strings.HasPrefix(cmds[0].Name(), "eval") {
			h.beforeBatch(cmds)
		}
		return next(ctx, cmds)
	}
}

// hookedClient is a client of its own to b with h on it.
func hookedClient(t *testing.T, b redistest.Backend, h *holdHook) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if b.Name == "cluster" {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs})
	} else {
		c = redis.NewClient(&redis.Options{Addr: b.Addrs[0]})
	}
	c.AddHook(h)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type result struct {
	d   algorithms.Decision
	err error
}

// queueBehind starts one check that the hook holds in flight, then n checks (of
// ids(i), each on a context of its own) that queue behind it, and returns once all n
// have queued: the held check's answer, the n answers and the n cancel functions.
func queueBehind(t *testing.T, lim *algorithms.Redis, h *holdHook, first string, n int, ids func(i int) string) (<-chan result, []chan result, []context.CancelFunc, <-chan int) {
	t.Helper()
	queued := make(chan struct{}, n)
	sizes := make(chan int, n+1)
	algorithms.SetBatchHooks(lim, func() { queued <- struct{}{} }, func(k int) { sizes <- k })
	held := make(chan result, 1)
	go func() {
		d, err := lim.Allow(context.Background(), first)
		held <- result{d, err}
	}()
	<-h.held
	answers := make([]chan result, n)
	cancels := make([]context.CancelFunc, n)
	for i := range answers {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		answers[i], cancels[i] = make(chan result, 1), cancel
		go func() {
			d, err := lim.Allow(ctx, ids(i))
			answers[i] <- result{d, err}
		}()
	}
	for range n {
		<-queued
	}
	return held, answers, cancels, sizes
}

func batchBackends(t *testing.T) []redistest.Backend {
	t.Helper()
	redistest.RequireServer(t)
	return []redistest.Backend{redistest.Standalone(t), redistest.Cluster(t)}
}

// TestBatchCancelledCheckLeavesNeighbours: of checks queued for one batch, one whose
// context ends returns at once with its context's error and consumes nothing; the
// batch goes without it and its neighbours are answered. One cancelled while its
// batch is in flight returns at once too; the others in that batch are answered.
func TestBatchCancelledCheckLeavesNeighbours(t *testing.T) {
	const id, n = "198.51.100.7", 10
	p := algorithms.Policy{Limit: 100, Window: time.Hour}
	for _, b := range batchBackends(t) {
		t.Run(b.Name+"/queued", func(t *testing.T) {
			h := newHoldHook()
			lim, err := algorithms.NewRedis(hookedClient(t, b, h), algorithms.MustKeyspace("batch-cancel-q"), algorithms.TokenBucket, p, algorithms.WithBatching(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			held, answers, cancels, sizes := queueBehind(t, lim, h, id, n, func(int) string { return id })
			cancels[3]()
			if r := <-answers[3]; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("the cancelled check answered %+v, %v; want context.Canceled", r.d, r.err)
			}
			close(h.release)
			if r := <-held; r.err != nil || !r.d.Allowed {
				t.Fatalf("the held check: %+v, %v", r.d, r.err)
			}
			for i, a := range answers {
				if i == 3 {
					continue
				}
				if r := <-a; r.err != nil || !r.d.Allowed {
					t.Errorf("check %d beside the cancelled one: %+v, %v", i, r.d, r.err)
				}
			}
			if k := <-sizes; k != n-1 {
				t.Errorf("the batch carried %d checks, want %d (all but the cancelled one)", k, n-1)
			}
			// The held check, 9 batched, and this one: 11 of 100 tokens taken.
			if d, err := lim.Allow(context.Background(), id); err != nil || d.Remaining != 89 {
				t.Fatalf("after the batch: %+v, %v; want 89 remaining (the cancelled check consumed nothing)", d, err)
			}
		})
		t.Run(b.Name+"/in-flight", func(t *testing.T) {
			h := newHoldHook()
			inPipe, releasePipe := make(chan struct{}), make(chan struct{})
			var once sync.Once
			h.beforeBatch = func([]redis.Cmder) { once.Do(func() { close(inPipe); <-releasePipe }) }
			lim, err := algorithms.NewRedis(hookedClient(t, b, h), algorithms.MustKeyspace("batch-cancel-f"), algorithms.TokenBucket, p, algorithms.WithBatching(1, 0))
			if err != nil {
				t.Fatal(err)
			}
			held, answers, cancels, _ := queueBehind(t, lim, h, id, n, func(int) string { return id })
			close(h.release)
			if r := <-held; r.err != nil {
				t.Fatal(r.err)
			}
			<-inPipe
			cancels[5]()
			if r := <-answers[5]; !errors.Is(r.err, context.Canceled) {
				t.Fatalf("the check cancelled in flight answered %+v, %v; want context.Canceled", r.d, r.err)
			}
			close(releasePipe)
			for i, a := range answers {
				if i == 5 {
					continue
				}
				if r := <-a; r.err != nil || !r.d.Allowed {
					t.Errorf("check %d beside the cancelled one: %+v, %v", i, r.d, r.err)
				}
			}
		})
	}
}

// TestBatchErrorReachesEveryCheck: when Redis dies under a batch, every check in it
// gets an error; none is left waiting or told it was allowed.
func TestBatchErrorReachesEveryCheck(t *testing.T) {
	redistest.RequireServer(t)
	b := redistest.Standalone(t)
	h := newHoldHook()
	c := redis.NewClient(&redis.Options{Addr: b.Addrs[0], MaxRetries: -1})
	c.AddHook(h)
	t.Cleanup(func() { _ = c.Close() })
	lim, err := algorithms.NewRedis(c, algorithms.MustKeyspace("batch-err"), algorithms.GCRA, algorithms.Policy{Limit: 100, Window: time.Hour}, algorithms.WithBatching(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	held, answers, _, _ := queueBehind(t, lim, h, "198.51.100.1", n, func(i int) string { return fmt.Sprintf("198.51.100.%d", i+2) })
	b.Server.Stop()
	close(h.release)
	if r := <-held; r.err == nil {
		t.Errorf("the held check succeeded on a dead server: %+v", r.d)
	}
	for i, a := range answers {
		if r := <-a; r.err == nil {
			t.Errorf("batched check %d succeeded on a dead server: %+v", i, r.d)
		}
	}
}

// TestBatchScriptFlushCostsNoCheck flushes the script cache just before a batch
// goes: its EVALSHAs are answered NOSCRIPT, sent again with EVAL, and no check fails.
func TestBatchScriptFlushCostsNoCheck(t *testing.T) {
	for _, b := range batchBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			h := newHoldHook()
			var flushed, evals atomic.Int64
			var once sync.Once
			h.beforeBatch = func(cmds []redis.Cmder) {
				once.Do(func() {
					if err := flushScripts(context.Background(), b.Client); err != nil {
						t.Error(err)
					}
					flushed.Add(1)
				})
				for _, c := range cmds {
					if c.Name() == "eval" {
						evals.Add(int64(checksIn(c)))
					}
				}
			}
			for _, name := range algorithms.Names() {
				lim, err := algorithms.NewRedis(hookedClient(t, b, h), algorithms.MustKeyspace("batch-flush"), name, algorithms.Policy{Limit: 1000, Window: time.Second}, algorithms.WithBatching(1, 0))
				if err != nil {
					t.Fatal(err)
				}
				h.held, h.release, h.once = make(chan struct{}), make(chan struct{}), sync.Once{}
				once = sync.Once{}
				evals.Store(0)
				const n = 30
				held, answers, _, _ := queueBehind(t, lim, h, "203.0.113.1", n, func(i int) string { return "203.0.113." + strconv.Itoa(i+2) })
				close(h.release)
				if r := <-held; r.err != nil {
					t.Fatalf("%s: the held check: %v", name, r.err)
				}
				for i, a := range answers {
					if r := <-a; r.err != nil {
						t.Errorf("%s: batched check %d after SCRIPT FLUSH: %v", name, i, r.err)
					}
				}
				if evals.Load() != n {
					t.Errorf("%s: %d checks sent again with EVAL, want all %d (the flush did not hit the batch)", name, evals.Load(), n)
				}
			}
		})
	}
}

func flushScripts(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.ScriptFlush(ctx).Err() })
	}
	return c.ScriptFlush(ctx).Err()
}

// TestBatchSmallPoolNoErrors: 2,000 checks at once on a limiter whose client has 4
// connections and almost no patience for one (PoolTimeout 1ms) all succeed with
// batching: the checks queue in the batcher, never for a connection, so a node's
// own load cannot fail a check (and so never fail one open). On the cluster the
// checks reach every master, by slot. Without batching, the same load fails checks.
func TestBatchSmallPoolNoErrors(t *testing.T) {
	const checks, pool = 2000, 4
	p := algorithms.Policy{Limit: 5, Window: time.Minute}
	for _, b := range batchBackends(t) {
		t.Run(b.Name, func(t *testing.T) {
			var c redis.UniversalClient
			if b.Name == "cluster" {
				c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: b.Addrs, PoolSize: pool, PoolTimeout: time.Millisecond})
			} else {
				c = redis.NewClient(&redis.Options{Addr: b.Addrs[0], PoolSize: pool, PoolTimeout: time.Millisecond})
			}
			t.Cleanup(func() { _ = c.Close() })
			before := evalshaCalls(t, b)
			for _, batched := range []bool{true, false} {
				if !batched && b.Name == "cluster" {
					continue
				}
				var opts []algorithms.Option
				if batched {
					opts = append(opts, algorithms.WithBatching(pool, 0))
				}
				lim, err := algorithms.NewRedis(c, algorithms.MustKeyspace("batch-pool-"+strconv.FormatBool(batched)), algorithms.SlidingLog, p, opts...)
				if err != nil {
					t.Fatal(err)
				}
				var errs, allowed atomic.Int64
				var firstErr atomic.Value
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range checks {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						d, err := lim.Allow(context.Background(), fmt.Sprintf("10.20.%d.%d", i%200/100, i%100))
						if err != nil {
							errs.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
							return
						}
						if d.Allowed {
							allowed.Add(1)
						}
					}()
				}
				close(start)
				wg.Wait()
				s := lim.Stats()
				switch {
				case batched && errs.Load() != 0:
					t.Fatalf("batched: %d of %d checks failed (first: %v)", errs.Load(), checks, firstErr.Load())
				case batched && allowed.Load() != 200*p.Limit:
					t.Fatalf("batched: %d admitted, want %d (5 for each of 200 identities)", allowed.Load(), 200*p.Limit)
				case batched && s.RoundTrips >= checks/4:
					t.Errorf("batched: %d round trips for %d checks", s.RoundTrips, checks)
				case !batched && errs.Load() == 0:
					t.Logf("unbatched: no check failed for want of a connection this time")
				}
				t.Logf("batched %v: %d errors, %d round trips for %d calls", batched, errs.Load(), s.RoundTrips, s.RedisCalls)
			}
			if b.Name == "cluster" {
				after := evalshaCalls(t, b)
				for i, addr := range b.Addrs {
					if after[i]-before[i] < checks/10 {
						t.Errorf("master %s ran %d of %d checks; the slots should spread them over all 3", addr, after[i]-before[i], checks)
					}
					t.Logf("master %s: %d checks", addr, after[i]-before[i])
				}
			}
		})
	}
}

// evalshaCalls is each server's count of EVALSHA calls (INFO commandstats).
func evalshaCalls(t *testing.T, b redistest.Backend) []int64 {
	t.Helper()
	calls := make([]int64, len(b.Addrs))
	for i, addr := range b.Addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		calls[i] = int64(infoNumber(t, infoFields(t, c, "commandstats"), "cmdstat_evalsha", "calls"))
		_ = c.Close()
	}
	return calls
}

// TestBatchQueueDropsGivenUpChecks: while a round trip is stuck, checks that time out
// in the queue do not pile up in it: the queue sheds them before it grows.
func TestBatchQueueDropsGivenUpChecks(t *testing.T) {
	redistest.RequireServer(t)
	b := redistest.Standalone(t)
	h := newHoldHook()
	lim, err := algorithms.NewRedis(hookedClient(t, b, h), algorithms.MustKeyspace("batch-shed"), algorithms.GCRA, algorithms.Policy{Limit: 100, Window: time.Hour}, algorithms.WithBatching(1, 4))
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	held, answers, cancels, _ := queueBehind(t, lim, h, "198.51.100.1", 1, func(int) string { return "198.51.100.2" })
	cancels[0]()
	<-answers[0]
	algorithms.SetBatchHooks(lim, nil, nil)
	for i := range n {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // gives up at once, after queueing
		if _, err := lim.Allow(ctx, fmt.Sprintf("198.51.%d.%d", 101+i/250, i%250)); !errors.Is(err, context.Canceled) {
			t.Fatalf("check %d: %v; want context.Canceled", i, err)
		}
	}
	if q := algorithms.QueuedChecks(lim); q > 64 {
		t.Fatalf("%d calls queued after %d checks gave up; the queue keeps what its callers abandoned", q, n)
	}
	close(h.release)
	if r := <-held; r.err != nil {
		t.Fatal(r.err)
	}
}

// TestBatchCheckErrorStaysItsOwn: a check that fails inside a batch (its key holds
// a value of another type, WRONGTYPE) gets its own error; the checks beside it in the
// same round trip are answered as if it were not there. On a standalone server the
// batch is one call of the batch script, on the cluster a pipeline: both are held to
// it, and so is the embedded Redis.
func TestBatchCheckErrorStaysItsOwn(t *testing.T) {
	const n, bad = 10, 4
	p := algorithms.Policy{Limit: 100, Window: time.Hour}
	id := func(i int) string { return "192.0.2." + strconv.Itoa(i+10) }
	for _, b := range allBackends(t) {
		for _, name := range algorithms.Names() {
			t.Run(b.Name+"/"+name, func(t *testing.T) {
				h := newHoldHook()
				sizes := make(chan int, 1)
				h.beforeBatch = func(cmds []redis.Cmder) {
					k := 0
					for _, c := range cmds {
						k += checksIn(c)
					}
					select {
					case sizes <- k:
					default:
					}
				}
				lim, err := algorithms.NewRedis(hookedClient(t, b, h), algorithms.MustKeyspace("batch-wrongtype"), name, p, algorithms.WithBatching(1, 0))
				if err != nil {
					t.Fatal(err)
				}
				key, err := lim.Key(id(bad))
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Client.RPush(context.Background(), key, "not a limiter's state").Err(); err != nil {
					t.Fatal(err)
				}
				held, answers, _, _ := queueBehind(t, lim, h, "192.0.2.1", n, id)
				close(h.release)
				first := <-held
				if first.err != nil || !first.d.Allowed {
					t.Fatalf("the held check: %+v, %v", first.d, first.err)
				}
				// Every other check is its identity's first, as the held one was.
				for i, a := range answers {
					r := <-a
					switch {
					case i == bad && (r.err == nil || !strings.Contains(r.err.Error(), "WRONGTYPE")):
						t.Errorf("the check of the list key answered %+v, %v; want a WRONGTYPE error", r.d, r.err)
					case i != bad && (r.err != nil || !r.d.Allowed || r.d.Remaining != first.d.Remaining):
						t.Errorf("check %d beside the failing one: %+v, %v; want allowed, %d remaining", i, r.d, r.err, first.d.Remaining)
					}
				}
				if k := <-sizes; k != n {
					t.Errorf("the batch carried %d checks, want all %d", k, n)
				}
			})
		}
	}
}

// TestBatchStallDoesNotChurnConnections: while Redis stalls (SIGSTOP), a batching
// limiter's checks still return at their own deadlines, but its round trips do not
// end with them and so keep their connections: a stalled Redis holds at most its
// round trips in flight, and the checks that come meanwhile give up in the queue.
// Cut off at each check's deadline, every round trip would cost a connection and the
// next would dial a new one, all of them torn down together when Redis answers
// again; so would a check that went alone after a round trip failed. Once Redis
// answers, the limiter decides again at once.
func TestBatchStallDoesNotChurnConnections(t *testing.T) {
	redistest.RequireServer(t)
	const inFlight, waves, perWave = 2, 12, 8
	for _, combined := range []bool{true, false} {
		t.Run(map[bool]string{true: "one-call", false: "pipelined"}[combined], func(t *testing.T) {
			b := redistest.Standalone(t)
			c := redis.NewClient(&redis.Options{Addr: b.Addrs[0], PoolSize: 16, ContextTimeoutEnabled: true, MaxRetries: -1})
			t.Cleanup(func() { _ = c.Close() })
			opts := []algorithms.Option{algorithms.WithBatching(inFlight, 0)}
			if !combined {
				opts = append(opts, algorithms.PipelinedBatches())
			}
			lim, err := algorithms.NewRedis(c, algorithms.MustKeyspace("batch-stall"), algorithms.GCRA, algorithms.Policy{Limit: 1000, Window: time.Second}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := lim.Allow(ctx, "198.51.100.1"); err != nil {
				t.Fatal(err)
			}
			before := connectionsReceived(t, b.Client)
			b.Server.Suspend()
			for w := range waves {
				var wg sync.WaitGroup
				for i := range perWave {
					wg.Go(func() {
						cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
						defer cancel()
						if d, err := lim.Allow(cctx, fmt.Sprintf("198.51.101.%d", w*perWave+i)); err == nil {
							t.Errorf("a check answered %+v while Redis was stopped", d)
						}
					})
				}
				wg.Wait()
			}
			b.Server.Resume()
			if d, err := lim.Allow(ctx, "198.51.100.1"); err != nil || !d.Allowed {
				t.Fatalf("the first check after the stall: %+v, %v", d, err)
			}
			dialed := connectionsReceived(t, b.Client) - before - 1 // the admin client's own
			t.Logf("%d waves of %d checks with a 5ms budget in a stall: %d connections dialed", waves, perWave, dialed)
			if dialed > inFlight+2 {
				t.Errorf("%d connections dialed during the stall for %d checks; a batching limiter holds at most %d round trips (and one lone check's)", dialed, waves*perWave, inFlight)
			}
		})
	}
}

// connectionsReceived is the server's total_connections_received (INFO stats).
func connectionsReceived(t *testing.T, c redis.UniversalClient) int64 {
	t.Helper()
	f := infoFields(t, c, "stats")
	if _, ok := f["total_connections_received"]; !ok {
		t.Fatal("INFO stats has no total_connections_received")
	}
	return int64(infoNumber(t, f, "total_connections_received", ""))
}
