package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/simulate"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// progressEvery is how many requests go between two looks at the progress bar and
// at an interrupt.
const progressEvery = 1 << 16

// errSimulateInterrupted is the error of a simulation stopped by a signal.
var errSimulateInterrupted = errors.New("interrupted: the report covers what was read")

// Simulate runs the algorithms' models over a trace or hammer's synthetic traffic in
// virtual time and writes the report. opts passed Validate, as cmd does.
func Simulate(ctx context.Context, opts SimulateOptions, ios IO) error {
	if err := checkOutFile(opts.OutFile); err != nil {
		return err
	}
	if opts.LimitsFile != "" {
		return simulateLimits(ctx, opts, ios)
	}
	if opts.SweepFile != "" {
		if err := loadSweep(&opts); err != nil {
			return err
		}
	}
	policies := opts.Policies()
	nodes := 1
	if opts.Store == productapi.StoreLocal {
		nodes = opts.Nodes
	}
	cfg := simulate.Config{Algorithms: opts.Algorithms, Policies: policies, Nodes: nodes, Balancer: opts.Balancer, Follow: opts.Follow}
	s := &report.Simulate{SchemaVersion: report.SimulateSchemaVersion, Version: opts.Version, CommandLine: opts.CommandLine,
		Seed: opts.Seed, Nodes: opts.Nodes, Store: opts.Store, Sweep: len(policies) > 1}
	if opts.Store == productapi.StoreLocal {
		s.Balancer = opts.Balancer
	}
	var run simulation
	var err error
	if opts.Trace == "" {
		run, err = simulatePattern(ctx, opts, cfg, s)
	} else {
		run, err = simulateTrace(ctx, opts, cfg, s, ios)
	}
	if err != nil {
		return err
	}
	buildSimulateReport(s, run, opts)
	if err := writeSimulateReport(ios, opts, s); err != nil {
		return err
	}
	if s.Interrupted {
		return WithExit(ExitInterrupted, errSimulateInterrupted)
	}
	return nil
}

// simulation is what a run found, before it becomes the report.
type simulation struct {
	res simulate.Result
	// start is the virtual time (µs) the timeline's edge is counted from, and edge
	// that edge: the schedule's, or the followed client's busiest.
	start, edge int64
	// span is the time a client's rate is judged over (µs).
	span        int64
	interrupted bool
}

// simulatePattern runs hammer's schedule for the first policy, from SimulateEpoch
// rounded up to a window edge, as hammer starts each run on a window edge.
func simulatePattern(ctx context.Context, opts SimulateOptions, cfg simulate.Config, s *report.Simulate) (simulation, error) {
	first := opts.Policies()[0]
	sched, err := scenario.Build(scenario.Config{
		Pattern: opts.Pattern, IPs: opts.IPs, RPS: opts.RPS, Duration: opts.Duration, Seed: opts.Seed,
		Products: opts.Products, Limit: first.Limit, Window: first.Window,
	})
	if err != nil {
		return simulation{}, UsageError(err)
	}
	ids, err := scenario.Identities(opts.IPs, 0)
	if err != nil {
		return simulation{}, UsageError(err)
	}
	s.Source, s.Pattern, s.IPs, s.TargetRPS = "pattern", opts.Pattern, opts.IPs, opts.RPS
	s.DurationMs = float64(opts.Duration) / float64(time.Millisecond)
	if cfg.Follow == "" {
		cfg.Follow = ids[sched.AttackerOrFirst()]
	}
	cfg.Span = opts.Duration.Microseconds()
	e, err := simulate.New(cfg)
	if err != nil {
		return simulation{}, UsageError(err)
	}
	for _, id := range ids {
		e.Intern(id)
	}
	w := first.WindowMicros()
	base := (SimulateEpoch.UnixMicro() + w - 1) / w * w
	run := simulation{start: base, edge: base + sched.TimelineEdge().Microseconds(), span: cfg.Span}
	for i, a := range sched.Arrivals {
		if i%progressEvery == 0 && ctx.Err() != nil {
			run.interrupted = true
			break
		}
		e.AddID(base+a.At.Microseconds(), a.Identity)
	}
	run.res = e.Result(opts.Top)
	return run, nil
}

// simulateTrace runs the trace file, reading it once whatever the policies.
func simulateTrace(ctx context.Context, opts SimulateOptions, cfg simulate.Config, s *report.Simulate, ios IO) (simulation, error) {
	e, err := simulate.New(cfg)
	if err != nil {
		return simulation{}, UsageError(err)
	}
	tr, bar, err := openSimulateTrace(opts, ios, fmt.Sprintf("%d lanes", len(cfg.Policies)*len(cfg.Algorithms)))
	if err != nil {
		return simulation{}, err
	}
	defer tr.Close()
	var run simulation
	batches, stop := readBatches(tr)
	defer stop()
	for b := range batches {
		if b.err != nil {
			return simulation{}, fmt.Errorf("--trace %s: %w", opts.Trace, b.err)
		}
		e.AddBatch(b.times, b.clients)
		b.done()
		if bar != nil {
			_ = bar.Set64(tr.BytesRead())
		}
		if ctx.Err() != nil {
			run.interrupted = true
			break
		}
	}
	stop()
	if bar != nil {
		_ = bar.Finish()
	}
	s.Source, s.Trace = "trace", traceReport(opts, tr)
	run.res = e.Result(opts.Top)
	run.start = run.res.First
	if len(run.res.Lanes) > 0 {
		run.edge = simulate.BusiestEdge(run.res.Lanes[0].Followed, run.res.Lanes[0].Policy.WindowMicros())
	}
	return run, nil
}

// openSimulateTrace opens --trace, with a progress bar on a terminal; what says
// what the run decides, for the line above the bar.
func openSimulateTrace(opts SimulateOptions, ios IO, what string) (*trace.Reader, *progressbar.ProgressBar, error) {
	tr, err := trace.Open(opts.Trace, ios.In, opts.TraceOptions)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, Usagef("--trace %s: no such file", opts.Trace)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--trace: %w", err)
	}
	var bar *progressbar.ProgressBar
	if ios.ErrIsTerminal && opts.Output != report.FormatJSON && opts.Trace != "-" {
		if fi, err := os.Stat(opts.Trace); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(ios.ErrOut, "ratelab: reading %s (%d bytes), %s\n", report.Shown(opts.Trace), fi.Size(), what)
			bar = progressbar.NewOptions64(fi.Size(), progressbar.OptionSetWriter(ios.ErrOut),
				progressbar.OptionSetDescription("reading "+report.Shown(opts.Trace)), progressbar.OptionShowBytes(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish(), progressbar.OptionSetWidth(30))
		}
	}
	return tr, bar, nil
}

// traceReport is what was read of tr, for the report.
func traceReport(opts SimulateOptions, tr *trace.Reader) *report.SimulateTrace {
	st := tr.Stats()
	file := opts.Trace
	if file == "-" {
		file = "(standard input)"
	}
	t := &report.SimulateTrace{File: file, Format: st.Format, Gzip: st.Gzip, Client: opts.TraceOptions.Client, Bytes: st.Bytes,
		Lines: st.Lines, BadLines: st.Bad, OutOfRange: st.OutOfRange, Reordered: st.Reordered}
	if t.Client == "" {
		t.Client = trace.ClientRemoteAddr
	}
	for _, b := range st.BadSamples {
		t.BadSamples = append(t.BadSamples, report.BadLine{Line: b.Line, Reason: b.Reason})
	}
	return t
}

// buildSimulateReport fills s with what the run found. It reads nothing but its arguments.
func buildSimulateReport(s *report.Simulate, run simulation, opts SimulateOptions) {
	res := run.res
	s.Requests, s.Clients, s.Interrupted = res.Requests, res.Clients, run.interrupted
	if res.Requests > 0 {
		s.First, s.Last = time.UnixMicro(res.First).UTC(), time.UnixMicro(res.Last).UTC()
	}
	span := max(run.span, res.Last-res.First)
	s.SpanMs = float64(span) / 1000
	bound := int64(1)
	if opts.Store == productapi.StoreLocal && opts.Balancer == simulate.RoundRobin {
		bound = int64(opts.Nodes)
	}
	for _, l := range res.Lanes {
		p := l.Policy
		a := report.SimulateAlgorithm{Name: l.Algorithm, Limit: p.Limit, WindowMs: float64(p.Window) / float64(time.Millisecond),
			Burst: p.EffectiveBurst(), Sent: l.Allowed + l.Denied, Allowed: l.Allowed, Denied: l.Denied,
			PeakInWindow: l.Burst.PeakInWindow, PeakInTenthWindow: l.Burst.PeakInTenthWindow, PeakClient: l.PeakClient,
			ExpectedMaxInWindow: algorithms.ExpectedMaxInWindow(l.Algorithm, p) * bound, BurstRatio: l.Burst.BurstRatio,
			WellBehavedRefused: report.WhoPaid{Clients: l.WellBehavedRefused.Clients, Requests: l.WellBehavedRefused.Requests},
			AbuseAdmitted:      report.WhoPaid{Clients: l.AbuseAdmitted.Clients, Requests: l.AbuseAdmitted.Requests},
			Clients:            []report.SimulateClient{},
		}
		for _, c := range l.Top {
			sc := report.SimulateClient{Client: c.Client, Requests: c.Requests, Allowed: c.Allowed, Denied: c.Denied, PeakInWindow: c.PeakInWindow}
			if c.FirstDenial != 0 {
				t := time.UnixMicro(c.FirstDenial).UTC()
				sc.FirstDenial = &t
			}
			a.Clients = append(a.Clients, sc)
		}
		if !s.Sweep && res.Followed != "" && run.edge != 0 {
			tl := scenario.NewTimeline(res.Followed, l.Followed, run.edge, p.Window)
			a.Timeline = &report.Timeline{Identity: tl.Identity, EdgeOffsetMs: float64(run.edge-run.start) / 1000,
				BucketMs: float64(tl.BucketMicros) / 1000, Counts: tl.Counts}
		}
		s.Algorithms = append(s.Algorithms, a)
	}
}

// traceBatch is requests of a trace, read ahead while the engine decides the ones
// before: reading and deciding take a core each.
type traceBatch struct {
	times   []int64
	clients []string
	err     error
	done    func()
}

// readBatches reads tr in batches of progressEvery requests on a goroutine of its
// own, at most two batches ahead. stop ends it and waits for it; it may be called
// more than once.
func readBatches(tr *trace.Reader) (batches <-chan *traceBatch, stop func()) {
	out := make(chan *traceBatch, 1)
	free := make(chan *traceBatch, 3)
	for range 3 {
		free <- &traceBatch{times: make([]int64, 0, progressEvery), clients: make([]string, 0, progressEvery)}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(out)
		for {
			var b *traceBatch
			select {
			case b = <-free:
			case <-quit:
				return
			}
			b.times, b.clients, b.done = b.times[:0], b.clients[:0], func() { free <- b }
			for len(b.times) < progressEvery {
				req, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.err = err
					break
				}
				b.times, b.clients = append(b.times, req.Time), append(b.clients, req.Client)
			}
			if len(b.times) == 0 && b.err == nil {
				return
			}
			select {
			case out <- b:
			case <-quit:
				return
			}
			if b.err != nil || len(b.times) < progressEvery {
				return
			}
		}
	})
	var once sync.Once
	return out, func() {
		once.Do(func() { close(quit) })
		wg.Wait()
	}
}
