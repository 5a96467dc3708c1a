package commands

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/faultproxy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// The fault kinds of --fault (docs/faults.md).
const (
	// FaultStall: Redis stops answering; connections stay open.
	FaultStall = "stall"
	// FaultLatency: every Redis round trip takes ARG longer.
	FaultLatency = "latency"
	// FaultDrop: connections are reset and new ones refused.
	FaultDrop = "drop"
	// FaultRestart: the run's limiter keys vanish and connections are reset, as in a
	// restart of a Redis without persistence (never FLUSHALL: only ratelab's keys of
	// this run are deleted).
	FaultRestart = "restart"
	// FaultScriptFlush: SCRIPT FLUSH, so the next EVALSHA finds no script.
	FaultScriptFlush = "script-flush"
)

// FaultHelp is --fault's form, for help texts and errors.
const FaultHelp = "KIND@START+DURATION[:ARG]: stall@1s+500ms, latency@1s+1s:20ms, drop@1s+200ms, restart@2s, script-flush@2s"

// DefaultFaultOutageAfter is how long checks must fail, with no success between,
// before a node declares an outage and its fail mode decides, in a run with --fault
// and no --outage-after: short next to a fault, so the modes differ while it holds.
const DefaultFaultOutageAfter = 100 * time.Millisecond

// Fault is one --fault: a kind, when it starts in each run (from the run's aligned
// start), how long it holds (0 for an instant kind), and its argument (latency's D).
type Fault struct {
	Kind     string
	Start    time.Duration
	Duration time.Duration
	Arg      time.Duration
}

// String is the fault as --fault takes it.
func (f Fault) String() string {
	s := f.Kind + "@" + f.Start.String()
	if f.Duration > 0 {
		s += "+" + f.Duration.String()
	}
	if f.Arg > 0 {
		s += ":" + f.Arg.String()
	}
	return s
}

// instant reports whether the fault happens at one moment rather than holding.
func (f Fault) instant() bool { return f.Kind == FaultRestart || f.Kind == FaultScriptFlush }

// ParseFault reads one --fault value.
func ParseFault(s string) (Fault, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("--fault %q: %s; use %s", s, fmt.Sprintf(format, args...), FaultHelp)
	}
	kind, rest, ok := strings.Cut(strings.TrimSpace(s), "@")
	if !ok {
		return Fault{}, bad("no @START")
	}
	f := Fault{Kind: kind}
	kinds := []string{FaultStall, FaultLatency, FaultDrop, FaultRestart, FaultScriptFlush}
	if !slices.Contains(kinds, kind) {
		return Fault{}, bad("unknown kind %q: choose %s", kind, strings.Join(kinds, ", "))
	}
	rest, arg, hasArg := strings.Cut(rest, ":")
	start, dur, hasDur := strings.Cut(rest, "+")
	var err error
	if f.Start, err = time.ParseDuration(start); err != nil || f.Start < 0 {
		return Fault{}, bad("START %q is not a duration from the run's start (e.g. 1s)", start)
	}
	if hasDur {
		if f.Duration, err = time.ParseDuration(dur); err != nil || f.Duration <= 0 {
			return Fault{}, bad("DURATION %q is not a positive duration (e.g. 500ms)", dur)
		}
	}
	if hasArg {
		if f.Arg, err = time.ParseDuration(arg); err != nil || f.Arg <= 0 {
			return Fault{}, bad("ARG %q is not a positive duration (e.g. 20ms)", arg)
		}
	}
	switch {
	case f.instant() && hasDur:
		return Fault{}, bad("%s happens at one moment: give no +DURATION (e.g. %s@2s)", kind, kind)
	case !f.instant() && !hasDur:
		return Fault{}, bad("%s needs +DURATION, how long it holds (e.g. %s@1s+500ms)", kind, kind)
	case kind == FaultLatency && !hasArg:
		return Fault{}, bad("latency needs :D, how much longer each round trip takes (e.g. latency@1s+1s:20ms)")
	case kind != FaultLatency && hasArg:
		return Fault{}, bad("%s takes no :ARG", kind)
	}
	return f, nil
}

// validateFaults checks --fault and the fail-mode flags against the rest of the run.
func (o HammerOptions) validateFaults() error {
	seen := map[productapi.FailMode]bool{}
	for _, m := range o.FailModes {
		if _, err := productapi.ParseFailMode(string(m)); err != nil {
			return Usagef("--fail-modes: %v", err)
		}
		if seen[m] {
			return Usagef("--fail-modes: %q is listed twice", m)
		}
		seen[m] = true
	}
	if o.OnRedisError != "" {
		if _, err := productapi.ParseFailMode(string(o.OnRedisError)); err != nil {
			return Usagef("--%v", err)
		}
	}
	switch {
	case o.LocalShare < 0 || o.LocalShare > MaxLocalShare:
		return Usagef("--local-share %d: choose between 1 and %d (0: --nodes)", o.LocalShare, MaxLocalShare)
	case o.OutageAfter < 0:
		return Usagef("--outage-after %s: it must not be negative", o.OutageAfter)
	case o.MaxAbuseRatio != nil && !(*o.MaxAbuseRatio >= 0 && *o.MaxAbuseRatio <= 1):
		return Usagef("--max-abuse-ratio %v: choose between 0 and 1", *o.MaxAbuseRatio)
	case o.MaxGoodRefusedRatio != nil && !(*o.MaxGoodRefusedRatio >= 0 && *o.MaxGoodRefusedRatio <= 1):
		return Usagef("--max-good-refused-ratio %v: choose between 0 and 1", *o.MaxGoodRefusedRatio)
	case o.MaxRecovery < 0:
		return Usagef("--max-recovery %s: it must not be negative", o.MaxRecovery)
	}
	if len(o.FailModes) > 0 && len(o.Targets) > 0 {
		return Usagef("--fail-modes: the --target services decide their own fail mode; run them with --on-redis-error instead")
	}
	if len(o.Faults) == 0 {
		if o.MaxAbuseRatio != nil || o.MaxGoodRefusedRatio != nil || o.MaxRecovery > 0 {
			return Usagef("--max-abuse-ratio, --max-good-refused-ratio and --max-recovery measure a fault: give --fault too")
		}
		return nil
	}
	switch {
	case len(o.Targets) > 0:
		return Usagef("--fault: the fault proxy stands between in-process nodes and Redis; it cannot reach --target services")
	case o.Store == productapi.StoreLocal:
		return Usagef("--fault: with --store local the limiters do not use Redis; use --store redis")
	}
	var spans []Fault
	for _, f := range o.Faults {
		if f.Start+f.Duration > o.Duration {
			return Usagef("--fault %s ends after the run's --duration %s: start it earlier or raise --duration", f, o.Duration)
		}
		if f.instant() {
			continue
		}
		for _, g := range spans {
			if f.Start < g.Start+g.Duration && g.Start < f.Start+f.Duration {
				return Usagef("--fault %s overlaps --fault %s: faults that hold must not overlap", f, g)
			}
		}
		spans = append(spans, f)
	}
	return nil
}

// failModes are the fail modes each algorithm runs under: --fail-modes, else the one
// --on-redis-error names (open by default). compared says --fail-modes was given, so
// rows name their mode.
func (o HammerOptions) failModes() (modes []productapi.FailMode, compared bool) {
	if len(o.FailModes) > 0 {
		return o.FailModes, true
	}
	if o.OnRedisError != "" {
		return []productapi.FailMode{o.OnRedisError}, false
	}
	return []productapi.FailMode{productapi.FailOpen}, false
}

// localShare is how many nodes share the limit in fail mode local: --local-share,
// else --nodes.
func (o HammerOptions) localShare() int { return cmpOr(o.LocalShare, o.Nodes) }

// outageAfter is the nodes' ProbeTimeout: --outage-after, else
// DefaultFaultOutageAfter with --fault, else productapi's default.
func (o HammerOptions) outageAfter() time.Duration {
	switch {
	case o.OutageAfter > 0:
		return o.OutageAfter
	case len(o.Faults) > 0:
		return DefaultFaultOutageAfter
	}
	return 0
}

// faultLab is the fault proxy hammer puts between the nodes' limiters and Redis, the
// limiters' connection through it, and the direct connection that restarts and
// flushes go through.
type faultLab struct {
	proxy  *faultproxy.Proxy
	via    *redisconn.Conn
	direct *redisconn.Conn
}

// openFaultLab starts the proxy in front of conn's server; a cluster is refused.
func openFaultLab(conn *redisconn.Conn) (*faultLab, error) {
	network, addr, err := conn.Upstream()
	if errors.Is(err, redisconn.ErrClusterVia) {
		return nil, UsageError(fmt.Errorf("--fault: %w", err))
	}
	if err != nil {
		return nil, err
	}
	p, err := faultproxy.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	via, err := conn.Via(p.Addr())
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return &faultLab{proxy: p, via: via, direct: conn}, nil
}

func (l *faultLab) close() {
	_ = l.via.Close()
	_ = l.proxy.Close()
}

// faultEvent is a fault that began or ended in one algorithm's run, for hooks.
type faultEvent struct {
	Algorithm string
	Mode      productapi.FailMode
	Fault     Fault
	Ended     bool
	// At is when it happened, from the run's start.
	At time.Duration
}

// faultSchedule applies each fault at its time from start and ends it after its
// duration; wait returns the faults' actual spans, once every one is over (at once,
// healed, when ctx ends). forget deletes the run's limiter keys (restart).
func (l *faultLab) schedule(ctx context.Context, start time.Time, faults []Fault, forget func(), notify func(faultEvent)) (wait func() ([]scenario.FaultSpan, error)) {
	spans := make([]scenario.FaultSpan, len(faults))
	errs := make([]error, len(faults))
	var wg sync.WaitGroup
	until := func(at time.Time) bool {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for i, f := range faults {
		wg.Go(func() {
			if !until(start.Add(f.Start)) {
				return
			}
			// The fault begins once it is in force: a request that arrives after began
			// meets it.
			errs[i] = l.apply(ctx, f, forget)
			began := time.Since(start)
			notify(faultEvent{Fault: f, At: began})
			if f.Duration == 0 {
				spans[i] = scenario.FaultSpan{Start: began}
				return
			}
			// It holds for its duration from when it began, however late this process
			// got to begin it.
			until(start.Add(began + f.Duration))
			if err := l.proxy.Heal(); err != nil && errs[i] == nil {
				errs[i] = err
			}
			ended := time.Since(start)
			spans[i] = scenario.FaultSpan{Start: began, Duration: ended - began}
			notify(faultEvent{Fault: f, Ended: true, At: ended})
		})
	}
	return func() ([]scenario.FaultSpan, error) {
		wg.Wait()
		return spans, errors.Join(errs...)
	}
}

// apply starts one fault now.
func (l *faultLab) apply(ctx context.Context, f Fault, forget func()) error {
	switch f.Kind {
	case FaultStall:
		l.proxy.Stall()
	case FaultLatency:
		l.proxy.Delay(f.Arg)
	case FaultDrop:
		return l.proxy.Drop()
	case FaultRestart:
		l.proxy.Reset()
		forget()
	case FaultScriptFlush:
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := l.direct.Client.ScriptFlush(fctx).Err(); err != nil {
			return fmt.Errorf("--fault %s: %w", f, redisconn.Explain(err, l.direct.Backend))
		}
	}
	return nil
}

// faultSpan is the faults of one run measured as one: from the first's start to the
// last's end, their kinds joined.
func faultSpan(faults []Fault, spans []scenario.FaultSpan) (string, scenario.FaultSpan) {
	if len(spans) == 0 {
		return "", scenario.FaultSpan{}
	}
	kinds := make([]string, len(faults))
	first, last := spans[0].Start, spans[0].End()
	for i, s := range spans {
		kinds[i] = faults[i].Kind
		first, last = min(first, s.Start), max(last, s.End())
	}
	return strings.Join(kinds, "+"), scenario.FaultSpan{Start: first, Duration: last - first}
}

// faultRow is the report's fault object of one run; nil without a fault.
func faultRow(r hammerRun) *report.Fault {
	if len(r.faultSpans) == 0 {
		return nil
	}
	kind, span := faultSpan(r.faults, r.faultSpans)
	a := scenario.AnalyzeFault(r.trace, r.policy, span, r.runEnd)
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	f := &report.Fault{
		Kind: kind, StartMs: msOf(span.Start), DurationMs: msOf(span.Duration), MeasuredMs: msOf(a.To - a.From),
		Requests: a.Requests, Admitted: a.Admitted,
		OverLimitAdmitted: a.OverLimitAdmitted, OverLimitAttempts: a.OverLimitAttempts,
		WithinLimitRefused: a.WithinLimitRefused, WithinLimitAttempts: a.WithinLimitAttempts,
		AbuseRatio:       round1000(ratio(a.OverLimitAdmitted, a.OverLimitAttempts)),
		GoodRefusedRatio: round1000(ratio(a.WithinLimitRefused, a.WithinLimitAttempts)),
		FailOpen:         a.FailOpen, FailClosed: a.FailClosed, Local: a.Local, Errors: a.Errors,
		PeakInWindow: a.PeakInWindow, FailModePeakInWindow: a.FailModePeakInWindow,
		CheckLatencyUs:     report.FaultLatency{P50: a.CheckLatency.P50, P99: a.CheckLatency.P99, Max: a.CheckLatency.Max},
		PreFaultCheckP99Us: a.PreFaultCheckP99,
		Timeline: report.FaultTimeline{StartMs: msOf(a.Timeline.Start), BucketMs: msOf(a.Timeline.Bucket),
			Admitted: a.Timeline.Admitted, Denied: a.Timeline.Denied, FailOpen: a.Timeline.FailOpen,
			FailClosed: a.Timeline.FailClosed, Local: a.Timeline.Local, Errors: a.Timeline.Errors},
	}
	if r.localShare > 0 {
		f.LocalBound = int64(r.localShare) * algorithms.ExpectedMaxInWindow(r.name, productapi.SharePolicy(r.policy, r.localShare))
	}
	if a.Recovered {
		v := msOf(a.Recovery)
		f.RecoveryMs = &v
	}
	if a.LatencyRecovered {
		v := msOf(a.LatencyRecovery)
		f.LatencyRecoveryMs = &v
	}
	return f
}

// faultThresholds checks --max-abuse-ratio, --max-good-refused-ratio and
// --max-recovery against each row's fault.
func faultThresholds(h *report.Hammer, opts HammerOptions, check func(name, subject string, limit, value float64, ok bool, noData string)) {
	for _, a := range h.Algorithms {
		f := a.Fault
		noFault := ""
		if f == nil {
			noFault = "no fault was measured"
			f = &report.Fault{}
		}
		if opts.MaxAbuseRatio != nil {
			noData := cmpOrString(noFault, when(f.OverLimitAttempts == 0, "no request over the limit during the fault"))
			check("max-abuse-ratio", a.Label(), *opts.MaxAbuseRatio, f.AbuseRatio, f.AbuseRatio <= *opts.MaxAbuseRatio, noData)
		}
		if opts.MaxGoodRefusedRatio != nil {
			noData := cmpOrString(noFault, when(f.WithinLimitAttempts == 0, "no request within the limit during the fault"))
			check("max-good-refused-ratio", a.Label(), *opts.MaxGoodRefusedRatio, f.GoodRefusedRatio, f.GoodRefusedRatio <= *opts.MaxGoodRefusedRatio, noData)
		}
		if opts.MaxRecovery > 0 {
			limit := float64(opts.MaxRecovery.Microseconds()) / 1000
			var v float64
			if f.RecoveryMs != nil {
				v = *f.RecoveryMs
			}
			noData := cmpOrString(noFault, when(f.RecoveryMs == nil, "the limiter decided nothing after the fault"))
			check("max-recovery", a.Label(), limit, v, v <= limit, noData)
		}
	}
}

func when(missing bool, why string) string {
	if missing {
		return why
	}
	return ""
}

func cmpOrString(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// forgetRun is the restart fault's deletion: the run's limiter keys, by the
// identities of the run (and the warm-up's), on the direct connection.
func forgetRun(conn *redisconn.Conn, keys algorithms.Keyspace, name string, p algorithms.Policy, ids []string, warm string) func() {
	return func() { forgetIdentities(conn, keys, name, p, append(slices.Clone(ids), warm)) }
}

// runSpec is one run of the comparison: an algorithm under a fail mode.
type runSpec struct {
	name string
	mode productapi.FailMode
	// compared says the run's row names its mode (--fail-modes).
	compared bool
}

func (s runSpec) label() string {
	if !s.compared {
		return s.name
	}
	return s.name + "/" + string(s.mode)
}

// runSpecs are the runs, in order: each algorithm once per fail mode, the modes of one
// algorithm one after another.
func (o HammerOptions) runSpecs(names []string) []runSpec {
	modes, compared := o.failModes()
	var out []runSpec
	for _, n := range names {
		for _, m := range modes {
			out = append(out, runSpec{name: n, mode: m, compared: compared})
		}
	}
	return out
}
