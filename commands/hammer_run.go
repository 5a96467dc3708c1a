package commands

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/scenario"
)

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

// hammerNodes runs the schedule for one algorithm under one fail mode against
// opts.Nodes in-process nodes; with a fault lab, their limiters reach Redis through
// its proxy and the faults are injected on the run's schedule.
func hammerNodes(ctx context.Context, opts HammerOptions, conn *redisconn.Conn, lab *faultLab, spec runSpec, sched *scenario.Schedule,
	ids []string, offset time.Duration, bar *progressbar.ProgressBar) (hammerRun, error) {
	name := spec.name
	keys, err := algorithms.NewKeyspace(opts.Prefix)
	if err != nil {
		return hammerRun{}, UsageError(err)
	}
	rec := scenario.NewRecorder(ids)
	rec.CountPer(opts.Policy.Window / 10)
	backend := productapi.NewBackend(opts.BackendDelay, opts.Products)
	switch {
	case opts.policy != nil:
		defer opts.policy.forget(conn, keys, ids)
	case opts.Store == productapi.StoreRedis:
		defer forgetIdentities(conn, keys, name, opts.Policy, ids)
	}
	urls := make([]string, opts.Nodes)
	nodes := make([]*productapi.Node, 0, opts.Nodes)
	trusted := loopbackProxies
	if opts.Identity == scenario.IdentitySource {
		trusted = nil // the nodes take each connection's address as the client's
	}
	var limiterRedis redis.UniversalClient
	var trace *scenario.Trace
	var wrapLocal func(algorithms.Limiter) algorithms.Limiter
	if lab != nil {
		limiterRedis = lab.via.Client
		trace = scenario.NewTrace(ids, opts.Identity == scenario.IdentitySource)
		wrapLocal = trace.WrapLocal
	}
	for i := range opts.Nodes {
		node, err := productapi.NewNode(ctx, productapi.NodeConfig{
			Redis: conn.Client, LimiterRedis: limiterRedis, Keys: keys, Where: conn.Backend,
			Limits:      opts.nodeLimits(name),
			WrapLimiter: rec.Wrap, WrapLocal: wrapLocal,
			Cache: &cache.Options{LocalTTL: time.Second},
			API: productapi.Config{
				Backend: backend, TrustedProxies: trusted, Registerer: prometheus.NewRegistry(),
				OnLimiterError: spec.mode, CheckTimeout: opts.CheckTimeout, ProbeTimeout: opts.outageAfter(),
				MaxChecksInFlight: maxChecksInFlight(conn, opts.Batch), APIKeys: opts.policy.nodeAPIKeys(),
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
		if trace != nil {
			node.Server.Handler = trace.Wrap(node.Server.Handler)
		}
		go func() { _ = node.Server.Serve(ln) }()
		defer node.Server.Close()
		urls[i] = "http://" + ln.Addr().String()
	}
	cfg, err := opts.targetConfig(urls, ids)
	if err != nil {
		return hammerRun{}, err
	}
	opts.policy.configure(&cfg)
	target, err := scenario.NewTarget(cfg)
	if err != nil {
		return hammerRun{}, err
	}
	defer target.Close()
	opts.policy.attach(target, rec)

	// Warm up as an identity that is not the run's, then forget what that recorded.
	target.Warm(ctx, opts.warmIdentityFor(), warmPerNode)
	rec.Reset()
	target.ResetAnswers()
	base := make([]cache.Stats, len(nodes))
	for i, n := range nodes {
		base[i] = n.CacheStats()
	}
	baseLimiter := nodesLimiterStats(nodes, name)
	baseCalls := backend.Calls()
	if opts.hooks != nil && opts.hooks.nodes != nil {
		opts.hooks.nodes(urls, false)
	}

	start, edge := scenario.AlignedStart(time.Now(), offset, opts.Policy.Window, startLead)
	var faultsDone func() ([]scenario.FaultSpan, error)
	if lab != nil {
		trace.Begin(start)
		notify := func(faultEvent) {}
		if opts.hooks != nil && opts.hooks.fault != nil {
			notify = func(ev faultEvent) {
				ev.Algorithm, ev.Mode = name, spec.mode
				opts.hooks.fault(ev)
			}
		}
		faultsDone = lab.schedule(ctx, start, opts.Faults, forgetRun(conn, keys, name, opts.Policy, ids, opts.warmIdentityFor()), notify)
	}
	r, stop := runner(opts, name, sched, target, bar, start, rec)
	res := r.Run(ctx, start)
	stop()
	if opts.hooks != nil && opts.hooks.nodes != nil {
		opts.hooks.nodes(urls, true)
	}
	var faultSpans []scenario.FaultSpan
	if faultsDone != nil {
		spans, err := faultsDone()
		if herr := lab.proxy.Heal(); err == nil {
			err = herr
		}
		if err != nil {
			return hammerRun{}, err
		}
		faultSpans = spans
	}
	now := make([]cache.Stats, len(nodes))
	for i, n := range nodes {
		now[i] = n.CacheStats()
	}
	run := hammerRun{
		name: name, policy: opts.Policy, res: res,
		admitted: rec.Admitted(), checks: rec.Checks(), checkLatency: rec.Latency(),
		edgeMicro: edge + sched.TimelineEdge().Microseconds(),
		decisions: rec.DecisionsFrom(edge),
		bound:     algorithms.ExpectedMaxInWindow(name, opts.Policy),
		cache:     nodeCache(now, base, backend.Calls()-baseCalls),
		answers:   target.Answers(),
		limiter:   limiterDelta(nodesLimiterStats(nodes, name), baseLimiter),
		faults:    opts.Faults, faultSpans: faultSpans, runEnd: opts.Duration,
	}
	if spec.compared {
		run.failMode = string(spec.mode)
	}
	if spec.mode == productapi.FailLocal {
		run.localShare = opts.localShare()
	}
	if trace != nil {
		run.trace = trace.Events()
	}
	opts.policy.finish(&run)
	if opts.Store == productapi.StoreLocal {
		run.bound *= int64(opts.Nodes)
		for _, n := range nodes {
			run.localEvictions += n.LocalEvictions()
		}
	}
	forgetProducts(conn, keys, opts.Products)
	return run, nil
}

// hammerTargets runs the schedule once against running services (`ratelab serve` or
// any HTTP service on loopback), reading each decision from the response.
func hammerTargets(ctx context.Context, opts HammerOptions, sched *scenario.Schedule, ids []string,
	offset time.Duration, bar *progressbar.ProgressBar) (hammerRun, error) {
	rec := scenario.NewRecorder(ids)
	rec.CountPer(opts.Policy.Window / 10)
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
	r, stop := runner(opts, name, sched, target, bar, start, rec)
	res := r.Run(ctx, start)
	stop()
	bound := int64(0)
	if name != "serve" {
		bound = algorithms.ExpectedMaxInWindow(name, opts.Policy)
	}
	return hammerRun{
		name: name, policy: opts.Policy, res: res,
		admitted: rec.Admitted(), checks: rec.Checks(), checkLatency: rec.Latency(),
		edgeMicro: edge + sched.TimelineEdge().Microseconds(), decisions: rec.DecisionsFrom(edge), bound: bound, policies: target.Policies(),
		cache: targetCache(target.Sources()), answers: target.Answers(),
	}, nil
}

// runner is the Runner of one algorithm's run, which starts at start: until its first
// send the bar says that it waits for a window edge, and how long; then it shows the
// rate so far, the late sends and the denials of rec (liveLine). Call stop once the
// run is over.
func runner(opts HammerOptions, name string, sched *scenario.Schedule, target scenario.Starter,
	bar *progressbar.ProgressBar, start time.Time, rec *scenario.Recorder) (r scenario.Runner, stop func()) {
	r = scenario.Runner{Schedule: sched, Starter: target, Drain: requestTimeout(opts.Policy)}
	var firstSend func(string)
	if opts.hooks != nil {
		firstSend = opts.hooks.firstSend
	}
	var waiting chan struct{}
	if bar != nil && time.Until(start) > 200*time.Millisecond {
		waiting = make(chan struct{})
		go describeWait(bar, name, start, waiting)
	}
	stop = func() {}
	var live *liveLine
	if bar != nil {
		live = &liveLine{name: name, start: start, sched: sched, rec: rec}
		done := make(chan struct{})
		go live.show(bar, done)
		stop = func() { close(done) }
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
				live.sentOne(time.Now())
				_ = bar.Add(1)
			}
		}
	}
	return r, stop
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
