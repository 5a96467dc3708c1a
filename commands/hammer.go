package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/renameio/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// hammerMemoryLimit bounds the heap while collections are off during a run: a run of
// the defaults allocates about 50 MB; a much longer or faster one is collected when its
// heap nears this.
const hammerMemoryLimit = 1 << 30

// Hammer runs the schedule against in-process Product API nodes (or --target URLs),
// one algorithm after another, and writes the comparison report. A missed threshold
// is an ExitThreshold error, after the report is written. opts passed Validate, as
// cmd does.
func Hammer(ctx context.Context, opts HammerOptions, ios IO) error {
	if err := checkOutFile(opts.OutFile); err != nil {
		return err
	}
	startedAt := time.Now()
	interruptedAt := watchInterrupt(ctx)
	ids, err := opts.identities(uint8(rand.N(256)))
	if err != nil {
		return UsageError(err)
	}
	sched, err := scenario.Build(scenario.Config{
		Pattern: opts.Pattern, IPs: opts.IPs, RPS: opts.RPS, Duration: opts.Duration, Seed: opts.Seed,
		Products: opts.Products, Limit: opts.Policy.Limit, Window: opts.Policy.Window,
	})
	if err != nil {
		return UsageError(err)
	}
	h := &report.Hammer{
		SchemaVersion: report.HammerSchemaVersion, Version: opts.Version, CommandLine: opts.CommandLine,
		StartedAt: startedAt.UTC().Truncate(time.Millisecond), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		Nodes: opts.Nodes, Store: opts.Store, Targets: opts.Targets,
		Pattern: opts.Pattern, IPs: opts.IPs, Products: opts.Products, TargetRPS: opts.RPS, Seed: opts.Seed,
		DurationMs: float64(opts.Duration) / float64(time.Millisecond),
		Workers:    opts.workers(), LateAfterUs: scenario.DefaultLateAfter.Microseconds(),
	}
	describeRequests(h, opts)

	var conn *redisconn.Conn
	if len(opts.Targets) == 0 || opts.RedisURL != "" {
		conn, err = redisconn.Open(ctx, opts.RedisURL, redisconn.Options{PoolSize: 256, MinIdleConns: 32, EmbeddedCommand: opts.EmbeddedRedisCommand})
		if err != nil {
			return err
		}
		defer conn.Close()
		h.Backend, h.Embedded = conn.Backend, conn.Embedded
	}
	if len(opts.Targets) > 0 {
		h.Backend, h.Embedded, h.Nodes, h.Store = "targets", false, len(opts.Targets), "remote"
	}
	offset, err := clockOffset(ctx, conn, opts)
	if err != nil {
		return err
	}

	names := opts.Algorithms
	if len(opts.Targets) > 0 {
		names = names[:1] // the targets enforce one policy of their own
	}
	var bar *progressbar.ProgressBar
	if ios.ErrIsTerminal && opts.Output != "json" {
		// Each run starts on a window edge: with a long window the wait is a good part
		// of the whole, and the estimate says so.
		fmt.Fprintf(ios.ErrOut, "ratelab: %s of %s, each starting on a window edge (a wait of up to %s): at most %s\n",
			plural(len(names), "run"), opts.Duration, opts.Policy.Window,
			(time.Duration(len(names)) * (opts.Duration + opts.Policy.Window)).Round(time.Second))
		bar = progressbar.NewOptions64(int64(len(sched.Arrivals))*int64(len(names)),
			progressbar.OptionSetWriter(ios.ErrOut), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
	}

	// No collections while a run sends, unless its heap nears hammerMemoryLimit (or a
	// lower GOMEMLIMIT), or the embedded Redis shares the heap: each run starts with a
	// collection instead.
	defer pauseCollections(conn)()

	var runs []hammerRun
	var failure error
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		if bar != nil {
			bar.Describe(name)
		}
		runtime.GC()
		var run hammerRun
		if len(opts.Targets) > 0 {
			run, err = hammerTargets(ctx, opts, sched, ids, offset, bar)
			h.TargetPolicies = run.policies
		} else {
			run, err = hammerNodes(ctx, opts, conn, name, sched, ids, offset, bar)
		}
		if err != nil {
			if ctx.Err() != nil {
				break // interrupted while setting up: the runs so far are the report
			}
			if len(runs) == 0 {
				return err
			}
			// Keep what finished: the report holds those runs and names the one that failed.
			failure = fmt.Errorf("%s: %w", name, err)
			h.Failed = &report.Failure{Algorithm: name, Error: err.Error()}
			break
		}
		runs = append(runs, run)
		if opts.hooks != nil && opts.hooks.afterRun != nil {
			opts.hooks.afterRun(name)
		}
		if run.res.Interrupted {
			break
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}

	buildReport(h, runs, sched, ids, opts)
	h.Interrupted = h.Interrupted || ctx.Err() != nil
	var signal string
	if h.Interrupted {
		var at time.Time
		at, signal = interruptedAt()
		markInterrupt(h, runs, at, signal)
	}
	if err := writeReport(ios, opts, h); err != nil {
		return err
	}
	switch {
	case h.Interrupted:
		return WithExit(ExitInterrupted, fmt.Errorf("%s: stopped early; the report covers the %d requests sent", signal, h.Sent))
	case failure != nil:
		return fmt.Errorf("%w; the report holds the %s that finished before", failure, plural(len(runs), "algorithm"))
	}
	var problems []string
	if missed := h.Missed(); len(missed) > 0 {
		problems = append(problems, fmt.Sprintf("%d threshold(s) missed: %s", len(missed), report.DescribeMissed(missed)))
	}
	if opts.RequireValid && !h.Valid {
		problems = append(problems, "the run is not valid (--require-valid): "+strings.Join(h.InvalidReasons, "; "))
	}
	if len(problems) > 0 {
		return WithExit(ExitThreshold, errors.New(strings.Join(problems, "; ")))
	}
	return nil
}

// hammerHooks let tests act at points of a run without sleeping to find them.
type hammerHooks struct {
	// firstSend is called once an algorithm's run has sent its first request.
	firstSend func(algorithm string)
	// afterRun is called after each algorithm's run, before the next one starts.
	afterRun func(algorithm string)
}

// watchInterrupt returns a function that tells when ctx ended and why: the signal and
// its time, from the Interrupt cmd.Main cancels with, or else when the cancel was seen.
func watchInterrupt(ctx context.Context) func() (time.Time, string) {
	var seen atomic.Pointer[time.Time]
	context.AfterFunc(ctx, func() {
		now := time.Now()
		seen.Store(&now)
	})
	return func() (time.Time, string) {
		var in *Interrupt
		if errors.As(context.Cause(ctx), &in) {
			return in.At, in.Name()
		}
		if at := seen.Load(); at != nil {
			return *at, "cancelled"
		}
		return time.Now(), "cancelled"
	}
}

// markInterrupt notes in h when the stop was asked for, the last request's send, and
// the time between them: how soon the pacer stopped.
func markInterrupt(h *report.Hammer, runs []hammerRun, at time.Time, signal string) {
	h.InterruptSignal = signal
	at = at.UTC()
	h.InterruptedAt = &at
	var last time.Time
	for _, r := range runs {
		if r.res.LastSend.After(last) {
			last = r.res.LastSend
		}
	}
	var stop int64
	if !last.IsZero() {
		last = last.UTC()
		h.LastSendAt = &last
		stop = max(0, last.Sub(at).Microseconds())
	}
	h.StopLatencyUs = &stop
}

// checkOutFile checks --out before anything is sent, so that a run is never lost for
// want of a place to write it: the directory must exist and take a new file, and the
// path must not be a directory.
func checkOutFile(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return Usagef("--out %s is a directory: give a file name in it, e.g. %s", path, filepath.Join(path, "hammer.json"))
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return Usagef("--out %s: the directory %s does not exist; create it first", path, dir)
	}
	f, err := os.CreateTemp(dir, ".ratelab-out-check-*")
	if err != nil {
		return Usagef("--out %s: cannot write in %s (%v); choose a directory you may write to", path, dir, errors.Unwrap(err))
	}
	_ = f.Close()
	_ = os.Remove(f.Name())
	return nil
}

// clockOffset is the limiter's clock minus this process's: the Redis server's TIME,
// read once, so that schedule time 0 falls on a window edge of the clock that decides.
// Local limiters decide by this process's clock.
func clockOffset(ctx context.Context, conn *redisconn.Conn, opts HammerOptions) (time.Duration, error) {
	if conn == nil || (opts.Store == productapi.StoreLocal && len(opts.Targets) == 0) {
		return 0, nil
	}
	offset, err := scenario.ClockOffset(ctx, func(ctx context.Context) (time.Time, error) { return conn.Client.Time(ctx).Result() })
	if err != nil {
		return 0, redisconn.Explain(err, conn.Backend)
	}
	return offset, nil
}

// warmIdentity is the identity of warm-up requests: a documentation address (TEST-NET-1),
// never one of a run's 10.x.y.z.
const warmIdentity = "192.0.2.1"

// warmPerNode is how many warm-up requests each node gets at once: enough to open the
// Redis connections a burst needs, so the first algorithm's run is not the one that
// pays for dialing them (hammer's own connections are open before).
const warmPerNode = 64

// startLead is how long before its first request a run's start is set, so setting up
// never eats into the schedule.
const startLead = 20 * time.Millisecond

// requestTimeout bounds one request: long enough for a leaky bucket's whole queue.
func requestTimeout(p algorithms.Policy) time.Duration {
	leak := time.Duration(float64(p.Window) * float64(p.EffectiveBurst()) / float64(p.Limit))
	return 10*time.Second + leak
}

// loopbackProxies are the in-process nodes' trusted proxies: hammer's own address,
// from which identities come in X-Forwarded-For.
var loopbackProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// hammerNodes runs the schedule for one algorithm against opts.Nodes in-process nodes.
func hammerNodes(ctx context.Context, opts HammerOptions, conn *redisconn.Conn, name string, sched *scenario.Schedule,
	ids []string, offset time.Duration, bar *progressbar.ProgressBar) (hammerRun, error) {
	keys, err := algorithms.NewKeyspace(opts.Prefix)
	if err != nil {
		return hammerRun{}, UsageError(err)
	}
	rec := scenario.NewRecorder(ids)
	backend := productapi.NewBackend(opts.BackendDelay, opts.Products)
	if opts.Store == productapi.StoreRedis {
		defer forgetIdentities(conn, keys, name, opts.Policy, ids)
	}
	urls := make([]string, opts.Nodes)
	nodes := make([]*productapi.Node, 0, opts.Nodes)
	trusted := loopbackProxies
	if opts.Identity == scenario.IdentitySource {
		trusted = nil // the nodes take each connection's address as the client's
	}
	for i := range opts.Nodes {
		node, err := productapi.NewNode(ctx, productapi.NodeConfig{
			Redis: conn.Client, Keys: keys, Where: conn.Backend,
			Limits:      productapi.Limits{Store: opts.Store, Default: productapi.Rule{Algorithm: name, Policy: opts.Policy}},
			WrapLimiter: rec.Wrap,
			Cache:       &cache.Options{LocalTTL: time.Second},
			API: productapi.Config{
				Backend: backend, TrustedProxies: trusted, Registerer: prometheus.NewRegistry(),
				OnLimiterError: productapi.FailOpen, CheckTimeout: opts.CheckTimeout,
				MaxChecksInFlight: conn.PoolSize(),
			},
		})
		if err != nil {
			return hammerRun{}, err
		}
		defer node.Close()
		nodes = append(nodes, node)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return hammerRun{}, fmt.Errorf("node %d: cannot listen on 127.0.0.1: %w", i+1, err)
		}
		go func() { _ = node.Server.Serve(ln) }()
		defer node.Server.Close()
		urls[i] = "http://" + ln.Addr().String()
	}
	cfg, err := opts.targetConfig(urls, ids)
	if err != nil {
		return hammerRun{}, err
	}
	target, err := scenario.NewTarget(cfg)
	if err != nil {
		return hammerRun{}, err
	}
	defer target.Close()

	// Warm up as an identity that is not the run's, then forget what that recorded.
	target.Warm(ctx, opts.warmIdentityFor(), warmPerNode)
	rec.Reset()
	target.ResetAnswers()
	base := make([]cache.Stats, len(nodes))
	for i, n := range nodes {
		base[i] = n.CacheStats()
	}
	baseCalls := backend.Calls()

	start, edge := scenario.AlignedStart(time.Now(), offset, opts.Policy.Window, startLead)
	res := runner(opts, name, sched, target, bar, start).Run(ctx, start)
	now := make([]cache.Stats, len(nodes))
	for i, n := range nodes {
		now[i] = n.CacheStats()
	}
	run := hammerRun{
		name: name, policy: opts.Policy, res: res,
		admitted: rec.Admitted(), checks: rec.Checks(), checkLatency: rec.Latency(),
		edgeMicro: edge + sched.TimelineEdge().Microseconds(),
		bound:     algorithms.ExpectedMaxInWindow(name, opts.Policy),
		cache:     nodeCache(now, base, backend.Calls()-baseCalls),
		answers:   target.Answers(),
	}
	if opts.Store == productapi.StoreLocal {
		run.bound *= int64(opts.Nodes)
	}
	forgetProducts(conn, keys, opts.Products)
	return run, nil
}

// hammerTargets runs the schedule once against running services (`ratelab serve` or
// any HTTP service on loopback), reading each decision from the response.
func hammerTargets(ctx context.Context, opts HammerOptions, sched *scenario.Schedule, ids []string,
	offset time.Duration, bar *progressbar.ProgressBar) (hammerRun, error) {
	rec := scenario.NewRecorder(ids)
	cfg, err := opts.targetConfig(opts.Targets, ids)
	if err != nil {
		return hammerRun{}, err
	}
	target, err := scenario.NewTarget(cfg)
	if err != nil {
		return hammerRun{}, UsageError(err)
	}
	defer target.Close()
	target.Record = rec
	name := "serve"
	if len(opts.Algorithms) == 1 {
		name = opts.Algorithms[0]
	}
	start, edge := scenario.AlignedStart(time.Now(), offset, opts.Policy.Window, startLead)
	res := runner(opts, name, sched, target, bar, start).Run(ctx, start)
	bound := int64(0)
	if name != "serve" {
		bound = algorithms.ExpectedMaxInWindow(name, opts.Policy)
	}
	return hammerRun{
		name: name, policy: opts.Policy, res: res,
		admitted: rec.Admitted(), checks: rec.Checks(), checkLatency: rec.Latency(),
		edgeMicro: edge + sched.TimelineEdge().Microseconds(), bound: bound, policies: target.Policies(),
		cache: targetCache(target.Sources()), answers: target.Answers(),
	}, nil
}

// runner is the Runner of one algorithm's run, which starts at start: until its first
// send the bar says that it waits for a window edge, and how long.
func runner(opts HammerOptions, name string, sched *scenario.Schedule, target scenario.Starter,
	bar *progressbar.ProgressBar, start time.Time) scenario.Runner {
	r := scenario.Runner{Schedule: sched, Starter: target, Drain: requestTimeout(opts.Policy)}
	var firstSend func(string)
	if opts.hooks != nil {
		firstSend = opts.hooks.firstSend
	}
	var waiting chan struct{}
	if bar != nil && time.Until(start) > 200*time.Millisecond {
		waiting = make(chan struct{})
		go describeWait(bar, name, start, waiting)
	}
	sent := false
	if bar != nil || firstSend != nil {
		r.Progress = func() {
			if !sent {
				sent = true
				if waiting != nil {
					close(waiting)
				}
				if firstSend != nil {
					firstSend(name)
				}
			}
			if bar != nil {
				_ = bar.Add(1)
			}
		}
	}
	return r
}

// describeWait counts down on the bar to start, the window edge the run starts on,
// until sending closes.
func describeWait(bar *progressbar.ProgressBar, name string, start time.Time, sending <-chan struct{}) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if left := time.Until(start).Round(100 * time.Millisecond); left > 0 {
			bar.Describe(fmt.Sprintf("%s: waiting %s for a window edge", name, left))
		}
		select {
		case <-sending:
			bar.Describe(name)
			return
		case <-tick.C:
		}
	}
}

// forgetIdentities deletes the run's limiter keys, so that nothing of one run is left
// for the next (they would expire within a window anyway).
func forgetIdentities(conn *redisconn.Conn, keys algorithms.Keyspace, name string, p algorithms.Policy, ids []string) {
	l, err := algorithms.NewRedis(conn.Client, keys, name, p)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := conn.Client.Pipeline()
	for _, id := range ids {
		if k, err := l.Key(id); err == nil {
			pipe.Del(ctx, k)
		}
	}
	_, _ = pipe.Exec(ctx)
}

// forgetProducts deletes the cached products, so that each algorithm's run starts
// with the same cold cache.
func forgetProducts(conn *redisconn.Conn, keys algorithms.Keyspace, products int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := conn.Client.Pipeline()
	for i := 1; i <= products; i++ {
		pipe.Del(ctx, keys.Product(fmt.Sprint(i)))
	}
	_, _ = pipe.Exec(ctx)
}

// writeReport renders the report in --output's format to Out; with --out, to that file
// instead, atomically (a temporary file in the same directory, renamed over the
// target once complete: renameio), and the table to Out, so that one run gives the
// file CI keeps and the table its log shows.
func writeReport(ios IO, opts HammerOptions, h *report.Hammer) error {
	if opts.OutFile == "" {
		return report.WriteHammer(ios.Out, opts.Output, h)
	}
	if err := writeFileAtomic(opts.OutFile, func(w io.Writer) error { return report.WriteHammer(w, opts.Output, h) }); err != nil {
		return err
	}
	if err := report.WriteHammer(ios.Out, "table", h); err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "ratelab: report written to %s\n", opts.OutFile)
	return nil
}

// writeFileAtomic writes path through write, atomically: readers see the old file or
// the whole new one, never a part.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := renameio.NewPendingFile(path, renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	defer f.Cleanup()
	if err := write(f); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}
