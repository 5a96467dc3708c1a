package commands

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/wire"
	"github.com/ratelab/ratelab/scenario"
)

// hammerRun is what one algorithm's run measured, before it becomes a report row:
// plain data, so that the report can be built from runs made by hand.
type hammerRun struct {
	name   string
	policy algorithms.Policy
	res    scenario.Result
	// admitted are the limiter's times (µs) of each identity's admitted requests.
	admitted [][]int64
	checks   scenario.Checks
	// checkLatency is the per-check latency; nil when none was measured.
	checkLatency *hdrhistogram.Histogram
	// edgeMicro is the timeline's window edge, in limiter time.
	edgeMicro int64
	// decisions are the limiter's decisions per W/10 from the run's start.
	decisions scenario.Decisions
	// bound is the most one identity may be admitted in any window W (0: unknown).
	bound int64
	cache report.Cache
	// localEvictions counts what the nodes' in-memory limiters forgot.
	localEvictions int64
	// policies are each target's RateLimit-Policy header, with --target.
	policies []string
	// answers are the status codes and transport errors the requests came back with.
	answers scenario.Answers
	// The fault lab (hammer_fault.go): failMode names the run's fail mode when modes
	// were compared; faults were injected at faultSpans (from the run's start), and
	// trace is every request as the nodes decided it, in a schedule of runEnd.
	failMode   string
	localShare int // the nodes sharing the limit, in fail mode local; 0 otherwise
	faults     []Fault
	faultSpans []scenario.FaultSpan
	trace      []scenario.TraceEvent
	runEnd     time.Duration
	// limiter is what the nodes' Redis limiters did over the run (zero otherwise).
	limiter algorithms.Stats
	// tiers are a policy file's answers per client tier and limit.
	tiers []scenario.TierCount
}

// maxValidLateRatio is the share of late sends over which a run is not valid: its
// traffic was not the schedule's.
const maxValidLateRatio = 0.01

// buildReport fills h, which names the run, with what the runs measured, and checks
// the thresholds of opts against it. It reads nothing but its arguments.
func buildReport(h *report.Hammer, runs []hammerRun, sched *scenario.Schedule, ids []string, opts HammerOptions) {
	h.TargetPolicyMismatch = targetPolicyMismatch(h.Targets, h.TargetPolicies, opts)
	var elapsed time.Duration
	lag, pacerLag := scenario.NewE2EHistogram(), scenario.NewE2EHistogram()
	h.PacerRealtime = len(runs) > 0
	follow := sched.AttackerOrFirst()
	var c report.Cache
	for _, r := range runs {
		h.Algorithms = append(h.Algorithms, algorithmRow(r, sched, ids[follow], follow))
		addCache(&c, r.cache)
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
	if n := c.Hits + c.Misses; n > 0 {
		c.HitRatio = float64(c.Hits) / float64(n)
	}
	h.Cache = c
	h.SendLagUs, h.PacerLagUs = sendLag(lag), sendLag(pacerLag)
	if elapsed > 0 {
		h.AchievedRPS = float64(h.Sent) / elapsed.Seconds()
	}
	for _, r := range runs {
		h.Errors += r.answers.TransportErrors() + r.answers.ServerErrors()
	}
	h.LateSendRatio, h.ErrorRatio = ratio(h.LateSends, h.Sent), ratio(h.Errors, h.Sent)
	policyReport(h, runs, opts.policy)
	h.Thresholds = thresholds(h, opts)
	h.InvalidReasons = invalidReasons(h, runs)
	h.Valid = len(h.InvalidReasons) == 0
}

// invalidReasons says why the runs' figures cannot be trusted: what was sent was not
// the schedule (late sends, a pool that ran out), a run too short to hold the window
// analysis, or limiter checks that failed and left the decisions to the fail mode.
func invalidReasons(h *report.Hammer, runs []hammerRun) []string {
	if len(runs) == 0 {
		return []string{"no algorithm's run finished"}
	}
	var out []string
	if h.LateSendRatio > maxValidLateRatio {
		out = append(out, fmt.Sprintf("%.1f%% of sends were late (more than %.0f%%): the schedule was not kept; lower --rps or run on a quieter machine",
			100*h.LateSendRatio, 100*maxValidLateRatio))
	}
	if h.PoolFull > 0 {
		out = append(out, fmt.Sprintf("the connection pool ran out %d times: raise --workers", h.PoolFull))
	}
	var short []string
	var failed int64
	for _, r := range runs {
		if r.res.Elapsed < 2*r.policy.Window {
			short = append(short, fmt.Sprintf("%s %s", r.name, r.res.Elapsed.Round(time.Millisecond)))
		}
		if len(r.faults) == 0 {
			failed += r.checks.Errors // with --fault, failed checks are what is measured
		}
	}
	if len(short) > 0 {
		out = append(out, fmt.Sprintf("shorter than two windows (2 × %s): %s; raise --duration",
			runs[0].policy.Window, strings.Join(short, ", ")))
	}
	if failed > 0 {
		out = append(out, fmt.Sprintf("%d limiter checks failed: those requests were decided by the fail mode, not the algorithm", failed))
	}
	return out
}

func ratio(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// algorithmRow is one run's row: its counts, bursts, latency and timeline.
func algorithmRow(r hammerRun, sched *scenario.Schedule, followID string, follow int) report.Algorithm {
	p := r.policy
	burst := scenario.AnalyzeBursts(r.admitted, p.Limit, p.Window)
	var followed []int64
	if follow < len(r.admitted) {
		followed = r.admitted[follow]
	}
	tl := scenario.NewTimeline(followID, followed, r.edgeMicro, p.Window)
	cl, e2e := scenario.Summarize(r.checkLatency), scenario.Summarize(r.res.E2E)
	a := report.Algorithm{
		Name: r.name, Limit: p.Limit, WindowMs: float64(p.Window) / float64(time.Millisecond), Burst: p.EffectiveBurst(),
		Sent: r.res.Sent, Allowed: r.res.Allowed, Denied: r.res.Denied, Errors: r.res.Errors,
		FailOpen: r.answers.FailOpen, LocalEvictions: r.localEvictions, Cancelled: r.res.Cancelled,
		AchievedRPS: r.res.AchievedRPS, LateSends: r.res.Late, LateSendRatio: ratio(r.res.Late, r.res.Sent),
		SendLagUs: sendLag(r.res.SendLag), ElapsedMs: float64(r.res.Elapsed) / float64(time.Millisecond),
		FailClosed: r.answers.FailClosed, StatusCodes: statusCodes(r.answers), ErrorSet: errorSet(r.answers),
		ErrorRatio:   ratio(r.answers.TransportErrors()+r.answers.ServerErrors(), r.res.Sent),
		PeakInWindow: burst.PeakInWindow, PeakInTenthWindow: burst.PeakInTenthWindow,
		ExpectedMaxInWindow: r.bound, BurstRatio: burst.BurstRatio,
		CheckLatencyUs: cl, CheckLatencyUnknown: cl.Count == 0,
		E2ELatencyUs: report.E2ELatency{P50: e2e.P50, P90: e2e.P90, P99: e2e.P99, P999: e2e.P999, Max: e2e.Max},
		Timeline: &report.Timeline{
			Identity: tl.Identity, EdgeOffsetMs: float64(sched.TimelineEdge()) / float64(time.Millisecond),
			BucketMs: float64(tl.BucketMicros) / 1000, Counts: tl.Counts,
		},
		Interrupted: r.res.Interrupted,
		Checks:      r.checks,
		FailMode:    r.failMode, Local: r.answers.Local, Fault: faultRow(r),
		Limiter: limiterCalls(r),
	}
	chartData(&a, r.decisions, r.checkLatency, r.res.E2E)
	if r.res.Elapsed > 0 {
		a.AllowedPerSecond = float64(r.res.Allowed) / r.res.Elapsed.Seconds()
	}
	return a
}

func statusCodes(a scenario.Answers) map[string]int64 {
	if len(a.Codes) == 0 {
		return nil
	}
	out := make(map[string]int64, len(a.Codes))
	for code, n := range a.Codes {
		out[strconv.Itoa(code)] = n
	}
	return out
}

func errorSet(a scenario.Answers) []report.ErrorKind {
	var out []report.ErrorKind
	for _, k := range a.ErrorKinds() {
		e := a.Errors[k]
		out = append(out, report.ErrorKind{Kind: k, Count: e.Count, Example: e.Example})
	}
	return out
}

// thresholds checks the report against the --max-*/--min-* options that are set. A
// threshold whose figure has nothing to stand on (no checks timed, no answers, no
// cache reads) is missed and says what was missing: a gate that measured nothing
// must not pass.
func thresholds(h *report.Hammer, opts HammerOptions) []report.Threshold {
	var out []report.Threshold
	check := func(name, subject string, limit, value float64, ok bool, noData string) {
		if noData != "" {
			ok, value = false, 0
		}
		out = append(out, report.Threshold{Name: name, Subject: subject, Limit: limit, Value: value, OK: ok, NoData: noData})
	}
	when := func(missing bool, why string) string {
		if missing {
			return why
		}
		return ""
	}
	for _, a := range h.Algorithms {
		nothingSent := when(a.Sent == 0, "nothing was sent")
		if opts.MaxBurstRatio > 0 {
			check("max-burst-ratio", a.Label(), opts.MaxBurstRatio, a.BurstRatio, a.BurstRatio <= opts.MaxBurstRatio,
				when(a.PeakInWindow == 0, "no request was admitted by the limiter"))
		}
		if opts.MaxCheckP99 > 0 {
			limit := float64(opts.MaxCheckP99.Microseconds())
			check("max-check-p99", a.Label(), limit, float64(a.CheckLatencyUs.P99), float64(a.CheckLatencyUs.P99) <= limit,
				when(a.CheckLatencyUs.Count == 0, "no limiter check was timed"))
		}
		if opts.MinAchievedRPS > 0 {
			check("min-achieved-rps", a.Label(), opts.MinAchievedRPS, round1(a.AchievedRPS), a.AchievedRPS >= opts.MinAchievedRPS, nothingSent)
		}
		if opts.MaxErrorRatio != nil {
			check("max-error-ratio", a.Label(), *opts.MaxErrorRatio, round1000(a.ErrorRatio), a.ErrorRatio <= *opts.MaxErrorRatio, nothingSent)
		}
		if opts.MaxLateRatio != nil {
			check("max-late-ratio", a.Label(), *opts.MaxLateRatio, round1000(a.LateSendRatio), a.LateSendRatio <= *opts.MaxLateRatio, nothingSent)
		}
		if opts.MaxFailOpen != nil {
			checks := a.Checks.Allowed + a.Checks.Denied + a.Checks.Errors
			check("max-fail-open", a.Label(), float64(*opts.MaxFailOpen), float64(a.FailOpen), a.FailOpen <= *opts.MaxFailOpen,
				when(checks == 0, "no limiter check was seen"))
		}
	}
	faultThresholds(h, opts, check)
	if opts.MinHitRatio > 0 {
		check("min-hit-ratio", "cache", opts.MinHitRatio, round1000(h.Cache.HitRatio), h.Cache.HitRatio >= opts.MinHitRatio,
			when(h.Cache.Hits+h.Cache.Misses == 0, "no cache reads"))
	}
	return out
}

// nodeCache is the cache figures of in-process nodes over a run: each node's counts
// now less those at the run's start, and the backend's calls.
func nodeCache(now, base []cache.Stats, backendCalls int64) report.Cache {
	var cs report.Cache
	for i, s := range now {
		b := base[i]
		cs.LocalHits += s.LocalHits - b.LocalHits
		cs.RedisHits += s.RedisHits + s.NegativeHits - b.RedisHits - b.NegativeHits
		cs.Misses += s.Misses - b.Misses
		cs.FillLockWaits += s.LockWaits - b.LockWaits
	}
	cs.Hits = cs.LocalHits + cs.RedisHits
	cs.BackendCalls = backendCalls
	return cs
}

// targetCache counts the targets' answers by their X-Cache header as the in-process
// nodes count their cache: "wait" is a Redis hit after waiting for another node's
// fill, "miss" a fill; "shared" (a read that joined one already under way in the
// node) and "bypass" (Redis unusable) are neither.
func targetCache(sources map[cache.Source]int64) report.Cache {
	c := report.Cache{
		LocalHits:     sources[cache.FromLocal],
		RedisHits:     sources[cache.FromRedis] + sources[cache.FromWait],
		Misses:        sources[cache.FromLoad],
		FillLockWaits: sources[cache.FromWait],
		BackendCalls:  sources[cache.FromLoad] + sources[cache.FromBypass],
	}
	c.Hits = c.LocalHits + c.RedisHits
	return c
}

func addCache(total *report.Cache, c report.Cache) {
	total.Hits += c.Hits
	total.Misses += c.Misses
	total.BackendCalls += c.BackendCalls
	total.LocalHits += c.LocalHits
	total.RedisHits += c.RedisHits
	total.FillLockWaits += c.FillLockWaits
}

func sendLag(h *hdrhistogram.Histogram) report.SendLag {
	s := scenario.Summarize(h)
	return report.SendLag{P50: s.P50, P99: s.P99, Max: s.Max}
}

func round1(f float64) float64    { return math.Round(f*10) / 10 }
func round1000(f float64) float64 { return math.Round(f*1000) / 1000 }

// plural is "1 algorithm", "6 algorithms".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// targetPolicyMismatch compares each target's RateLimit-Policy with what the report
// assumes: the quota with --limit, the window with --window (exactly, from ratelab's
// ratelab-window-ms; else in the draft's whole seconds), the algorithm with the one
// --algorithms names. A target that sent no policy, or a field it did not send, is not
// a mismatch: nothing can be compared.
func targetPolicyMismatch(targets, policies []string, opts HammerOptions) []string {
	var out []string
	for i, raw := range policies {
		if raw == "" || i >= len(targets) {
			continue
		}
		ps, err := wire.ParseRateLimitPolicy([]string{raw})
		if err != nil || len(ps) == 0 {
			out = append(out, fmt.Sprintf("%s sent a %s hammer cannot read (%s)", targets[i], wire.HeaderRateLimitPolicy, raw))
			continue
		}
		p, want := ps[0], opts.Policy
		if p.Quota != want.Limit {
			out = append(out, fmt.Sprintf("%s enforces a quota of %d, not --limit %d", targets[i], p.Quota, want.Limit))
		}
		switch wantMs := want.Window.Milliseconds(); {
		case p.WindowMillis > 0 && p.WindowMillis != wantMs:
			out = append(out, fmt.Sprintf("%s enforces a window of %s, not --window %s", targets[i], time.Duration(p.WindowMillis)*time.Millisecond, want.Window))
		case p.WindowMillis == 0 && p.Window > 0 && p.Window != int64((want.Window+time.Second-1)/time.Second):
			out = append(out, fmt.Sprintf("%s enforces a window of %ds, not --window %s", targets[i], p.Window, want.Window))
		}
		if p.Algorithm != "" && len(opts.Algorithms) == 1 && p.Algorithm != opts.Algorithms[0] {
			out = append(out, fmt.Sprintf("%s enforces %s, not --algorithms %s", targets[i], p.Algorithm, opts.Algorithms[0]))
		}
	}
	return out
}
