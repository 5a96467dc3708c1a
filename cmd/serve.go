package cmd

import (
	"context"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
)

// newServeCmd builds `ratelab serve`; run is called with the validated options
// (commands.Serve, or a test's stand-in).
func newServeCmd(ios commands.IO, g *commands.Global, run func(context.Context, commands.ServeOptions, commands.IO) error) *cobra.Command {
	opts := commands.ServeOptions{}
	var (
		keyBy, onError string
		rules, proxies []string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Product API: cached in Redis, rate-limited per client",
		Long: `serve runs the Product API that the rest of ratelab measures:

  GET    /products/{id}        a product as JSON, read through the cache from a slow backend
  PUT    /products/{id}        change a product ({"price": 9.99}) and invalidate it everywhere
  DELETE /products/{id}/cache  invalidate a product without changing it
  GET    /metrics              Prometheus metrics
  GET    /healthz              whether Redis is reachable

Products "1" to "1000" exist; ids are 1-64 letters, digits, '_' or '-'. Several serve
processes sharing one --redis behave as one service: one rate limit per client, one
cache, one backend call per cold product however many ask at once, and a PUT on one
invalidates the product on all (local tiers included) before it returns. The backend
itself lives in each process: a PUT changes the backend of the process it reaches.

Every product route is rate-limited per client: by IP (the connection's address, or
X-Forwarded-For from --trusted-proxies only; an IPv6 client is its /64, see
--ipv6-prefix) or by X-API-Key (HMAC-SHA-256 with the secret in RATELAB_API_KEY_SECRET,
never stored in clear; --key-by api-key refuses to start without one). Responses
carry RateLimit-Policy, RateLimit and X-RateLimit-Limit/Remaining/Reset (seconds); a
denied request gets 429 with Retry-After, and waiting that long succeeds. A PUT body
is one JSON object sent as Content-Type: application/json (else 415).
--rule gives a class of routes its own limit: ` + commands.RuleHelp + `.

--limits FILE takes the limits from a policy file instead: rules by method, route
and client tier, several limits per request checked in one atomic call, shadow
limits that only count, identity by ip, api-key or a header (docs/policies.md;
validate it with ratelab limits check FILE). SIGHUP reloads it without failing a
request; an invalid file is logged and refused, and the one in force stays.
--algorithm, --limit, --window, --burst and --rule are the shorthand for a file of
one rule that matches every route.

When Redis fails or a check exceeds --check-timeout, --on-redis-error decides: open
serves the request unlimited, closed answers 503, local limits it with this node's own
in-memory limiter at its share of the limit (ceil(L/N) with --local-share N, the nodes
that share the limit) until Redis answers again. The outage is logged once and counted
in /metrics; the server recovers by itself when Redis is back. SIGINT or SIGTERM stops
accepting, finishes in-flight requests (--shutdown-timeout) and closes Redis.

Without --redis it runs on an embedded Redis, which other processes reach only through
the redis:// address it logs.`,
		Example: `  # embedded Redis, 10 requests/s per client (token bucket)
  ratelab serve

  # a real Redis; 100 per minute, sliding log; writes 5 per minute
  ratelab serve --redis redis://127.0.0.1:6379 --algorithm sliding-log --limit 100 --window 1m --rule write=5/1m

  # clients identified by API key; every node and inspect/flush need the same secret
  export RATELAB_API_KEY_SECRET=$(openssl rand -hex 32)
  ratelab serve --key-by api-key

  # behind a proxy on 10.0.0.0/8, a local cache tier, fail closed, JSON logs
  ratelab serve --trusted-proxies 10.0.0.0/8 --local-cache-ttl 2s --on-redis-error closed --log-format json

  # limits per route and tier from a policy file; kill -HUP reloads it
  ratelab serve --redis redis://127.0.0.1:6379 --limits limits.yaml

  # two nodes of one service
  ratelab serve --redis redis://127.0.0.1:6379 --addr 127.0.0.1:8080 &
  ratelab serve --redis redis://127.0.0.1:6379 --addr 127.0.0.1:8081 &` + "\n" + exitStatusHelp,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Global = *g
			opts.KeyBy = productapi.KeyBy(keyBy)
			opts.OnRedisError = productapi.FailMode(onError)
			if err := commands.CheckIPv6PrefixFlag(opts.IPv6Prefix); err != nil {
				return err
			}
			if !cmd.Flags().Changed("api-key-secret") {
				opts.APIKeySecret = os.Getenv(commands.EnvAPIKeySecret)
			}
			var err error
			if opts.TrustedProxies, err = productapi.ParseTrustedProxies(proxies); err != nil {
				return commands.Usagef("--trusted-proxies: %v", err)
			}
			if opts.LimitsFile != "" {
				for _, name := range []string{"algorithm", "limit", "window", "burst", "rule", "key-by", "ipv6-prefix"} {
					if cmd.Flags().Changed(name) {
						return commands.Usagef("--limits and --%s: the policy file says this; put it in the file, or drop --limits", name)
					}
				}
				if onError == string(productapi.FailLocal) {
					return commands.Usagef("--limits and --on-redis-error local: a policy file's limits have no in-memory fallback yet; use open or closed")
				}
			}
			opts.Rules = nil
			for _, r := range rules {
				rule, err := commands.ParseRouteRule(r, opts.Algorithm)
				if err != nil {
					return commands.UsageError(err)
				}
				opts.Rules = append(opts.Rules, rule)
			}
			if err := opts.Validate(); err != nil {
				return err
			}
			return run(cmd.Context(), opts, ios)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Addr, "addr", commands.DefaultServeAddr, "address to listen on, host:port")
	f.DurationVar(&opts.BackendDelay, "backend-delay", commands.DefaultServeBackendDelay, "how long each backend read takes (the slow system behind the cache)")
	f.DurationVar(&opts.CacheTTL, "cache-ttl", commands.DefaultServeCacheTTL, "TTL of cached products in Redis (plus up to 10% jitter)")
	f.DurationVar(&opts.LocalCacheTTL, "local-cache-ttl", 0, "TTL of the in-process cache tier; 0 turns it off")
	f.DurationVar(&opts.NegativeTTL, "negative-ttl", commands.DefaultServeNegativeTTL, "how long an unknown product id is remembered as unknown")
	f.StringVar(&opts.Algorithm, "algorithm", commands.DefaultServeAlgorithm, "rate-limiting algorithm: "+strings.Join(algorithms.Names(), ", "))
	f.Int64Var(&opts.Policy.Limit, "limit", commands.DefaultServeLimit, "limit L: requests per window per client")
	f.DurationVar(&opts.Policy.Window, "window", commands.DefaultServeWindow, "window W")
	f.Int64Var(&opts.Policy.Burst, "burst", 0, "burst B for token-bucket, leaky-bucket and gcra (0: the limit)")
	f.StringVar(&opts.LimitsFile, "limits", "", "a policy file: limits per route and client tier (docs/policies.md); replaces --algorithm, --limit, --window, --burst, --rule, --key-by; SIGHUP reloads it")
	f.StringArrayVar(&rules, "rule", nil, "a limit for one class of routes, repeatable: "+commands.RuleHelp)
	f.StringVar(&opts.Store, "store", "redis", "where limiter state lives: redis (shared by every node) or local (per process)")
	f.StringVar(&keyBy, "key-by", string(productapi.KeyByIP), "what identifies a client: ip or api-key (the X-API-Key header)")
	f.IntVar(&opts.IPv6Prefix, "ipv6-prefix", algorithms.DefaultIPv6Prefix, "IPv6 clients are keyed by their network of this many bits, 48 to 128 (128: every address apart); IPv4 clients by their address")
	// The secret's default stays empty even when the environment holds one, so --help never shows it.
	f.StringVar(&opts.APIKeySecret, "api-key-secret", "", commands.APIKeySecretHelp)
	f.StringSliceVar(&proxies, "trusted-proxies", nil, "CIDRs of proxies whose X-Forwarded-For is believed, e.g. 10.0.0.0/8,::1")
	f.DurationVar(&opts.CheckTimeout, "check-timeout", commands.DefaultServeCheckTimeout, "time budget of one rate-limit check")
	f.StringVar(&onError, "on-redis-error", string(productapi.FailOpen), "when a check fails or times out: open (serve), closed (503) or local (this node's in-memory limiter at its share)")
	f.IntVar(&opts.LocalShare, "local-share", 1, "with --on-redis-error local: how many nodes share the limit; each enforces ceil(limit/N) on its own while Redis fails")
	f.StringVar(&opts.LogFormat, "log-format", "text", "log format on stderr: text or json")
	f.StringVar(&opts.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.DurationVar(&opts.ShutdownTimeout, "shutdown-timeout", commands.DefaultShutdownTimeout, "how long in-flight requests may finish after SIGINT/SIGTERM; then the rest are closed")
	f.DurationVar(&opts.ReadHeaderTimeout, "read-header-timeout", productapi.DefaultReadHeaderTimeout, "how long a client may take to send a request's headers")
	f.DurationVar(&opts.ReadTimeout, "read-timeout", productapi.DefaultReadTimeout, "how long a client may take to send a whole request, body included")
	f.DurationVar(&opts.WriteTimeout, "write-timeout", 0, "how long a request may take from its headers to the end of its answer (0: "+productapi.DefaultWriteTimeout.String()+" plus the longest leaky-bucket delay and the backend delay)")
	f.DurationVar(&opts.IdleTimeout, "idle-timeout", productapi.DefaultIdleTimeout, "how long an idle keep-alive connection is kept open")
	f.DurationVar(&opts.MaxDelay, "max-delay", 0, "leaky bucket: deny a request that would wait longer than this (0: the bucket's drain time B·W/L, at most "+algorithms.MaxDelayCap.String()+")")
	f.BoolVar(&opts.Batch, "batch", true, "Redis limiters send concurrent checks together, several in one round trip (one script call on a standalone server, a pipeline split by master on a cluster; --batch=false: one round trip per check)")
	f.BoolVar(&opts.DenyCache, "deny-cache", true, "Redis limiters deny an identity locally until the retry-after Redis gave it has passed (exact; not for the leaky bucket, whose give-backs improve state)")
	f.IntVar(&opts.LocalMaxIdentities, "local-max-identities", algorithms.DefaultMaxIdentities, "--store local: the most identities each node's limiter remembers; the least recently seen are forgotten first (counted in /metrics)")
	return cmd
}
