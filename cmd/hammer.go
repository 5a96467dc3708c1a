package cmd

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/scenario"
)

// newHammerCmd builds `ratelab hammer`; run is called with the validated options
// (commands.Hammer, or a test's stand-in).
func newHammerCmd(ios commands.IO, g *commands.Global, run func(context.Context, commands.HammerOptions, commands.IO) error) *cobra.Command {
	opts := commands.HammerOptions{}
	var limit, burst int64
	var maxErrorRatio, maxLateRatio float64
	var maxFailOpen int64
	var faults, failModes []string
	var onError string
	var maxAbuse, maxGoodRefused float64
	cmd := &cobra.Command{
		Use:   "hammer",
		Short: "Open-loop multi-IP load on in-process API nodes, and the algorithm comparison report",
		Long: `hammer starts the Product API in process (the one serve runs), sends it open-loop
traffic from many simulated client IPs, and shows, algorithm by algorithm on the same
traffic, what got through: the most admitted for one client in any window W and W/10
(by the Redis server's clock) against the algorithm's worst case, per-check and
end-to-end latency, the cache, and a timeline of one boundary attacker around a window
edge, where a fixed window lets 2L through.

The schedule is computed from --seed (the same seed, the same requests at the same
offsets), and each algorithm runs on it in turn with keys of its own. Latency counts
from each request's intended send time, and late sends and the achieved rate are
shown, so a generator that cannot keep up is never hidden. The pacer runs on a
real-time thread where the OS allows it (CAP_SYS_NICE, e.g. root), so that the nodes
and Redis on the same CPUs do not delay it; the report says when it could not. With
--target, the check latency and fail-open answers come from the servers' Server-Timing
headers and the cache figures from X-Cache. Identities reach the nodes in
X-Forwarded-For from 127.0.0.1, which the nodes trust; with --identity source each
identity sends from its own address 127.x.y.z instead, on connections of its own, and
the nodes trust no header. --target takes any HTTP service: --path, -H and
--deny-status say what to send it and how it refuses (below 400 is allowed; a 4xx or
5xx whose RateLimit or X-RateLimit-Remaining header says none remain is denied too);
without Server-Timing the check latency is unknown. Load only ever goes to loopback
addresses. Ctrl-C (or SIGTERM) stops the sending at once and still prints the
report, which says it was interrupted, and hammer exits 130.

A threshold with nothing to measure (no checks timed, no answers) is missed, never
passed. A run is not valid when more than 1% of sends were late, the connection pool
ran out, a run was shorter than two windows, or limiter checks failed: the report
says so and why, and --require-valid makes that exit 3. With --out the report goes
to the file in --output's format and the table to standard output. If an algorithm's
run fails (Redis went away), the algorithms before it are reported, the failure is
named, and hammer exits 1.

--trace FILE replays a trace instead of a pattern (an access log, JSON lines or CSV,
as simulate reads it): its clients as the identities, its times divided by --speed,
so a real Redis can be checked against what simulate predicted.

Patterns: mixed (default: steady traffic, one identity in ten bursting around every
other window edge), steady, poisson, boundary (every identity bursts around edges),
noisy (one identity sends three requests in five).

The fault lab (docs/faults.md): --fault injects a fault between the nodes' limiters
and Redis, through a TCP proxy hammer puts in front of the embedded Redis or
redis-server (a cluster is refused), at the same offset in every run:
` + commands.FaultHelp + `.
stall stops forwarding (connections stay open), latency adds ARG to every round trip,
drop resets connections and refuses new ones, restart deletes this run's limiter keys
(only those) and resets connections, script-flush runs SCRIPT FLUSH. --fail-modes
open,closed,local runs every algorithm once per mode; local limits each node with an
in-memory limiter at ceil(L/N) (--local-share N, default --nodes) while Redis fails.
The report adds, per algorithm and mode, what got through over the limit and what was
refused within it during the fault (judged by the exact sliding log of what was
admitted), the checks' latency, the recovery and a timeline per 100 ms.

--limits FILE makes the nodes decide by a policy file, as serve --limits does
(docs/policies.md), in one run instead of one per algorithm; --algorithms, --limit,
--window and --burst are then the file's to say. --tier-mix gives each simulated
client one of the file's tiers for the whole run (chosen from --seed), and it sends
that tier's key in the file's tier header (the default tier sends none). The report
counts per tier and per limit the requests, admissions, denials by each limit and
shadow denials, as the answers' RateLimit-Policy, RateLimit and Server-Timing say.`,
		Example: `  # the first run: six algorithms, 50 clients, 1000 requests/s, embedded Redis
  ratelab hammer --ips 50 --rps 1000

  # on a real Redis, every client a boundary attacker, two algorithms
  ratelab hammer --redis redis://127.0.0.1:6379 --pattern boundary --algorithms fixed-window,sliding-log

  # three nodes with a local limiter each: a client gets through about three times
  ratelab hammer --nodes 3 --store local --algorithms sliding-log

  # CI: the table in the log, JSON to a file; fail (exit 3) if any algorithm lets
  # through more than 1.1 L, if any request failed, or if the run is not valid
  ratelab hammer --algorithms sliding-log,gcra --max-burst-ratio 1.1 --max-error-ratio 0 \
    --require-valid --output json --out hammer.json

  # hammer running 'ratelab serve' processes instead: they must trust 127.0.0.1's
  # X-Forwarded-For, and --limit/--window/--algorithms should say what they enforce
  ratelab serve --addr 127.0.0.1:8080 --trusted-proxies 127.0.0.0/8 --algorithm sliding-log --limit 100 --window 1s &
  ratelab hammer --target http://127.0.0.1:8080 --algorithms sliding-log --limit 100 --window 1s

  # the fault lab: Redis stalls for 1s; what each fail mode lets through
  ratelab hammer --redis redis://127.0.0.1:6379 --fault stall@1s+1s --fail-modes open,closed,local \
    --algorithms sliding-log,gcra --pattern noisy --nodes 3

  # a policy file's tiers: 90% of the clients free, 9% pro, 1% internal
  ratelab hammer --limits limits.yaml --tier-mix free=90,pro=9,internal=1 --ips 100 --rps 2000

  # any service on loopback: its path, a token, each client its own source address
  # (127.x.y.z, so the service trusts no header), 429 or 403 for denied
  ratelab hammer --target http://127.0.0.1:3000 --path '/api/items/{product}' -H 'Authorization: Bearer x' \
    --identity source --deny-status 429,403 --limit 100 --window 1s` + "\n" + exitStatusHelp + `
     (hammer: also --require-valid and a run that was not valid)
  130 interrupted (SIGINT or SIGTERM): the report covers what was sent`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Global = *g
			opts.Policy = algorithms.Policy{Limit: limit, Window: opts.Policy.Window, Burst: burst}
			if opts.LimitsFile != "" {
				for _, name := range []string{"algorithms", "limit", "window", "burst"} {
					if cmd.Flags().Changed(name) {
						return commands.Usagef("--limits and --%s: the policy file says this; put it in the file, or drop --limits", name)
					}
				}
			}
			// The flag's default is all six; an explicitly empty --algorithms means the same.
			if len(opts.Algorithms) == 0 {
				opts.Algorithms = algorithms.Names()
			}
			// Zero is a limit worth setting for these: they are checked only when given.
			f := cmd.Flags()
			if f.Changed("max-error-ratio") {
				opts.MaxErrorRatio = &maxErrorRatio
			}
			if f.Changed("max-late-ratio") {
				opts.MaxLateRatio = &maxLateRatio
			}
			if f.Changed("max-fail-open") {
				opts.MaxFailOpen = &maxFailOpen
			}
			if f.Changed("max-abuse-ratio") {
				opts.MaxAbuseRatio = &maxAbuse
			}
			if f.Changed("max-good-refused-ratio") {
				opts.MaxGoodRefusedRatio = &maxGoodRefused
			}
			for _, s := range faults {
				fault, err := commands.ParseFault(s)
				if err != nil {
					return commands.UsageError(err)
				}
				opts.Faults = append(opts.Faults, fault)
			}
			for _, m := range failModes {
				opts.FailModes = append(opts.FailModes, productapi.FailMode(strings.TrimSpace(m)))
			}
			opts.OnRedisError = productapi.FailMode(onError)
			opts.Version = version()
			opts.CommandLine = commandLine(cmd)
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.IPs, "ips", commands.DefaultHammerIPs, "simulated client identities (addresses 10.x.y.z; 127.x.y.z with --identity source)")
	f.Float64Var(&opts.RPS, "rps", commands.DefaultHammerRPS, "total arrival rate, requests per second")
	f.DurationVar(&opts.Duration, "duration", commands.DefaultHammerDuration, "how long each algorithm runs")
	f.Uint64Var(&opts.Seed, "seed", 1, "seed of the schedule: the same seed, the same requests")
	f.StringSliceVar(&opts.Algorithms, "algorithms", algorithms.Names(), "algorithms to compare, one after another: "+strings.Join(algorithms.Names(), ","))
	f.Int64Var(&limit, "limit", commands.DefaultHammerLimit, "limit L: requests per window per client")
	f.DurationVar(&opts.Policy.Window, "window", commands.DefaultHammerWindow, "window W")
	f.Int64Var(&burst, "burst", 0, "burst B for token-bucket, leaky-bucket and gcra (0: the limit)")
	f.IntVar(&opts.Nodes, "nodes", 1, "in-process API nodes behind a round-robin balancer, sharing one Redis")
	f.StringVar(&opts.Store, "store", productapi.StoreRedis, "where limiter state lives: redis (shared) or local (one per node)")
	f.StringVar(&opts.Pattern, "pattern", scenario.PatternMixed, "traffic pattern: "+strings.Join(scenario.Patterns(), ", "))
	f.StringVar(&opts.Trace, "trace", "", "replay this trace (an access log, JSON lines or CSV, as simulate reads it; - for standard input) instead of --pattern")
	f.Float64Var(&opts.Speed, "speed", 0, "with --trace: replay this many times faster (default 1; divide --window by it to keep the trace's decisions)")
	f.StringVar(&opts.TraceOptions.Client, "client", "", "with --trace: what identifies a client: remote-addr (the default) or xff (the first X-Forwarded-For entry)")
	f.IntVar(&opts.Products, "products", commands.DefaultHammerProducts, "distinct products requested, with Zipf popularity")
	f.StringSliceVar(&opts.Targets, "target", nil, "hammer running services (ratelab serve, or any HTTP service; loopback only) instead of in-process nodes")
	f.IntVar(&opts.Workers, "workers", scenario.DefaultWorkers, "most requests in flight at once: the connections hammer keeps open")
	f.DurationVar(&opts.BackendDelay, "backend-delay", commands.DefaultBackendDelay, "how long the in-process nodes' backend takes per read")
	f.DurationVar(&opts.CheckTimeout, "check-timeout", productapi.DefaultCheckTimeout, "the nodes' time budget for one limiter check; over it the node answers 503, or its fail mode once an outage is declared")
	f.BoolVar(&opts.Batch, "batch", true, "the nodes' Redis limiters send concurrent checks together, several in one round trip (one script call on a standalone server, a pipeline split by master on a cluster; --batch=false: one round trip per check)")
	f.BoolVar(&opts.DenyCache, "deny-cache", true, "the nodes' Redis limiters deny an identity locally until the retry-after Redis gave it has passed (exact; not for the leaky bucket, whose give-backs improve state)")
	f.StringVarP(&opts.Output, "output", "o", report.FormatTable, "report format: "+strings.Join(report.Formats(), ", "))
	f.BoolVar(&opts.Wide, "wide", false, "on a terminal, every column of the table however wide (by default the table fits the terminal)")
	f.IntVar(&opts.Width, "width", 0, "lay the table out for this many columns (default: the terminal's width; off a terminal, every column)")
	f.StringVar(&opts.OutFile, "out", "", "write the report in --output's format to this file (atomically); standard output gets the table")
	// How requests reach the nodes: any HTTP service on loopback, with --target. The
	// defaults are the zero values (ratelab's path, X-Forwarded-For, 429), named in the help.
	f.StringVar(&opts.Path, "path", "", "with --target: the request path, {product} for the product number, e.g. '/api/items/{product}' (default "+scenario.DefaultPath+")")
	f.StringArrayVarP(&opts.Headers, "header", "H", nil, "with --target: an extra request header 'Name: value', as curl's -H (repeatable)")
	f.StringVar((*string)(&opts.Identity), "identity", "",
		"how each identity reaches the nodes: xff (X-Forwarded-For from 127.0.0.1, the default) or source (its own source address 127.x.y.z; Linux)")
	f.StringVar(&opts.LimitsFile, "limits", "", "a policy file (docs/policies.md) the nodes decide by, in one run; replaces --algorithms, --limit, --window, --burst")
	f.StringVar(&opts.TierMix, "tier-mix", "", "with --limits: the share of clients in each of the file's tiers, e.g. free=90,pro=9,internal=1 (percent or relative; default: every client the default tier)")
	f.IntSliceVar(&opts.DenyStatus, "deny-status", nil, "with --target: the status codes that mean denied, e.g. 429,403 (default 429)")
	f.Float64Var(&opts.MaxBurstRatio, "max-burst-ratio", 0, "exit 3 if an algorithm's burst ratio (peak in W / L) is above this")
	f.DurationVar(&opts.MaxCheckP99, "max-check-p99", 0, "exit 3 if an algorithm's per-check p99 latency is above this (e.g. 1ms)")
	f.Float64Var(&opts.MinHitRatio, "min-hit-ratio", 0, "exit 3 if the cache hit ratio is below this (0..1)")
	f.Float64Var(&opts.MinAchievedRPS, "min-achieved-rps", 0, "exit 3 if an algorithm's run achieved a lower rate than this")
	f.Float64Var(&maxErrorRatio, "max-error-ratio", 0, "exit 3 if an algorithm's transport errors and 5xx (not fail-closed refusals) over sent are above this (0..1; off unless given)")
	f.Float64Var(&maxLateRatio, "max-late-ratio", 0, "exit 3 if an algorithm's late sends over sent are above this (0..1; off unless given)")
	f.Int64Var(&maxFailOpen, "max-fail-open", 0, "exit 3 if an algorithm served more requests unchecked (fail open) than this (off unless given)")
	f.StringArrayVar(&faults, "fault", nil, "inject a fault between the nodes' limiters and Redis in every run, repeatable: "+commands.FaultHelp)
	f.StringSliceVar(&failModes, "fail-modes", nil, "run every algorithm once per fail mode, e.g. open,closed,local")
	f.StringVar(&onError, "on-redis-error", string(productapi.FailOpen), "the nodes' fail mode without --fail-modes: open (serve), closed (503) or local (each node's in-memory limiter at its share)")
	f.IntVar(&opts.LocalShare, "local-share", 0, "with fail mode local: how many nodes share the limit, each enforcing ceil(limit/N) (0: --nodes)")
	f.DurationVar(&opts.OutageAfter, "outage-after", 0, "how long checks must fail, with no success between, before a node declares an outage and its fail mode decides (0: "+commands.DefaultFaultOutageAfter.String()+" with --fault, else "+productapi.DefaultProbeTimeout.String()+")")
	f.Float64Var(&maxAbuse, "max-abuse-ratio", 0, "exit 3 if over-limit requests admitted over all over-limit requests during the fault are above this (0..1; off unless given)")
	f.Float64Var(&maxGoodRefused, "max-good-refused-ratio", 0, "exit 3 if within-limit requests refused over all within-limit requests during the fault are above this (0..1; off unless given)")
	f.DurationVar(&opts.MaxRecovery, "max-recovery", 0, "exit 3 if the limiter took longer than this after the fault's end to decide again (e.g. 100ms)")
	f.BoolVar(&opts.RequireValid, "require-valid", false, "exit 3 if the run is not valid (late sends over 1%, pool ran out, shorter than two windows, failed checks)")
	return cmd
}
