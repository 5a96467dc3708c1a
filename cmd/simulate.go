package cmd

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/report"
	"github.com/ratelab/ratelab/internal/simulate"
	"github.com/ratelab/ratelab/internal/trace"
	"github.com/ratelab/ratelab/scenario"
)

// newSimulateCmd builds `ratelab simulate`; run is called with the validated options
// (commands.Simulate, or a test's stand-in).
func newSimulateCmd(ios commands.IO, _ *commands.Global, run func(context.Context, commands.SimulateOptions, commands.IO) error) *cobra.Command {
	opts := commands.SimulateOptions{}
	var fields []string
	var from, to string
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "What each algorithm would have let through of your traffic: an access log or hammer's patterns, in virtual time",
		Long: `simulate runs the six algorithms' Go models (the ones the Lua scripts are tested
against, decision for decision) over an access log (--trace) or hammer's synthetic
traffic (the same flags, the same schedule), in virtual time: no Redis, no HTTP, no
clock but the requests' own times. A day of logs takes seconds, and the same input
gives the same report, byte for byte.

The report has hammer's figures (allowed and denied, the most admitted for one client
in any W and W/10, the burst ratio, the timeline) and what only a whole trace shows:
the clients with the most denials, and who paid: well-behaved clients (whose rate over
the whole trace stayed within the limit) that were refused anyway, against abusive
clients (over the limit over the trace) that still got more than L in some window.

Several values of --limit, --window or --burst sweep every combination in one pass
over the trace, with a table and a chart of refused well-behaved against admitted
abuse per policy: the curve a limit is picked from. With --nodes N --store local each
node has its own limiter, behind a round-robin or a hash-by-client --balancer.

Traces: nginx/Apache combined logs (nginx's default log_format combined; with
"$http_x_forwarded_for" after the user agent, as nginx's log_format main, --client xff
takes its first entry), JSON lines and CSV with a header (--fields names their
fields: time, client, xff, method, route, key, tier; a time is RFC 3339, the log's
10/Oct/2000:13:55:36 -0700, or seconds since the epoch). The format is told by the
first line, gzip by the content, and "-" reads standard input. A trace is streamed:
memory grows with its clients, not its lines. Lines that do not parse are counted
and the first few named with their line numbers; --strict makes the first one an
error. A combined log has whole seconds: requests of one second are decided at the
same instant, in the log's order. Access logs are written as requests finish, so
small disorders are sorted out by a buffer of 4096 requests; a request later than
that is decided at the time of the one before it, and counted.

IPv6 clients are grouped by their /64 (--ipv6-prefix), as ratelab serve groups them;
--client key identifies clients by the API key field, shown as a hash.

--limits FILE decides each request by a policy file (docs/policies.md) instead: the
first rule matching its method, route and tier (the trace's key field through the
file's tiers, else its tier field, else the default), and that rule's limits
together, as serve's one combined check does (admitted only if every limit admits;
a denial consumes nothing; shadow limits only counted). The report is per rule and
tier and per limit. The file gives the algorithms, limits and identity, so
--algorithms, --limit, --window, --burst, --sweep, --nodes, --store, --balancer,
--follow, --top, --ipv6-prefix and --client key are refused beside it.`,
		Example: `  # hammer's default traffic, decided in virtual time
  ratelab simulate

  # a day of nginx logs, 100 a minute for each client
  ratelab simulate --trace /var/log/nginx/access.log.1.gz --limit 100 --window 1m

  # a sweep: 3 limits × 2 windows × 6 algorithms over one read of the log
  ratelab simulate --trace access.log --limit 50,100,200 --window 1m,1h --output markdown

  # the same as one page that opens offline, with its charts; the table on the terminal
  ratelab simulate --trace access.log --limit 50,100,200 --window 1m,1h --output html --out sweep.html

  # the policies of a file, one a line (100/1m, 100/1m burst 200, 100r1m-b200)
  ratelab simulate --trace access.log --sweep policies.txt --algorithms sliding-log,gcra

  # behind a load balancer: the client is the first X-Forwarded-For entry
  ratelab simulate --trace access.log --client xff --limit 100 --window 1m

  # JSON lines with fields of other names, one hour of them
  ratelab simulate --trace events.jsonl --fields time=ts,client=ip,key=api_key --client key \
    --from 2026-11-24T09:00:00Z --to 2026-11-24T10:00:00Z

  # a policy file's rules, limits and tiers over a log with API keys
  ratelab simulate --trace events.jsonl --limits policy.yaml

  # three nodes with a limiter each: round robin against hashing by client
  ratelab simulate --trace access.log --nodes 3 --store local --balancer hash` + "\n" + exitStatusHelp + `
     (simulate has no thresholds)
  130 interrupted (SIGINT or SIGTERM): the report covers what was read`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.Algorithms) == 0 {
				opts.Algorithms = algorithms.Names()
			}
			f, err := trace.ParseFields(fields)
			if err != nil {
				return commands.Usagef("--fields: %v", err)
			}
			opts.TraceOptions.Fields = f
			if opts.TraceOptions.From, err = parseFlagTime("--from", from); err != nil {
				return err
			}
			if opts.TraceOptions.To, err = parseFlagTime("--to", to); err != nil {
				return err
			}
			opts.Version = version()
			opts.CommandLine = commandLine(cmd)
			if err := checkSimulateLimits(cmd, opts); err != nil {
				return err
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Trace, "trace", "", "the trace to simulate: an access log, JSON lines or CSV, gzipped or not; - for standard input (default: hammer's --pattern)")
	f.StringVar(&opts.TraceOptions.Format, "format", "", "the trace's format: "+strings.Join(trace.Formats(), ", ")+" (default: told by the first line)")
	f.StringSliceVar(&fields, "fields", nil, "JSON and CSV field names, e.g. time=ts,client=ip,key=api_key (defaults: time, client, xff, method, route, key, tier)")
	f.StringVar(&opts.TraceOptions.Client, "client", trace.ClientRemoteAddr, "what identifies a client: "+strings.Join(trace.ClientModes(), ", ")+" (xff: the first X-Forwarded-For entry; key: the API key)")
	f.IntVar(&opts.TraceOptions.IPv6Prefix, "ipv6-prefix", algorithms.DefaultIPv6Prefix, "group IPv6 clients by this prefix length, as serve does (48 to 128)")
	f.StringVar(&from, "from", "", "keep the trace's requests from this time on (RFC 3339, e.g. 2026-11-24T09:00:00Z)")
	f.StringVar(&to, "to", "", "keep the trace's requests before this time (RFC 3339)")
	f.BoolVar(&opts.TraceOptions.Strict, "strict", false, "a line that does not parse is an error (exit 1), not a count")
	addTrafficFlags(f, &opts.Traffic)
	f.Int64SliceVar(&opts.Limits, "limit", []int64{commands.DefaultHammerLimit}, "limit L: requests per window per client; several values sweep")
	f.DurationSliceVar(&opts.Windows, "window", []time.Duration{commands.DefaultHammerWindow}, "window W; several values sweep")
	f.Int64SliceVar(&opts.Bursts, "burst", []int64{0}, "burst B for token-bucket, leaky-bucket and gcra (0: the limit); several values sweep")
	f.StringVar(&opts.LimitsFile, "limits", "", "a policy file (docs/policies.md): each request decided by its rule's limits together, as serve does, instead of --algorithms and --limit/--window/--burst")
	f.StringVar(&opts.SweepFile, "sweep", "", "a file of policies to sweep instead of --limit/--window/--burst, one a line: 100/1m, 100/1m burst 200 or 100r1m-b200")
	f.StringSliceVar(&opts.Algorithms, "algorithms", algorithms.Names(), "algorithms to compare, side by side: "+strings.Join(algorithms.Names(), ","))
	f.IntVar(&opts.Nodes, "nodes", 1, "API nodes; with --store local each has its own limiter")
	f.StringVar(&opts.Store, "store", productapi.StoreRedis, "where limiter state lives: redis (one limit shared by every node) or local (one per node)")
	f.StringVar(&opts.Balancer, "balancer", simulate.RoundRobin, "with --store local, how requests reach the nodes: "+strings.Join(simulate.Balancers(), " or ")+" (by client)")
	f.IntVar(&opts.Top, "top", commands.DefaultSimulateTop, "clients listed per algorithm, by denials")
	f.StringVar(&opts.Follow, "follow", "", "the client the timeline follows (default: the pattern's first boundary attacker, or the trace's first client)")
	f.StringVarP(&opts.Output, "output", "o", report.FormatTable, "report format: "+strings.Join(report.Formats(), ", "))
	f.StringVar(&opts.OutFile, "out", "", "write the report in --output's format to this file (atomically); standard output gets the table")
	return cmd
}

// addTrafficFlags defines hammer's synthetic traffic flags, with hammer's defaults.
func addTrafficFlags(f *pflag.FlagSet, t *commands.Traffic) {
	f.StringVar(&t.Pattern, "pattern", scenario.PatternMixed, "traffic pattern, as hammer's: "+strings.Join(scenario.Patterns(), ", "))
	f.IntVar(&t.IPs, "ips", commands.DefaultHammerIPs, "simulated client identities (addresses 10.0.x.y)")
	f.Float64Var(&t.RPS, "rps", commands.DefaultHammerRPS, "total arrival rate, requests per second")
	f.DurationVar(&t.Duration, "duration", commands.DefaultHammerDuration, "how long the traffic lasts, in virtual time")
	f.Uint64Var(&t.Seed, "seed", 1, "seed of the schedule: the same seed, the same requests")
	f.IntVar(&t.Products, "products", commands.DefaultHammerProducts, "distinct products requested, with Zipf popularity")
}

func parseFlagTime(flag, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, commands.Usagef("%s %q: give an RFC 3339 time, e.g. 2026-11-24T09:00:00Z", flag, s)
	}
	return t, nil
}

// limitsExcludes are the flags that a policy file replaces (it names the algorithms
// and limits) or that its simulation does not offer.
var limitsExcludes = []string{"algorithms", "limit", "window", "burst", "sweep", "nodes", "store", "balancer", "follow", "top", "ipv6-prefix"}

// checkSimulateLimits refuses --limits beside the flags it replaces, and --client key
// (the file's identity says who a client is).
func checkSimulateLimits(cmd *cobra.Command, opts commands.SimulateOptions) error {
	if opts.LimitsFile == "" {
		return nil
	}
	for _, name := range limitsExcludes {
		if cmd.Flags().Changed(name) {
			return commands.Usagef("--%s does not apply with --limits: the policy file gives the algorithms, limits and identity; drop --%s, or drop --limits to compare algorithms", name, name)
		}
	}
	if opts.TraceOptions.Client == trace.ClientKey {
		return commands.Usagef("--client key does not apply with --limits: the file's identity says who a client is (identity: api-key for the trace's key field)")
	}
	return nil
}
