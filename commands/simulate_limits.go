package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/simulate"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// simulateLimits decides a trace or hammer's synthetic traffic by the policy file
// opts.LimitsFile and writes the report, per rule and tier.
func simulateLimits(ctx context.Context, opts SimulateOptions, ios IO) error {
	file, err := loadSimulateLimits(opts.LimitsFile, ios)
	if err != nil {
		return err
	}
	if file.Identity.Kind == policy.IdentityIP {
		opts.TraceOptions.IPv6Prefix = file.Identity.IPv6Prefix
	}
	l, err := simulate.NewLimits(file)
	if err != nil {
		return UsageError(fmt.Errorf("--limits %s: %w", opts.LimitsFile, err))
	}
	s := &report.Simulate{SchemaVersion: report.SimulateSchemaVersion, Version: opts.Version, CommandLine: opts.CommandLine,
		Seed: opts.Seed, Nodes: 1, Store: opts.Store, Algorithms: []report.SimulateAlgorithm{}}
	if opts.Trace == "" {
		err = limitsPattern(ctx, opts, l, s)
	} else {
		err = limitsTrace(ctx, opts, l, s, ios)
	}
	if err != nil {
		return err
	}
	res := l.Result()
	s.Requests, s.Clients = res.Requests, res.Clients
	if res.Requests > 0 {
		s.First, s.Last = time.UnixMicro(res.First).UTC(), time.UnixMicro(res.Last).UTC()
	}
	s.SpanMs = float64(max(res.Last-res.First, l.Span)) / 1000
	s.Limits = limitsReport(opts.LimitsFile, file, res)
	if err := writeSimulateReport(ios, opts, s); err != nil {
		return err
	}
	if s.Interrupted {
		return WithExit(ExitInterrupted, errSimulateInterrupted)
	}
	return nil
}

// loadSimulateLimits reads the policy file, its problems listed on errOut.
func loadSimulateLimits(path string, ios IO) (*policy.Policy, error) {
	p, err := policy.Load(path)
	var bad *policy.Error
	switch {
	case errors.As(err, &bad):
		if werr := report.WriteProblems(ios.ErrOut, bad.Problems); werr != nil {
			return nil, werr
		}
		return nil, Usagef("--limits %s is not a valid policy file (see above); check it with ratelab limits check", path)
	case errors.Is(err, fs.ErrNotExist):
		return nil, Usagef("--limits %s: no such file", path)
	case err != nil:
		return nil, fmt.Errorf("--limits: %w", err)
	}
	return p, nil
}

// limitsPattern decides hammer's schedule, every request a GET of its product from
// SimulateEpoch on, without API keys (so of the default tier).
func limitsPattern(ctx context.Context, opts SimulateOptions, l *simulate.Limits, s *report.Simulate) error {
	sched, err := scenario.Build(scenario.Config{
		Pattern: opts.Pattern, IPs: opts.IPs, RPS: opts.RPS, Duration: opts.Duration, Seed: opts.Seed,
		Products: opts.Products, Limit: DefaultHammerLimit, Window: DefaultHammerWindow,
	})
	if err != nil {
		return UsageError(err)
	}
	ids, err := scenario.Identities(opts.IPs, 0)
	if err != nil {
		return UsageError(err)
	}
	s.Source, s.Pattern, s.IPs, s.TargetRPS = "pattern", opts.Pattern, opts.IPs, opts.RPS
	s.DurationMs = float64(opts.Duration) / float64(time.Millisecond)
	base := SimulateEpoch.UnixMicro()
	l.Span = opts.Duration.Microseconds()
	for i, a := range sched.Arrivals {
		if i%progressEvery == 0 && ctx.Err() != nil {
			s.Interrupted = true
			break
		}
		l.Add(trace.Request{Time: base + a.At.Microseconds(), Client: ids[a.Identity], Method: "GET",
			Route: "/products/" + strconv.Itoa(int(a.Product))})
	}
	return nil
}

// limitsTrace decides the trace file's requests.
func limitsTrace(ctx context.Context, opts SimulateOptions, l *simulate.Limits, s *report.Simulate, ios IO) error {
	tr, bar, err := openSimulateTrace(opts, ios, "decided by "+report.Shown(opts.LimitsFile))
	if err != nil {
		return err
	}
	defer tr.Close()
	for n := 1; ; n++ {
		req, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("--trace %s: %w", opts.Trace, err)
		}
		l.Add(req)
		if n%progressEvery == 0 {
			if bar != nil {
				_ = bar.Set64(tr.BytesRead())
			}
			if ctx.Err() != nil {
				s.Interrupted = true
				break
			}
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	s.Source, s.Trace = "trace", traceReport(opts, tr)
	return nil
}

// limitsReport is res for the report, with the file's names for its rules and limits.
func limitsReport(path string, file *policy.Policy, res simulate.LimitsResult) *report.SimulateLimits {
	id := file.Identity.Kind
	if id == policy.IdentityHeader {
		id += ":" + file.Identity.Header
	}
	out := &report.SimulateLimits{File: path, SHA256: file.Hash, Identity: id, Unmatched: res.Unmatched,
		Unidentified: res.Unidentified, Rules: []report.SimulateRule{}}
	for _, r := range res.Rules {
		rule := &file.Rules[r.Rule]
		sr := report.SimulateRule{Rule: rule.Name, Match: rule.Describe(), Line: rule.Line, Tier: r.Tier, Unlimited: rule.Unlimited,
			Requests: r.Requests, Allowed: r.Allowed, Denied: r.Denied, ShadowDenied: r.ShadowDenied, Clients: r.Clients,
			Limits: []report.SimulateRuleLimit{}}
		for i, lim := range rule.Enforced() {
			sr.Limits = append(sr.Limits, report.SimulateRuleLimit{Name: lim.Name, Algorithm: lim.Algorithm, Limit: lim.Policy.Limit,
				WindowMs: float64(lim.Policy.Window) / float64(time.Millisecond), Burst: lim.Policy.EffectiveBurst(),
				Requests: r.Requests, Denied: r.DeniedBy[i]})
		}
		for i, lim := range rule.Shadowed() {
			sr.Limits = append(sr.Limits, report.SimulateRuleLimit{Name: lim.Name, Algorithm: lim.Algorithm, Limit: lim.Policy.Limit,
				WindowMs: float64(lim.Policy.Window) / float64(time.Millisecond), Burst: lim.Policy.EffectiveBurst(), Shadow: true,
				Requests: r.Requests, ShadowDenied: r.ShadowBy[i]})
		}
		if r.WellBehavedRefused != nil {
			sr.WellBehavedRefused = &report.WhoPaid{Clients: r.WellBehavedRefused.Clients, Requests: r.WellBehavedRefused.Requests}
			sr.AbuseAdmitted = &report.WhoPaid{Clients: r.AbuseAdmitted.Clients, Requests: r.AbuseAdmitted.Requests}
		}
		out.Rules = append(out.Rules, sr)
	}
	return out
}
