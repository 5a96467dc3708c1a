package scenario

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunnerSendsEveryArrivalOnce(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.RPS, c.Duration = 2000, 300*time.Millisecond
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]atomic.Int32, len(s.Arrivals))
	idx := make(map[Arrival]int)
	for i, a := range s.Arrivals {
		idx[a] = i
	}
	var calls atomic.Int64
	send := func(_ context.Context, a Arrival) Status {
		calls.Add(1)
		if i, ok := idx[a]; ok {
			seen[i].Add(1)
		}
		switch a.Identity % 3 {
		case 0:
			return Allowed
		case 1:
			return Denied
		}
		return Failed
	}
	progress := 0
	res := Runner{Schedule: s, Starter: newSendStarter(send, 8), Progress: func() { progress++ }}.Run(context.Background(), time.Now())
	if res.Sent != int64(len(s.Arrivals)) || calls.Load() != res.Sent || progress != len(s.Arrivals) {
		t.Fatalf("sent %d, calls %d, progress %d; schedule has %d", res.Sent, calls.Load(), progress, len(s.Arrivals))
	}
	if res.Allowed+res.Denied+res.Errors != res.Sent || res.Allowed == 0 || res.Denied == 0 || res.Errors == 0 {
		t.Fatalf("outcomes do not add up: %+v", res)
	}
	if res.E2E.TotalCount() != res.Sent {
		t.Fatalf("%d latencies for %d requests", res.E2E.TotalCount(), res.Sent)
	}
	if res.Elapsed < c.Duration || res.Interrupted {
		t.Fatalf("the run ended after %s, before its duration %s (interrupted %v)", res.Elapsed, c.Duration, res.Interrupted)
	}
}

func TestRunnerCountsLateSendsWhenSaturated(t *testing.T) {
	t.Parallel()
	// One worker and a request that takes 20ms, scheduled 1ms apart: all but the first go out late.
	s := &Schedule{Config: Config{Duration: 10 * time.Millisecond}}
	for i := range 10 {
		s.Arrivals = append(s.Arrivals, Arrival{At: time.Duration(i) * time.Millisecond})
	}
	send := func(context.Context, Arrival) Status { time.Sleep(20 * time.Millisecond); return Allowed }
	res := Runner{Schedule: s, Starter: newSendStarter(send, 1)}.Run(context.Background(), time.Now())
	if res.Late < 9 {
		t.Fatalf("late sends %d; want at least 9 of 10", res.Late)
	}
	// The pool held the pacer up: it says so, and the hand-offs after the first wait
	// went out late from the pacer too.
	if res.PoolFull < 9 || res.PacerLate < 8 || res.PacerLag.TotalCount() != 10 {
		t.Fatalf("pool full %d times, pacer late %d of %d; want 9, at least 8, 10", res.PoolFull, res.PacerLate, res.PacerLag.TotalCount())
	}
	// Latency counts from the intended time: the last waited for nine before it.
	if res.E2E.Max() < (9 * 20 * time.Millisecond).Microseconds() {
		t.Fatalf("max latency %dµs hides the queueing", res.E2E.Max())
	}
}

func TestRunnerPoolFullOnlyWhenWorkersAreBusy(t *testing.T) {
	t.Parallel()
	// A worker for every request: one is always free, so the pacer is never held up,
	// however late a loaded machine runs the answers that free them.
	s := &Schedule{Config: Config{Duration: 40 * time.Millisecond}}
	for i := range 20 {
		s.Arrivals = append(s.Arrivals, Arrival{At: time.Duration(i) * 2 * time.Millisecond})
	}
	send := func(context.Context, Arrival) Status { return Allowed }
	res := Runner{Schedule: s, Starter: newSendStarter(send, 20)}.Run(context.Background(), time.Now())
	if res.Sent != 20 || res.PoolFull != 0 || res.PacerLag.TotalCount() != 20 {
		t.Fatalf("sent %d, pool full %d times, pacer lag for %d; want 20, 0, 20", res.Sent, res.PoolFull, res.PacerLag.TotalCount())
	}
}

func TestRunnerStopsOnCancel(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.Duration = time.Hour
	c.RPS = 10
	c.Pattern = PatternSteady
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	send := func(ctx context.Context, a Arrival) Status {
		if a.At > 0 {
			cancel()
			<-ctx.Done() // an answer that never comes: cancelled after the grace
			return Cancelled
		}
		return Allowed
	}
	res := Runner{Schedule: s, Starter: newSendStarter(send, DefaultWorkers)}.Run(ctx, time.Now())
	if !res.Interrupted || res.Sent != 2 || res.Allowed != 1 || res.Cancelled != 1 {
		t.Fatalf("after cancel: %+v", res)
	}
}

func TestRunnerStopsAtOnceWhenGapsAreShort(t *testing.T) {
	t.Parallel()
	// Requests 200µs apart: every wait is shorter than the pacer's precise sleep, and
	// the cancel after the tenth send must still stop it before the eleventh.
	s := &Schedule{Config: Config{Duration: time.Hour}}
	for i := range 100_000 {
		s.Arrivals = append(s.Arrivals, Arrival{At: time.Duration(i) * 200 * time.Microsecond})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int64
	st := &countingStarter{Starter: newSendStarter(func(context.Context, Arrival) Status { return Allowed }, 64),
		onStart: func() {
			if started.Add(1) == 10 {
				cancel()
			}
		}}
	res := Runner{Schedule: s, Starter: st}.Run(ctx, time.Now())
	if !res.Interrupted || res.Sent != 10 {
		t.Fatalf("cancelled after the tenth send: interrupted %v, sent %d; want 10", res.Interrupted, res.Sent)
	}
	if res.FirstSend.IsZero() || res.LastSend.Before(res.FirstSend) {
		t.Fatalf("first send %v, last send %v", res.FirstSend, res.LastSend)
	}
}

// countingStarter calls onStart after each request it starts.
type countingStarter struct {
	Starter
	onStart func()
}

func (c *countingStarter) Start(ctx context.Context, a Arrival, done func(Status)) (bool, error) {
	waited, err := c.Starter.Start(ctx, a, done)
	c.onStart()
	return waited, err
}

// sendStarter is a Starter of conns connections that answers each request with send,
// from a goroutine of its own: Start waits for a free connection when every one is
// busy (and says it waited), as HTTPTarget does.
type sendStarter struct {
	send  func(context.Context, Arrival) Status
	free  chan struct{}
	ctx   context.Context
	abort context.CancelFunc
}

func newSendStarter(send func(context.Context, Arrival) Status, conns int) *sendStarter {
	ctx, abort := context.WithCancel(context.Background())
	s := &sendStarter{send: send, free: make(chan struct{}, conns), ctx: ctx, abort: abort}
	for range conns {
		s.free <- struct{}{}
	}
	return s
}

func (s *sendStarter) Start(ctx context.Context, a Arrival, done func(Status)) (bool, error) {
	waited := false
	select {
	case <-s.free:
	default:
		waited = true
		select {
		case <-s.free:
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
	go func() {
		st := s.send(s.ctx, a)
		s.free <- struct{}{}
		done(st)
	}()
	return waited, nil
}

func (s *sendStarter) Abort() { s.abort() }

// fakeStarter answers each request after delay from its own goroutine; with hang it
// answers only when aborted.
type fakeStarter struct {
	delay   time.Duration
	hang    bool
	waited  bool
	aborted chan struct{}
	once    sync.Once
	started atomic.Int64
}

func (f *fakeStarter) Start(_ context.Context, a Arrival, done func(Status)) (bool, error) {
	f.started.Add(1)
	go func() {
		if f.hang {
			<-f.aborted
			done(Cancelled)
			return
		}
		time.Sleep(f.delay)
		if a.Identity%2 == 0 {
			done(Allowed)
		} else {
			done(Denied)
		}
	}()
	return f.waited, nil
}

func (f *fakeStarter) Abort() { f.once.Do(func() { close(f.aborted) }) }

func TestRunnerWithStarter(t *testing.T) {
	t.Parallel()
	c := baseConfig()
	c.RPS, c.Duration = 1000, 200*time.Millisecond
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeStarter{delay: 5 * time.Millisecond, aborted: make(chan struct{})}
	res := Runner{Schedule: s, Starter: f}.Run(context.Background(), time.Now())
	if res.Sent != int64(len(s.Arrivals)) || f.started.Load() != res.Sent {
		t.Fatalf("sent %d, started %d; schedule has %d", res.Sent, f.started.Load(), len(s.Arrivals))
	}
	if res.Allowed+res.Denied != res.Sent || res.Allowed == 0 || res.Denied == 0 || res.E2E.TotalCount() != res.Sent {
		t.Fatalf("answers do not add up: %+v, %d latencies", res, res.E2E.TotalCount())
	}
	// Every answer took 5ms after its intended time, and the latency says so.
	if res.E2E.Min() < 5000 || res.SendLag.TotalCount() != res.Sent || res.PoolFull != 0 {
		t.Fatalf("e2e min %dµs, %d send lags, pool full %d", res.E2E.Min(), res.SendLag.TotalCount(), res.PoolFull)
	}
}

func TestRunnerWithStarterCountsWaitsAndAbortsAtTheDrain(t *testing.T) {
	t.Parallel()
	s := &Schedule{Config: Config{Duration: 10 * time.Millisecond}}
	for i := range 5 {
		s.Arrivals = append(s.Arrivals, Arrival{At: time.Duration(i) * time.Millisecond})
	}
	f := &fakeStarter{hang: true, waited: true, aborted: make(chan struct{})}
	begin := time.Now()
	res := Runner{Schedule: s, Starter: f, Drain: 100 * time.Millisecond}.Run(context.Background(), begin)
	// No answer came: after the drain the requests were aborted, not waited for forever.
	if res.Sent != 5 || res.Cancelled != 5 || res.PoolFull != 5 || res.E2E.TotalCount() != 0 {
		t.Fatalf("sent %d, cancelled %d, pool full %d, %d latencies; want 5, 5, 5, 0", res.Sent, res.Cancelled, res.PoolFull, res.E2E.TotalCount())
	}
	if took := time.Since(begin); took < 100*time.Millisecond {
		t.Fatalf("returned after %s, before the 100ms drain", took)
	}
}
