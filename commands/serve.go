package commands

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/policy"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
)

// Defaults of ratelab serve.
const (
	DefaultServeAddr         = "127.0.0.1:8080"
	DefaultServeBackendDelay = time.Second
	DefaultServeCacheTTL     = cache.DefaultTTL
	DefaultServeNegativeTTL  = cache.DefaultNegativeTTL
	DefaultServeLimit        = 10
	DefaultServeWindow       = time.Second
	DefaultServeAlgorithm    = algorithms.TokenBucket
	DefaultServeCheckTimeout = productapi.DefaultCheckTimeout
	DefaultShutdownTimeout   = 10 * time.Second
	// MaxLocalIdentities bounds --local-max-identities.
	MaxLocalIdentities = 10_000_000
	// MaxLocalShare bounds --local-share.
	MaxLocalShare = 1024
)

// ServeOptions is everything ratelab serve is told.
type ServeOptions struct {
	Global
	// Addr is where the API listens (host:port); ignored when Listener is set.
	Addr string
	// Listener, when set, is used instead of listening on Addr (tests pick a free port).
	Listener net.Listener
	// BackendDelay is how long each backend read takes.
	BackendDelay time.Duration
	// CacheTTL is the Redis tier's TTL (plus jitter); LocalCacheTTL enables the local
	// tier (0: off); NegativeTTL is how long "not found" is cached.
	CacheTTL      time.Duration
	LocalCacheTTL time.Duration
	NegativeTTL   time.Duration
	// Algorithm and Policy make the default limiter; Rules override it per route class.
	Algorithm string
	Policy    algorithms.Policy
	Rules     []RouteRule
	// Store is "redis" (one limit shared by every node) or "local" (a limit per process).
	Store string
	// KeyBy identifies clients; TrustedProxies are believed in X-Forwarded-For.
	KeyBy          productapi.KeyBy
	TrustedProxies []netip.Prefix
	// IPv6Prefix groups IPv6 clients by their network of this many bits, 48 to 128;
	// 0 means algorithms.DefaultIPv6Prefix (a /64).
	IPv6Prefix int
	// APIKeySecret is the secret API keys are hashed with; required with KeyByAPIKey.
	// It is never logged or written out.
	APIKeySecret string `json:"-"`
	// CheckTimeout is each limiter check's time budget; OnRedisError decides requests
	// whose check failed.
	CheckTimeout time.Duration
	OnRedisError productapi.FailMode
	// LocalShare is how many nodes share the limit: with OnRedisError local each node
	// enforces ceil(L/LocalShare) on its own while Redis fails (0 means 1).
	LocalShare int
	// LogFormat is "text" or "json"; LogLevel is "debug", "info", "warn" or "error".
	LogFormat string
	LogLevel  string
	// ShutdownTimeout bounds how long in-flight requests may finish after a signal.
	ShutdownTimeout time.Duration
	// The HTTP server's bounds on clients (productapi.ServerConfig; 0 means its default).
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxDelay is the leaky bucket's ceiling on a request's wait (0: its drain time,
	// capped at algorithms.MaxDelayCap); LocalMaxIdentities bounds each in-memory
	// limiter of --store local (0: algorithms.DefaultMaxIdentities).
	MaxDelay           time.Duration
	LocalMaxIdentities int
	// LimitsFile is a policy file (--limits) whose rules replace Algorithm, Policy,
	// Rules and KeyBy; SIGHUP reloads it.
	LimitsFile string
	// Reload, when set, reloads LimitsFile on each value instead of on SIGHUP, and
	// Reloaded is told the outcome of each reload (tests).
	Reload   <-chan struct{} `json:"-"`
	Reloaded func(error)     `json:"-"`
	// Batch makes the Redis limiters share round trips between concurrent checks;
	// DenyCache gives them the exact local deny cache (productapi.Limits).
	Batch, DenyCache bool
}

// RouteRule is a limiter for one class of routes: --rule write=5/1s,algorithm=gcra.
type RouteRule struct {
	Class     productapi.Class  `json:"class"`
	Algorithm string            `json:"algorithm"`
	Policy    algorithms.Policy `json:"policy"`
}

// RuleHelp describes the --rule syntax.
const RuleHelp = "CLASS=LIMIT/WINDOW[,burst=B][,algorithm=NAME], CLASS read (GET) or write (PUT, DELETE); e.g. write=5/1m"

// ParseRouteRule reads one --rule value; the algorithm defaults to defaultAlgorithm.
func ParseRouteRule(s, defaultAlgorithm string) (RouteRule, error) {
	bad := func(format string, args ...any) (RouteRule, error) {
		return RouteRule{}, fmt.Errorf("--rule %q: %s; the form is %s", s, fmt.Sprintf(format, args...), RuleHelp)
	}
	class, rest, ok := strings.Cut(s, "=")
	if !ok {
		return bad("no '='")
	}
	c, err := productapi.ParseClass(strings.TrimSpace(class))
	if err != nil {
		return bad("%v", err)
	}
	parts := strings.Split(rest, ",")
	limit, window, ok := strings.Cut(strings.TrimSpace(parts[0]), "/")
	if !ok {
		return bad("%q is not LIMIT/WINDOW", parts[0])
	}
	r := RouteRule{Class: c, Algorithm: defaultAlgorithm}
	if r.Policy.Limit, err = strconv.ParseInt(limit, 10, 64); err != nil {
		return bad("limit %q is not a whole number", limit)
	}
	if r.Policy.Window, err = time.ParseDuration(window); err != nil {
		return bad("window %q is not a duration such as 1s or 1m", window)
	}
	for _, opt := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(opt), "=")
		switch k {
		case "burst":
			if r.Policy.Burst, err = strconv.ParseInt(v, 10, 64); err != nil {
				return bad("burst %q is not a whole number", v)
			}
		case "algorithm":
			r.Algorithm = v
		default:
			return bad("unknown option %q; use burst= or algorithm=", k)
		}
	}
	if err := algorithms.Lookup(r.Algorithm); err != nil {
		return bad("%v", err)
	}
	if err := r.Policy.Validate(); err != nil {
		return bad("%v", err)
	}
	return r, nil
}

// Validate checks the options; every error is a usage error naming its flag.
func (o *ServeOptions) Validate() error {
	if o.Listener == nil {
		if _, port, err := net.SplitHostPort(o.Addr); err != nil || port == "" {
			return Usagef("--addr %q: use host:port, e.g. %s or :8080", o.Addr, DefaultServeAddr)
		}
	}
	if err := algorithms.Lookup(o.Algorithm); err != nil {
		return Usagef("--algorithm: %v", err)
	}
	if err := o.Policy.Validate(); err != nil {
		return Usagef("--limit/--window/--burst: %v", err)
	}
	if o.LimitsFile != "" && o.Store == productapi.StoreLocal {
		return Usagef("--limits keeps every limit in Redis; drop --store local")
	}
	if o.Store != productapi.StoreRedis && o.Store != productapi.StoreLocal {
		return Usagef("--store %q: choose %q (one limit shared through Redis) or %q (a limiter per process)", o.Store, productapi.StoreRedis, productapi.StoreLocal)
	}
	seen := map[productapi.Class]bool{}
	for _, r := range o.Rules {
		if seen[r.Class] {
			return Usagef("--rule: two rules for %q; give one per class", r.Class)
		}
		seen[r.Class] = true
		if err := algorithms.Lookup(r.Algorithm); err != nil {
			return Usagef("--rule %s: %v", r.Class, err)
		}
		if err := r.Policy.Validate(); err != nil {
			return Usagef("--rule %s: %v", r.Class, err)
		}
	}
	if _, err := productapi.ParseKeyBy(string(o.KeyBy)); err != nil {
		return Usagef("--%v", err)
	}
	if _, err := productapi.ParseFailMode(string(o.OnRedisError)); err != nil {
		return Usagef("--%v", err)
	}
	if o.LocalShare < 0 || o.LocalShare > MaxLocalShare {
		return Usagef("--local-share %d: choose between 1 and %d, the nodes that share the limit", o.LocalShare, MaxLocalShare)
	}
	if err := o.validateIdentity(); err != nil {
		return err
	}
	durations := []struct {
		flag     string
		v        time.Duration
		zeroOK   bool
		max      time.Duration
		whatZero string
	}{
		{"--backend-delay", o.BackendDelay, true, time.Minute, ""},
		{"--cache-ttl", o.CacheTTL, false, 30 * 24 * time.Hour, "use a positive TTL such as 5m"},
		{"--local-cache-ttl", o.LocalCacheTTL, true, 24 * time.Hour, ""},
		{"--negative-ttl", o.NegativeTTL, false, time.Hour, "use a short positive TTL such as 5s"},
		{"--check-timeout", o.CheckTimeout, false, time.Minute, "use a budget such as 50ms"},
		{"--shutdown-timeout", o.ShutdownTimeout, false, time.Hour, "use a grace period such as 10s"},
		{"--read-header-timeout", o.ReadHeaderTimeout, true, time.Hour, ""},
		{"--read-timeout", o.ReadTimeout, true, time.Hour, ""},
		{"--write-timeout", o.WriteTimeout, true, time.Hour, ""},
		{"--idle-timeout", o.IdleTimeout, true, time.Hour, ""},
		{"--max-delay", o.MaxDelay, true, time.Hour, ""},
	}
	for _, d := range durations {
		switch {
		case d.v < 0:
			return Usagef("%s %s: it must not be negative", d.flag, d.v)
		case d.v == 0 && !d.zeroOK:
			return Usagef("%s 0: %s", d.flag, d.whatZero)
		case d.v > d.max:
			return Usagef("%s %s: at most %s", d.flag, d.v, d.max)
		}
	}
	if o.LocalMaxIdentities < 0 || o.LocalMaxIdentities > MaxLocalIdentities {
		return Usagef("--local-max-identities %d: choose between 1 and %d (0 for %d)", o.LocalMaxIdentities, MaxLocalIdentities, algorithms.DefaultMaxIdentities)
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		return Usagef("--log-format %q: choose text or json", o.LogFormat)
	}
	if _, err := parseLevel(o.LogLevel); err != nil {
		return UsageError(err)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: choose debug, info, warn or error", s)
	}
	return l, nil
}

// Serve runs the Product API until ctx is done (SIGINT, SIGTERM), then stops
// accepting, lets in-flight requests finish (at most ShutdownTimeout) and closes
// Redis. Logs go to ios.ErrOut. opts passed Validate, as cmd does.
func Serve(ctx context.Context, opts ServeOptions, ios IO) error {
	level, _ := parseLevel(opts.LogLevel)
	hopts := &slog.HandlerOptions{Level: level}
	var handler slog.Handler = slog.NewTextHandler(ios.ErrOut, hopts)
	if opts.LogFormat == "json" {
		handler = slog.NewJSONHandler(ios.ErrOut, hopts)
	}
	log := slog.New(handler)

	keys, err := algorithms.NewKeyspace(opts.Prefix)
	if err != nil {
		return Usagef("--prefix: %v", err)
	}
	conn, err := redisconn.Open(ctx, opts.RedisURL, redisconn.NodeOptions())
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer conn.Close()

	limits := productapi.Limits{
		Store: opts.Store, Default: productapi.Rule{Algorithm: opts.Algorithm, Policy: opts.Policy},
		MaxDelay: opts.MaxDelay, MaxIdentities: opts.LocalMaxIdentities, Share: opts.LocalShare,
		Batch: opts.Batch, DenyCache: opts.DenyCache,
	}
	for _, r := range opts.Rules {
		if limits.Rules == nil {
			limits.Rules = map[productapi.Class]productapi.Rule{}
		}
		limits.Rules[r.Class] = productapi.Rule{Algorithm: r.Algorithm, Policy: r.Policy}
	}
	var apiKeys *algorithms.APIKeyHasher
	if opts.KeyBy == productapi.KeyByAPIKey {
		if apiKeys, err = NewAPIKeyHasher(opts.APIKeySecret, "--key-by api-key"); err != nil {
			return err
		}
	}
	var file *policy.Policy
	if opts.LimitsFile != "" {
		if file, apiKeys, err = loadServeLimits(opts, ios); err != nil {
			return err
		}
		limits.File = file
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	node, err := productapi.NewNode(ctx, productapi.NodeConfig{
		Redis: conn.Client, Keys: keys, Where: conn.Backend, Limits: limits,
		Cache: &cache.Options{TTL: opts.CacheTTL, LocalTTL: opts.LocalCacheTTL, NegativeTTL: opts.NegativeTTL, Logger: log},
		API: productapi.Config{
			Backend: productapi.NewBackend(opts.BackendDelay, 0),
			KeyBy:   opts.KeyBy, TrustedProxies: opts.TrustedProxies, IPv6Prefix: opts.IPv6Prefix, APIKeys: apiKeys,
			CheckTimeout: opts.CheckTimeout, OnLimiterError: opts.OnRedisError,
			Health: productapi.RedisHealth(conn, keys), MaxChecksInFlight: maxChecksInFlight(conn, opts.Batch),
			Registerer: reg, Logger: log,
		},
		Server: productapi.ServerConfig{
			ReadHeaderTimeout: opts.ReadHeaderTimeout, ReadTimeout: opts.ReadTimeout,
			WriteTimeout: opts.WriteTimeout, IdleTimeout: opts.IdleTimeout,
			ErrorLog:    slog.NewLogLogger(handler, slog.LevelDebug),
			BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		},
	})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer node.Close()
	srv := node.Server

	ln := opts.Listener
	if ln == nil {
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", opts.Addr); err != nil {
			return fmt.Errorf("serve: cannot listen on %s (%w); stop what uses it or choose another --addr", opts.Addr, err)
		}
	}
	attrs := []any{"addr", "http://" + ln.Addr().String(), "redis", conn.Backend}
	if file != nil {
		attrs = append(attrs, limitsAttrs(opts, file)...)
		rctx, stopReloads := context.WithCancel(ctx)
		defer stopReloads()
		reload := opts.Reload
		if reload == nil {
			reload = hangups(rctx)
		}
		go reloadLimits(rctx, opts, reload, node.Policies(), log)
	} else {
		attrs = append(attrs, "algorithm", opts.Algorithm, "policy", opts.Policy.Describe(), "store", opts.Store, "key_by", opts.KeyBy, "ipv6_prefix", cmp.Or(opts.IPv6Prefix, algorithms.DefaultIPv6Prefix))
	}
	attrs = append(attrs, "on_redis_error", opts.OnRedisError, "backend_delay", opts.BackendDelay, "cache_ttl", opts.CacheTTL,
		"local_cache_ttl", opts.LocalCacheTTL)
	for _, r := range opts.Rules {
		attrs = append(attrs, "rule_"+string(r.Class), r.Algorithm+" "+r.Policy.Describe())
	}
	if conn.Embedded {
		attrs = append(attrs, "embedded_redis", "redis://"+conn.Addr())
	}
	log.Info("serving the Product API", attrs...)
	if conn.Embedded {
		log.Warn("the Redis is embedded in this process: other processes share its limits only through --redis redis://" + conn.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: no new connections; finishing in-flight requests", "timeout", opts.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// The grace period is the promise: what has not finished by then (a client
		// still sending its body, a request still waiting) is cut, and the stop that
		// was asked for is done on time.
		_ = srv.Close()
		log.Warn("requests still in flight after --shutdown-timeout were cut", "timeout", opts.ShutdownTimeout)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}
