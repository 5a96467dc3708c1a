package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

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
	ids, sched, err := opts.traffic(uint8(rand.N(256)), ios.In)
	if err != nil {
		return err
	}
	if opts.LimitsFile != "" {
		if opts.policy, err = loadHammerPolicy(opts, ios, ids); err != nil {
			return err
		}
		opts.Policy = opts.policy.reference
		if opts.Trace == "" {
			// The synthetic schedule follows the file's reference limit.
			sched, err = scenario.Build(scenario.Config{
				Pattern: opts.Pattern, IPs: opts.IPs, RPS: opts.RPS, Duration: opts.Duration, Seed: opts.Seed,
				Products: opts.Products, Limit: opts.Policy.Limit, Window: opts.Policy.Window,
			})
			if err != nil {
				return UsageError(err)
			}
		}
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
	describeTrace(h, sched)

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

	var lab *faultLab
	if len(opts.Faults) > 0 {
		if lab, err = openFaultLab(conn); err != nil {
			return err
		}
		defer lab.close()
	}

	names := opts.Algorithms
	if len(opts.Targets) > 0 {
		names = names[:1] // the targets enforce one policy of their own
	}
	if opts.policy != nil {
		names = []string{policyRunName} // one run: the file's limits
	}
	specs := opts.runSpecs(names)
	var bar *progressbar.ProgressBar
	if ios.ErrIsTerminal && opts.Output != "json" {
		// Each run starts on a window edge: with a long window the wait is a good part
		// of the whole, and the estimate says so.
		fmt.Fprintf(ios.ErrOut, "ratelab: %s of %s, each starting on a window edge (a wait of up to %s): at most %s\n",
			plural(len(specs), "run"), opts.Duration, opts.Policy.Window,
			(time.Duration(len(specs)) * (opts.Duration + opts.Policy.Window)).Round(time.Second))
		bar = progressbar.NewOptions64(int64(len(sched.Arrivals))*int64(len(specs)),
			progressbar.OptionSetWriter(ios.ErrOut), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
	}

	// No collections while a run sends, unless its heap nears hammerMemoryLimit (or a
	// lower GOMEMLIMIT), or the embedded Redis shares the heap: each run starts with a
	// collection instead.
	defer pauseCollections(conn)()

	var runs []hammerRun
	var failure error
	for _, spec := range specs {
		name := spec.name
		if ctx.Err() != nil {
			break
		}
		if bar != nil {
			bar.Describe(spec.label())
		}
		runtime.GC()
		var run hammerRun
		if len(opts.Targets) > 0 {
			run, err = hammerTargets(ctx, opts, sched, ids, offset, bar)
			h.TargetPolicies = run.policies
		} else {
			run, err = hammerNodes(ctx, opts, conn, lab, spec, sched, ids, offset, bar)
		}
		if err != nil {
			if ctx.Err() != nil {
				break // interrupted while setting up: the runs so far are the report
			}
			if len(runs) == 0 {
				return err
			}
			// Keep what finished: the report holds those runs and names the one that failed.
			failure = fmt.Errorf("%s: %w", spec.label(), err)
			h.Failed = &report.Failure{Algorithm: spec.label(), Error: err.Error()}
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
	// fault is called when a --fault begins and when it ends, in each run.
	fault func(faultEvent)
	// nodes is called with the in-process nodes' URLs once they are warmed up, just
	// before a run sends (ran false), and once it has sent (ran true).
	nodes func(urls []string, ran bool)
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
