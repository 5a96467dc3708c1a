package commands

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/simulate"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// DefaultSimulateTop is how many clients the simulate report lists per algorithm.
const DefaultSimulateTop = 5

// SimulateEpoch is where a synthetic pattern's virtual time begins (rounded up to a
// window edge of the first policy): a fixed instant, so that the same flags give the
// same report.
var SimulateEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// SimulateOptions is everything `ratelab simulate` is told.
type SimulateOptions struct {
	// Traffic is hammer's synthetic traffic, used when Trace is empty.
	Traffic
	// Limits, Windows and Bursts make the policies: every combination, in that order
	// (a sweep when there is more than one).
	Limits  []int64
	Windows []time.Duration
	Bursts  []int64
	// SweepFile, when set, lists the policies instead (ParseSweep); Simulate reads it
	// into Sweep.
	SweepFile string
	Sweep     []algorithms.Policy
	// LimitsFile, when set, is a policy file whose rules decide the requests
	// instead of Algorithms and the policies (cmd refuses those flags beside it).
	LimitsFile string
	// Algorithms are decided side by side (cmd makes an empty --algorithms all six).
	Algorithms []string
	// Nodes and Store: with productapi.StoreLocal each of Nodes has its own limiter,
	// behind Balancer (simulate.RoundRobin or simulate.HashClient).
	Nodes    int
	Store    string
	Balancer string
	// Trace is a trace file ("-" for standard input); empty for the synthetic traffic.
	Trace string
	// TraceOptions say how the trace is read.
	TraceOptions trace.Options
	// Top is how many clients the report lists per algorithm.
	Top int
	// Follow is the client the timeline follows ("": the pattern's first boundary
	// attacker, or the trace's first client).
	Follow string
	// Output is table, json, markdown or html.
	Output string
	// OutFile, when set, receives the report in Output's format (written atomically),
	// and Out gets the table.
	OutFile string
	// Version and CommandLine go into the report.
	Version     string
	CommandLine []string
}

// Traffic is hammer's synthetic traffic: the schedule scenario.Build makes.
type Traffic struct {
	Pattern  string
	IPs      int
	RPS      float64
	Duration time.Duration
	Seed     uint64
	Products int
}

// Policies are the policies of o: Sweep's, or every combination of its limits, windows
// and bursts.
func (o SimulateOptions) Policies() []algorithms.Policy {
	if len(o.Sweep) > 0 {
		return o.Sweep
	}
	bursts := o.Bursts
	if len(bursts) == 0 {
		bursts = []int64{0}
	}
	var out []algorithms.Policy
	for _, l := range o.Limits {
		for _, w := range o.Windows {
			for _, b := range bursts {
				out = append(out, algorithms.Policy{Limit: l, Window: w, Burst: b})
			}
		}
	}
	return out
}

// Validate checks the options without changing them, with usage errors that say which
// flag to change.
func (o SimulateOptions) Validate() error {
	if o.Trace == "" {
		switch {
		case o.IPs < 1 || o.IPs > scenario.MaxIdentities:
			return Usagef("--ips %d: choose between 1 and %d", o.IPs, scenario.MaxIdentities)
		case !(o.RPS > 0) || math.IsInf(o.RPS, 0):
			return Usagef("--rps %v: the rate must be a positive number of requests per second", o.RPS)
		case o.Duration <= 0:
			return Usagef("--duration %s: it must be positive (e.g. 3s)", o.Duration)
		case o.RPS*o.Duration.Seconds() > scenario.MaxArrivals:
			return Usagef("--rps %v for --duration %s is more than %d requests; lower one of them, or simulate a --trace", o.RPS, o.Duration, scenario.MaxArrivals)
		case o.Products < 1 || o.Products > MaxHammerProducts:
			return Usagef("--products %d: choose between 1 and %d", o.Products, MaxHammerProducts)
		}
		if err := scenario.CheckPattern(o.Pattern); err != nil {
			return Usagef("--pattern: %v", err)
		}
	}
	switch {
	case len(o.Limits) == 0 || len(o.Windows) == 0:
		return Usagef("--limit and --window: give at least one of each")
	case o.Nodes < 1 || o.Nodes > MaxHammerNodes:
		return Usagef("--nodes %d: choose between 1 and %d", o.Nodes, MaxHammerNodes)
	case o.Store != productapi.StoreRedis && o.Store != productapi.StoreLocal:
		return Usagef("--store %q: choose %q (one limit shared by every node) or %q (a limiter per node)", o.Store, productapi.StoreRedis, productapi.StoreLocal)
	case !slices.Contains(simulate.Balancers(), o.Balancer):
		return Usagef("--balancer %q: choose one of %s", o.Balancer, strings.Join(simulate.Balancers(), ", "))
	case o.Top < 0:
		return Usagef("--top %d: it must not be negative", o.Top)
	case !slices.Contains(report.Formats(), o.Output):
		return Usagef("--output %q: choose one of %s", o.Output, strings.Join(report.Formats(), ", "))
	case !o.TraceOptions.From.IsZero() && !o.TraceOptions.To.IsZero() && !o.TraceOptions.To.After(o.TraceOptions.From):
		return Usagef("--to %s is not after --from %s", o.TraceOptions.To.Format(time.RFC3339), o.TraceOptions.From.Format(time.RFC3339))
	}
	if f := o.TraceOptions.Format; f != "" && !slices.Contains(trace.Formats(), f) {
		return Usagef("--format %q: choose one of %s (or leave it out to tell by the first line)", f, strings.Join(trace.Formats(), ", "))
	}
	if c := o.TraceOptions.Client; c != "" && !slices.Contains(trace.ClientModes(), c) {
		return Usagef("--client %q: choose one of %s", c, strings.Join(trace.ClientModes(), ", "))
	}
	if p := o.TraceOptions.IPv6Prefix; p != 0 {
		if err := algorithms.CheckIPv6Prefix(p); err != nil {
			return Usagef("--ipv6-prefix: %v", err)
		}
	}
	policies := o.Policies()
	if n := len(policies) * len(o.Algorithms); n > simulate.MaxLanes {
		return Usagef("%d policies × %d algorithms is %d lanes; at most %d: sweep fewer values", len(policies), len(o.Algorithms), n, simulate.MaxLanes)
	}
	for _, p := range policies {
		if err := p.Validate(); err != nil {
			return Usagef("--limit/--window/--burst %s: %v", p.Describe(), err)
		}
	}
	if len(o.Algorithms) == 0 {
		return Usagef("--algorithms: name at least one of %s", strings.Join(algorithms.Names(), ","))
	}
	return checkAlgorithms(o.Algorithms)
}
