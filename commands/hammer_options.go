package commands

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/trace"
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
	// Algorithms run one after another on the same schedule (cmd makes an empty
	// --algorithms all six).
	Algorithms []string
	// Policy is the limit under test.
	Policy algorithms.Policy
	// Nodes is how many in-process API nodes share the traffic, round robin.
	Nodes int
	// Store is productapi.StoreRedis or productapi.StoreLocal.
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
	// Batch makes the in-process nodes' Redis limiters share round trips between
	// concurrent checks; DenyCache gives them the exact local deny cache
	// (productapi.Limits). The flags turn both on.
	Batch, DenyCache bool
	// Output is table, json, markdown or html.
	Output string
	// Wide keeps every column of the table on a terminal too narrow for them, and
	// Width lays the table out for that many columns (0: the terminal's width on a
	// terminal, else the full layout): commands/hammer_fit.go.
	Wide  bool
	Width int
	// OutFile, when set, receives the report in Output's format (written atomically),
	// and Out gets the table.
	OutFile string
	// How requests reach the nodes (commands/hammer_target.go). Path is the --target
	// path template, with {product} for the product number ("": scenario.DefaultPath).
	Path string
	// Headers are extra --target request headers, each "Name: value" as curl's -H.
	Headers []string
	// Identity is how identities reach the nodes: scenario.IdentityForwardedFor (""),
	// or scenario.IdentitySource, each identity its own 127.x.y.z source address.
	Identity scenario.IdentityMode
	// DenyStatus are the --target status codes that mean denied (nil: 429).
	DenyStatus []int
	// Trace, when set, is a trace file to replay instead of Pattern (commands/hammer_trace.go),
	// read with TraceOptions, its times divided by Speed (0 or 1: real time).
	Trace        string
	TraceOptions trace.Options
	Speed        float64
	// LimitsFile is a policy file (--limits) the in-process nodes decide by, in one
	// run instead of one per algorithm; TierMix (--tier-mix) gives the simulated
	// clients its tiers (commands/hammer_policy.go).
	LimitsFile string
	TierMix    string

	// EmbeddedRedisCommand, when set, runs the embedded Redis (no --redis) in a child
	// process: the argv of ratelab's hidden embedded-redis subcommand (cmd sets it).
	// Empty, it runs in this process and shares its heap.
	EmbeddedRedisCommand []string

	// Thresholds; zero means not checked.
	MaxBurstRatio  float64
	MaxCheckP99    time.Duration
	MinHitRatio    float64
	MinAchievedRPS float64
	// Thresholds where zero is a limit worth setting; nil means not checked.
	// MaxErrorRatio bounds (transport errors + 5xx answers that are not fail-closed
	// refusals) / sent, MaxLateRatio late sends / sent, MaxFailOpen the requests
	// served unchecked, per algorithm.
	MaxErrorRatio *float64
	MaxLateRatio  *float64
	MaxFailOpen   *int64
	// The fault lab (commands/hammer_fault.go, docs/faults.md): Faults are injected
	// between the nodes' limiters and Redis in every run; each algorithm runs once per
	// FailModes (else under OnRedisError, open when empty); LocalShare is how many
	// nodes share the limit in fail mode local (0: Nodes); OutageAfter is how long
	// checks fail before a node declares an outage (0: DefaultFaultOutageAfter with
	// Faults, else productapi's default). The thresholds are checked against each
	// row's fault; nil (0 for MaxRecovery) means not checked.
	Faults              []Fault
	FailModes           []productapi.FailMode
	OnRedisError        productapi.FailMode
	LocalShare          int
	OutageAfter         time.Duration
	MaxAbuseRatio       *float64
	MaxGoodRefusedRatio *float64
	MaxRecovery         time.Duration
	// RequireValid makes a run whose figures are not valid (report.Hammer.Valid) a
	// missed threshold.
	RequireValid bool
	// Version and CommandLine go into the report, for whoever reads it later.
	Version     string
	CommandLine []string

	hooks *hammerHooks
	// policy is LimitsFile loaded, set by Hammer.
	policy *hammerPolicy
}

// workers is the requests in flight at once: those given, or scenario.DefaultWorkers.
func (o HammerOptions) workers() int { return cmpOr(o.Workers, scenario.DefaultWorkers) }

// Validate checks the options without changing them, with usage errors that say which
// flag to change; the defaults of zero values apply where they are used.
func (o HammerOptions) Validate() error {
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
	case o.Store != productapi.StoreRedis && o.Store != productapi.StoreLocal:
		return Usagef("--store %q: choose %q (one limit shared through Redis) or %q (a limiter per node)", o.Store, productapi.StoreRedis, productapi.StoreLocal)
	case o.Products < 1 || o.Products > MaxHammerProducts:
		return Usagef("--products %d: choose between 1 and %d", o.Products, MaxHammerProducts)
	case o.Workers < 0 || o.Workers > MaxHammerWorkers:
		return Usagef("--workers %d: choose between 1 and %d (0 for %d)", o.Workers, MaxHammerWorkers, scenario.DefaultWorkers)
	case o.BackendDelay < 0:
		return Usagef("--backend-delay %s: it must not be negative", o.BackendDelay)
	case o.Width < 0:
		return Usagef("--width %d: give a number of columns (0: the terminal's)", o.Width)
	case o.CheckTimeout < 0:
		return Usagef("--check-timeout %s: it must not be negative", o.CheckTimeout)
	case o.MaxBurstRatio < 0 || o.MaxCheckP99 < 0 || o.MinHitRatio < 0 || o.MinHitRatio > 1 || o.MinAchievedRPS < 0:
		return Usagef("thresholds must not be negative, and --min-hit-ratio is between 0 and 1")
	case o.MaxErrorRatio != nil && !(*o.MaxErrorRatio >= 0 && *o.MaxErrorRatio <= 1):
		return Usagef("--max-error-ratio %v: choose between 0 and 1", *o.MaxErrorRatio)
	case o.MaxLateRatio != nil && !(*o.MaxLateRatio >= 0 && *o.MaxLateRatio <= 1):
		return Usagef("--max-late-ratio %v: choose between 0 and 1", *o.MaxLateRatio)
	case o.MaxFailOpen != nil && *o.MaxFailOpen < 0:
		return Usagef("--max-fail-open %d: it must not be negative (0: no request may be served unchecked)", *o.MaxFailOpen)
	}
	if err := o.validatePolicy(); err != nil {
		return err
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
		return Usagef("--algorithms: name at least one of %s", strings.Join(algorithms.Names(), ","))
	}
	if err := o.validateTrace(); err != nil {
		return err
	}
	if err := checkAlgorithms(o.Algorithms); err != nil {
		return err
	}
	for _, t := range o.Targets {
		if _, err := scenario.CheckLoopbackURL(t); err != nil {
			return Usagef("--target: %v", err)
		}
	}
	if err := o.validateFaults(); err != nil {
		return err
	}
	return o.validateRequests()
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
