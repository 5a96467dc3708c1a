package commands

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// Defaults of HammerOptions, chosen so that the first run crosses many windows and
// shows the fixed-window boundary burst within seconds.
const (
	DefaultHammerIPs      = 50
	DefaultHammerRPS      = 1000
	DefaultHammerDuration = 3 * time.Second
	DefaultHammerLimit    = 10
	DefaultHammerWindow   = 500 * time.Millisecond
	DefaultHammerProducts = 100
	DefaultBackendDelay   = 5 * time.Millisecond
	// MaxHammerNodes bounds --nodes.
	MaxHammerNodes = 64
	// MaxHammerProducts bounds --products (each run deletes the product keys it filled).
	MaxHammerProducts = 100_000
	// MaxHammerWorkers bounds --workers.
	MaxHammerWorkers = 10_000
)

// HammerOptions is everything `ratelab hammer` is told.
type HammerOptions struct {
	Global
	// IPs is how many client identities send the traffic.
	IPs int
	// RPS is the total arrival rate, requests per second.
	RPS float64
	// Duration is each algorithm's run.
	Duration time.Duration
	// Seed makes the schedule: the same seed, the same schedule.
	Seed uint64
	// Algorithms run one after another on the same schedule; empty means all six.
	Algorithms []string
	// Policy is the limit under test.
	Policy algorithms.Policy
	// Nodes is how many in-process API nodes share the traffic, round robin.
	Nodes int
	// Store is StoreRedis or StoreLocal.
	Store string
	// Pattern is the traffic pattern (scenario.Patterns).
	Pattern string
	// Products is how many products are requested, with Zipf popularity.
	Products int
	// Targets, when set, are running `ratelab serve` URLs to hammer instead of in-process nodes.
	Targets []string
	// Workers bounds the requests in flight (scenario.DefaultWorkers when 0).
	Workers int
	// BackendDelay is how long the in-process nodes' slow backend takes per read.
	BackendDelay time.Duration
	// CheckTimeout is the nodes' time budget for one limiter check; a check over it
	// fails open (productapi.DefaultCheckTimeout when 0).
	CheckTimeout time.Duration
	// Output is table, json or markdown.
	Output string
	// OutFile, when set, receives the report (written atomically) instead of Out.
	OutFile string
	// Thresholds; zero means not checked.
	MaxBurstRatio  float64
	MaxCheckP99    time.Duration
	MinHitRatio    float64
	MinAchievedRPS float64
}

// Validate checks the options, with usage errors that say which flag to change.
func (o *HammerOptions) Validate() error {
	switch {
	case o.IPs < 1 || o.IPs > scenario.MaxIdentities:
		return Usagef("--ips %d: choose between 1 and %d", o.IPs, scenario.MaxIdentities)
	case !(o.RPS > 0) || math.IsInf(o.RPS, 0):
		return Usagef("--rps %v: the rate must be a positive number of requests per second", o.RPS)
	case o.Duration <= 0:
		return Usagef("--duration %s: it must be positive (e.g. 3s)", o.Duration)
	case o.RPS*o.Duration.Seconds() > scenario.MaxArrivals:
		return Usagef("--rps %v for --duration %s is more than %d requests per algorithm; lower one of them",
			o.RPS, o.Duration, scenario.MaxArrivals)
	case o.Nodes < 1 || o.Nodes > MaxHammerNodes:
		return Usagef("--nodes %d: choose between 1 and %d", o.Nodes, MaxHammerNodes)
	case o.Store != StoreRedis && o.Store != StoreLocal:
		return Usagef("--store %q: choose %q (one limit shared through Redis) or %q (a limiter per node)", o.Store, StoreRedis, StoreLocal)
	case o.Products < 1 || o.Products > MaxHammerProducts:
		return Usagef("--products %d: choose between 1 and %d", o.Products, MaxHammerProducts)
	case o.Workers < 0 || o.Workers > MaxHammerWorkers:
		return Usagef("--workers %d: choose between 1 and %d (0 for %d)", o.Workers, MaxHammerWorkers, scenario.DefaultWorkers)
	case o.BackendDelay < 0:
		return Usagef("--backend-delay %s: it must not be negative", o.BackendDelay)
	case o.CheckTimeout < 0:
		return Usagef("--check-timeout %s: it must not be negative", o.CheckTimeout)
	case o.MaxBurstRatio < 0 || o.MaxCheckP99 < 0 || o.MinHitRatio < 0 || o.MinHitRatio > 1 || o.MinAchievedRPS < 0:
		return Usagef("thresholds must not be negative, and --min-hit-ratio is between 0 and 1")
	}
	if err := scenario.CheckPattern(o.Pattern); err != nil {
		return Usagef("--pattern: %v", err)
	}
	if err := o.Policy.Validate(); err != nil {
		return Usagef("--limit/--window/--burst: %v", err)
	}
	if !slices.Contains(report.Formats(), o.Output) {
		return Usagef("--output %q: choose one of %s", o.Output, strings.Join(report.Formats(), ", "))
	}
	if len(o.Algorithms) == 0 {
		o.Algorithms = algorithms.Names()
	}
	seen := map[string]bool{}
	for _, a := range o.Algorithms {
		if err := algorithms.Lookup(a); err != nil {
			return Usagef("--algorithms: %v", err)
		}
		if seen[a] {
			return Usagef("--algorithms: %q is listed twice", a)
		}
		seen[a] = true
	}
	for _, t := range o.Targets {
		if _, err := scenario.CheckLoopbackURL(t); err != nil {
			return Usagef("--target: %v", err)
		}
	}
	return nil
}

// hammerRun is one algorithm's run, before it becomes a report row.
type hammerRun struct {
	name      string
	policy    algorithms.Policy
	res       scenario.Result
	rec       *scenario.Recorder
	edgeMicro int64 // the timeline's window edge, in limiter time
	bound     int64
	policies  []string // with --target: each target's RateLimit-Policy header
}

// collectionsPaused counts the Hammer calls under way, so that calls at once (tests)
// pause the collector once and the last one restores it.
var collectionsPaused struct {
	sync.Mutex
	n              int
	percent, limit int64
}

// pauseCollections turns the garbage collector off, with hammerMemoryLimit (or a lower
// GOMEMLIMIT) as the heap at which it still collects, and returns what restores it.
func pauseCollections() (restore func()) {
	p := &collectionsPaused
	p.Lock()
	defer p.Unlock()
	if p.n == 0 {
		p.percent = int64(debug.SetGCPercent(-1))
		p.limit = debug.SetMemoryLimit(min(debug.SetMemoryLimit(-1), hammerMemoryLimit))
	}
	p.n++
	return func() {
		p.Lock()
		defer p.Unlock()
		if p.n--; p.n == 0 {
			debug.SetGCPercent(int(p.percent))
			debug.SetMemoryLimit(p.limit)
		}
	}
}

// hammerMemoryLimit bounds the heap while collections are off during a run: a run of
// the defaults allocates about 50 MB; a much longer or faster one is collected when its
// heap nears this.
const hammerMemoryLimit = 1 << 30

// Hammer runs the schedule against in-process Product API nodes (or --target URLs),
// one algorithm after another, and writes the comparison report. A missed threshold
// is an ExitThreshold error, after the report is written.
func Hammer(ctx context.Context, opts HammerOptions, ios IO) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	ids, err := scenario.Identities(opts.IPs, uint8(rand.N(256)))
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
		SchemaVersion: report.HammerSchemaVersion, Nodes: opts.Nodes, Store: opts.Store, Targets: opts.Targets,
		Pattern: opts.Pattern, IPs: opts.IPs, Products: opts.Products, TargetRPS: opts.RPS, Seed: opts.Seed,
		DurationMs: float64(opts.Duration) / float64(time.Millisecond),
		Workers:    cmpOr(opts.Workers, scenario.DefaultWorkers), LateAfterUs: scenario.DefaultLateAfter.Microseconds(),
	}

	var conn *redisconn.Conn
	if len(opts.Targets) == 0 || opts.RedisURL != "" {
		conn, err = redisconn.Open(ctx, opts.RedisURL, redisconn.Options{PoolSize: 256, MinIdleConns: 32})
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
		bar = progressbar.NewOptions64(int64(len(sched.Arrivals))*int64(len(names)),
			progressbar.OptionSetWriter(ios.ErrOut), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
	}

	// The generator's own garbage collections delay sends on a small machine (stopping
	// the world waits for every processor, and marking takes one of two CPUs). So there
	// are none while a run sends, unless its heap nears hammerMemoryLimit (or a lower
	// GOMEMLIMIT): each run starts with a collection instead. Both settings are
	// restored after.
	defer pauseCollections()()

	var runs []hammerRun
	var cacheTotal report.Cache
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		if bar != nil {
			bar.Describe(name)
		}
		runtime.GC()
		var run hammerRun
		var cs report.Cache
		if len(opts.Targets) > 0 {
			run, cs, err = hammerTargets(ctx, opts, sched, ids, offset, bar)
			h.TargetPolicies = run.policies
		} else {
			run, cs, err = hammerNodes(ctx, opts, conn, name, sched, ids, offset, bar)
		}
		if err != nil {
			return err
		}
		runs = append(runs, run)
		addCache(&cacheTotal, cs)
		if run.res.Interrupted {
			break
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}

	fillReport(h, runs, sched, ids, cacheTotal, opts)
	h.Interrupted = h.Interrupted || ctx.Err() != nil
	if err := writeReport(ios, opts, h); err != nil {
		return err
	}
	if missed := h.Missed(); len(missed) > 0 {
		return WithExit(ExitThreshold, fmt.Errorf("%d threshold(s) missed: %s", len(missed), report.DescribeMissed(missed)))
	}
	return nil
}

// clockOffset is the limiter's clock minus this process's: the Redis server's TIME,
// read once, so that schedule time 0 falls on a window edge of the clock that decides.
func clockOffset(ctx context.Context, conn *redisconn.Conn, opts HammerOptions) (time.Duration, error) {
	if conn == nil || (opts.Store == StoreLocal && len(opts.Targets) == 0) {
		return 0, nil
	}
	before := time.Now()
	t, err := conn.Client.Time(ctx).Result()
	if err != nil {
		return 0, redisconn.Explain(err, conn.Backend)
	}
	rtt := time.Since(before)
	return t.Sub(before.Add(rtt / 2)), nil
}

// alignedStart is the local time at which the next window edge of the limiter's clock
// falls, at least lead from now.
func alignedStart(offset, window, lead time.Duration) (start time.Time, edgeMicros int64) {
	now := time.Now().Add(offset).Add(lead).UnixMicro()
	w := window.Microseconds()
	edge := (now/w + 1) * w
	return time.UnixMicro(edge).Add(-offset), edge
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

// hammerNodes runs the schedule for one algorithm against opts.Nodes in-process nodes.
func hammerNodes(ctx context.Context, opts HammerOptions, conn *redisconn.Conn, name string, sched *scenario.Schedule,
	ids []string, offset time.Duration, bar *progressbar.ProgressBar) (hammerRun, report.Cache, error) {
	keys, err := algorithms.NewKeyspace(opts.Prefix)
	if err != nil {
		return hammerRun{}, report.Cache{}, UsageError(err)
	}
	rec := scenario.NewRecorder(ids)
	backend := productapi.NewBackend(opts.BackendDelay, opts.Products)
	var shared *algorithms.Redis
	if opts.Store == StoreRedis {
		if shared, err = algorithms.NewRedis(conn.Client, keys, name, opts.Policy); err != nil {
			return hammerRun{}, report.Cache{}, err
		}
		defer forgetIdentities(conn, shared, ids)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	urls := make([]string, opts.Nodes)
	var caches []*cache.Cache
	for i := range opts.Nodes {
		var lim algorithms.Limiter = shared
		if shared == nil {
			if lim, err = algorithms.NewLocal(name, opts.Policy, nil); err != nil {
				return hammerRun{}, report.Cache{}, err
			}
		}
		c, err := cache.New(ctx, conn.Client, cache.Options{Keys: keys, LocalTTL: time.Second, Where: conn.Backend})
		if err != nil {
			return hammerRun{}, report.Cache{}, err
		}
		caches = append(caches, c)
		defer c.Close()
		api, err := productapi.New(productapi.Config{
			Backend: backend, Cache: c, Limiter: rec.Wrap(lim), TrustedProxies: trusted,
			Registerer: prometheus.NewRegistry(), OnLimiterError: productapi.FailOpen, CheckTimeout: opts.CheckTimeout,
			MaxChecksInFlight: conn.PoolSize(),
		})
		if err != nil {
			return hammerRun{}, report.Cache{}, err
		}
		defer api.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return hammerRun{}, report.Cache{}, fmt.Errorf("node %d: cannot listen on 127.0.0.1: %w", i+1, err)
		}
		srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		urls[i] = "http://" + ln.Addr().String()
	}
	workers := cmpOr(opts.Workers, scenario.DefaultWorkers)
	target, err := scenario.NewHTTPTarget(urls, ids, workers, requestTimeout(opts.Policy))
	if err != nil {
		return hammerRun{}, report.Cache{}, err
	}
	defer target.Close()

	// Warm up as an identity that is not the run's, then forget what that recorded.
	target.Warm(ctx, warmIdentity, warmPerNode)
	rec.Reset()
	var base []cache.Stats
	for _, c := range caches {
		base = append(base, c.Stats())
	}
	baseCalls := backend.Calls()

	start, edge := alignedStart(offset, opts.Policy.Window, startLead)
	res := runner(opts, sched, target, bar).Run(ctx, start)
	run := hammerRun{
		name: name, policy: opts.Policy, res: res, rec: rec,
		edgeMicro: edge + sched.TimelineEdge().Microseconds(),
		bound:     algorithms.ExpectedMaxInWindow(name, opts.Policy),
	}
	if opts.Store == StoreLocal {
		run.bound *= int64(opts.Nodes)
	}
	var cs report.Cache
	for i, c := range caches {
		s, b := c.Stats(), base[i]
		cs.LocalHits += s.LocalHits - b.LocalHits
		cs.RedisHits += s.RedisHits + s.NegativeHits - b.RedisHits - b.NegativeHits
		cs.Misses += s.Misses - b.Misses
		cs.FillLockWaits += s.LockWaits - b.LockWaits
	}
	cs.Hits = cs.LocalHits + cs.RedisHits
	cs.BackendCalls = backend.Calls() - baseCalls
	forgetProducts(conn, keys, opts.Products)
	return run, cs, nil
}

// hammerTargets runs the schedule once against running `ratelab serve` processes,
// reading each decision from the response.
func hammerTargets(ctx context.Context, opts HammerOptions, sched *scenario.Schedule, ids []string,
	offset time.Duration, bar *progressbar.ProgressBar) (hammerRun, report.Cache, error) {
	rec := scenario.NewRecorder(ids)
	target, err := scenario.NewHTTPTarget(opts.Targets, ids, cmpOr(opts.Workers, scenario.DefaultWorkers), requestTimeout(opts.Policy))
	if err != nil {
		return hammerRun{}, report.Cache{}, UsageError(err)
	}
	defer target.Close()
	target.Record = rec
	name := "serve"
	if len(opts.Algorithms) == 1 {
		name = opts.Algorithms[0]
	}
	start, edge := alignedStart(offset, opts.Policy.Window, startLead)
	res := runner(opts, sched, target, bar).Run(ctx, start)
	bound := int64(0)
	if name != "serve" {
		bound = algorithms.ExpectedMaxInWindow(name, opts.Policy)
	}
	run := hammerRun{name: name, policy: opts.Policy, res: res, rec: rec,
		edgeMicro: edge + sched.TimelineEdge().Microseconds(), bound: bound, policies: target.Policies()}
	return run, targetCache(target.Sources()), nil
}

// targetCache counts the targets' answers by their X-Cache header as the in-process
// nodes count their cache: "wait" is a Redis hit after waiting for another node's
// fill, "miss" a fill; "shared" (a read that joined one already under way in the
// node) and "bypass" (Redis unusable) are neither.
func targetCache(sources map[string]int64) report.Cache {
	c := report.Cache{
		LocalHits:     sources[string(cache.FromLocal)],
		RedisHits:     sources[string(cache.FromRedis)] + sources[string(cache.FromWait)],
		Misses:        sources[string(cache.FromLoad)],
		FillLockWaits: sources[string(cache.FromWait)],
		BackendCalls:  sources[string(cache.FromLoad)] + sources[string(cache.FromBypass)],
	}
	c.Hits = c.LocalHits + c.RedisHits
	return c
}

func runner(opts HammerOptions, sched *scenario.Schedule, target scenario.Starter, bar *progressbar.ProgressBar) scenario.Runner {
	r := scenario.Runner{Schedule: sched, Starter: target, Drain: requestTimeout(opts.Policy)}
	if bar != nil {
		r.Progress = func() { _ = bar.Add(1) }
	}
	return r
}

// forgetIdentities deletes the run's limiter keys, so that nothing of one run is left
// for the next (they would expire within a window anyway).
func forgetIdentities(conn *redisconn.Conn, l *algorithms.Redis, ids []string) {
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

func addCache(total *report.Cache, c report.Cache) {
	total.Hits += c.Hits
	total.Misses += c.Misses
	total.BackendCalls += c.BackendCalls
	total.LocalHits += c.LocalHits
	total.RedisHits += c.RedisHits
	total.FillLockWaits += c.FillLockWaits
}

// fillReport turns the runs into the report and checks the thresholds.
func fillReport(h *report.Hammer, runs []hammerRun, sched *scenario.Schedule, ids []string, c report.Cache, opts HammerOptions) {
	if n := c.Hits + c.Misses; n > 0 {
		c.HitRatio = float64(c.Hits) / float64(n)
	}
	h.Cache = c
	var elapsed time.Duration
	lag, pacerLag := scenario.NewE2EHistogram(), scenario.NewE2EHistogram()
	h.PacerRealtime = len(runs) > 0
	follow := sched.AttackerOrFirst()
	for _, r := range runs {
		p := r.policy
		admitted := r.rec.Admitted()
		burst := scenario.AnalyzeBursts(admitted, p.Limit, p.Window)
		tl := scenario.NewTimeline(ids[follow], admitted[follow], r.edgeMicro, p.Window)
		checks := r.rec.Checks()
		cl, e2e := scenario.Summarize(r.rec.Latency()), scenario.Summarize(r.res.E2E)
		a := report.Algorithm{
			Name: r.name, Limit: p.Limit, WindowMs: float64(p.Window) / float64(time.Millisecond), Burst: p.EffectiveBurst(),
			Sent: r.res.Sent, Allowed: r.res.Allowed, Denied: r.res.Denied, Errors: r.res.Errors,
			FailOpen: checks.Errors, Cancelled: r.res.Cancelled,
			AchievedRPS: r.res.AchievedRPS, LateSends: r.res.Late, SendLagUs: sendLag(r.res.SendLag),
			PeakInWindow: burst.PeakInWindow, PeakInTenthWindow: burst.PeakInTenthWindow,
			ExpectedMaxInWindow: r.bound, BurstRatio: burst.BurstRatio,
			CheckLatencyUs: cl,
			E2ELatencyUs:   report.E2ELatency{P50: e2e.P50, P90: e2e.P90, P99: e2e.P99, P999: e2e.P999, Max: e2e.Max},
			Timeline: &report.Timeline{
				Identity: tl.Identity, EdgeOffsetMs: float64(sched.TimelineEdge()) / float64(time.Millisecond),
				BucketMs: float64(tl.BucketMicros) / 1000, Counts: tl.Counts,
			},
			Interrupted: r.res.Interrupted,
			Checks:      checks,
		}
		if r.res.Elapsed > 0 {
			a.AllowedPerSecond = float64(r.res.Allowed) / r.res.Elapsed.Seconds()
		}
		h.Algorithms = append(h.Algorithms, a)
		h.Sent += r.res.Sent
		h.LateSends += r.res.Late
		h.PacerLate += r.res.PacerLate
		h.PoolFull += r.res.PoolFull
		h.PacerRealtime = h.PacerRealtime && r.res.PacerRealtime
		h.Interrupted = h.Interrupted || r.res.Interrupted
		elapsed += r.res.Elapsed
		if r.res.SendLag != nil {
			lag.Merge(r.res.SendLag)
		}
		if r.res.PacerLag != nil {
			pacerLag.Merge(r.res.PacerLag)
		}
	}
	h.SendLagUs, h.PacerLagUs = sendLag(lag), sendLag(pacerLag)
	if elapsed > 0 {
		h.AchievedRPS = float64(h.Sent) / elapsed.Seconds()
	}
	if h.Sent > 0 {
		h.LateSendRatio = float64(h.LateSends) / float64(h.Sent)
	}
	check := func(name, subject string, limit, value float64, ok bool) {
		h.Thresholds = append(h.Thresholds, report.Threshold{Name: name, Subject: subject, Limit: limit, Value: value, OK: ok})
	}
	for _, a := range h.Algorithms {
		if opts.MaxBurstRatio > 0 {
			check("max-burst-ratio", a.Name, opts.MaxBurstRatio, a.BurstRatio, a.BurstRatio <= opts.MaxBurstRatio)
		}
		if opts.MaxCheckP99 > 0 && a.CheckLatencyUs.Count > 0 {
			limit := float64(opts.MaxCheckP99.Microseconds())
			check("max-check-p99", a.Name, limit, float64(a.CheckLatencyUs.P99), float64(a.CheckLatencyUs.P99) <= limit)
		}
		if opts.MinAchievedRPS > 0 {
			check("min-achieved-rps", a.Name, opts.MinAchievedRPS, round1(a.AchievedRPS), a.AchievedRPS >= opts.MinAchievedRPS)
		}
	}
	if opts.MinHitRatio > 0 {
		check("min-hit-ratio", "cache", opts.MinHitRatio, round1000(h.Cache.HitRatio), h.Cache.HitRatio >= opts.MinHitRatio)
	}
}

func sendLag(h *hdrhistogram.Histogram) report.SendLag {
	s := scenario.Summarize(h)
	return report.SendLag{P50: s.P50, P99: s.P99, Max: s.Max}
}

func round1(f float64) float64    { return math.Round(f*10) / 10 }
func round1000(f float64) float64 { return math.Round(f*1000) / 1000 }

// writeReport renders the report to Out, or atomically to OutFile: a temporary file in
// the same directory, renamed over the target once complete.
func writeReport(ios IO, opts HammerOptions, h *report.Hammer) error {
	if opts.OutFile == "" {
		return report.WriteHammer(ios.Out, opts.Output, h)
	}
	if err := writeFileAtomic(opts.OutFile, func(w io.Writer) error { return report.WriteHammer(w, opts.Output, h) }); err != nil {
		return err
	}
	fmt.Fprintf(ios.ErrOut, "ratelab: report written to %s\n", opts.OutFile)
	return nil
}

func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = write(f); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	if err = os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("--out %s: %w", path, err)
	}
	return nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
