package productapi

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/policy"
)

// The stores of a node's limiters: where limiter state lives.
const (
	// StoreRedis: one limiter in Redis shared by every node, one limit per client.
	StoreRedis = "redis"
	// StoreLocal: a limiter in memory per node; a client spread over K nodes gets K limits.
	StoreLocal = "local"
)

// Rule is the limit of one class of routes.
type Rule struct {
	Algorithm string            `json:"algorithm"`
	Policy    algorithms.Policy `json:"policy"`
}

// Limits is what a node's limiters enforce: a default rule for every product route,
// and rules of their own for some classes of routes.
type Limits struct {
	// Store is StoreRedis or StoreLocal.
	Store string
	// Default limits every product route without a rule of its own.
	Default Rule
	// Rules override Default per class of routes.
	Rules map[Class]Rule
	// MaxDelay is the longest a leaky bucket makes a request wait before it is denied
	// instead; 0 means the bucket's drain time, capped at algorithms.MaxDelayCap.
	MaxDelay time.Duration
	// MaxIdentities bounds the identities each in-memory limiter (StoreLocal) holds;
	// 0 means algorithms.DefaultMaxIdentities.
	MaxIdentities int
	// File, when set, is a policy file whose rules decide every product route in
	// place of Default and Rules (StoreRedis only); see Node.Policies for reloads.
	File *policy.Policy
	// Now, when set, is the clock of the policy file's limiters (tests and virtual
	// clocks); nil means the Redis server's TIME.
	Now func() time.Time
	// Share is how many nodes share the limit: with fail mode local, each node's
	// in-memory limiter enforces SharePolicy(policy, Share) while Redis fails; 0 means 1.
	Share int
	// Batch makes the Redis limiters share round trips between concurrent checks
	// (algorithms.WithBatching, its defaults).
	Batch bool
	// DenyCache gives the Redis limiters an exact local deny cache
	// (algorithms.WithDenyCache), except the leaky bucket's: its give-backs, from any
	// node, improve an identity's state, which no other node's cache would know.
	// Batch and DenyCache apply to a policy file's combined limiters too (DenyCache
	// not to a rule with a leaky bucket among its limits).
	DenyCache bool
}

// SharePolicy is one node's share of p among n nodes: ceil(L/n) per window, and a
// burst of ceil(B/n) when p sets one, so that n nodes together admit at most what p
// does (rounded up, at most n−1 more).
func SharePolicy(p algorithms.Policy, n int) algorithms.Policy {
	if n <= 1 {
		return p
	}
	ceilDiv := func(a int64) int64 { return (a + int64(n) - 1) / int64(n) }
	p.Limit = ceilDiv(p.Limit)
	if p.Burst > 0 {
		p.Burst = ceilDiv(p.Burst)
	}
	return p
}

// options are the limiter options of these limits.
func (l Limits) options() []algorithms.Option {
	var opts []algorithms.Option
	if l.MaxDelay > 0 {
		opts = append(opts, algorithms.WithMaxDelay(l.MaxDelay))
	}
	if l.MaxIdentities > 0 {
		opts = append(opts, algorithms.WithMaxIdentities(l.MaxIdentities))
	}
	return opts
}

// longestDelay is the longest a leaky bucket of these limits may hold a request
// before it is served: its whole queue draining, or the max delay when that is shorter.
func (l Limits) longestDelay() time.Duration {
	var d time.Duration
	if l.File != nil {
		// A reload may bring a leaky bucket at any time: allow for the longest delay.
		d = algorithms.MaxDelayCap
		if l.MaxDelay > 0 {
			d = l.MaxDelay
		}
	}
	for _, r := range append([]Rule{l.Default}, mapValues(l.Rules)...) {
		if r.Algorithm == algorithms.LeakyBucket && r.Policy.Limit > 0 {
			drain := time.Duration(float64(r.Policy.Window) * float64(r.Policy.EffectiveBurst()) / float64(r.Policy.Limit))
			ceiling := algorithms.MaxDelayCap
			if l.MaxDelay > 0 {
				ceiling = l.MaxDelay
			}
			d = max(d, min(drain, ceiling))
		}
	}
	return d
}

func mapValues[K comparable, V any](m map[K]V) []V {
	vs := make([]V, 0, len(m))
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// Defaults of ServerConfig.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout allows a body of the largest size a PUT takes to arrive
	// slowly, but not at a byte a second.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout is the time to answer a request beyond the longest the
	// limiter may delay it and the backend may take.
	DefaultWriteTimeout   = 30 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxHeaderBytes = 64 << 10
)

// ServerConfig bounds what a client may hold of a node's HTTP server. Zero values
// mean the defaults; WriteTimeout's default grows with the limits' longest delay and
// the backend's.
type ServerConfig struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// ErrorLog receives the server's own errors (bad requests, TLS); nil means the log package's.
	ErrorLog *log.Logger
	// BaseContext is every request's parent context; nil means context.Background.
	BaseContext func(net.Listener) context.Context
}

// NodeConfig is one node of the Product API: what serve runs once and hammer runs per
// in-process node, so that both build it the same way.
type NodeConfig struct {
	// API configures the handler. NewNode sets its Limiter, Rules and Cache from
	// Limits and Cache.
	API Config
	// Redis holds the shared limiters and the cache; Keys names their keys; Where names
	// the Redis in error messages.
	Redis redis.UniversalClient
	// LimiterRedis, when set, is the client of the shared limiters instead of Redis
	// (hammer's fault proxy stands between it and Redis; the cache keeps Redis).
	LimiterRedis redis.UniversalClient
	Keys         algorithms.Keyspace
	Where        string
	// Limits are the node's limiters; a zero Default.Algorithm means no limit.
	Limits Limits
	// WrapLimiter, when set, wraps every limiter the node builds (hammer records
	// each decision with it); WrapLocal wraps the in-memory limiters of fail mode
	// local (hammer's fault trace notes their decisions' times).
	WrapLimiter func(algorithms.Limiter) algorithms.Limiter
	WrapLocal   func(algorithms.Limiter) algorithms.Limiter
	// Cache, when set, gives the node a read-through cache in Redis with these
	// options (Keys and Where are the node's); nil means every GET reads the backend.
	Cache *cache.Options
	// Server bounds the node's HTTP server.
	Server ServerConfig
}

// Node is one node of the Product API: the handler with its limiters and cache, and
// the HTTP server that serves it.
type Node struct {
	// API is the handler.
	API *API
	// Server serves API with the node's timeouts; the caller starts it on a listener
	// and shuts it down.
	Server       *http.Server
	cache        *cache.Cache
	evictions    func() int64
	limiterStats func() map[string]algorithms.Stats
}

// LimiterStats counts, per algorithm, what the node's Redis limiters did: checks
// answered by the deny cache, calls to Redis, round trips (nil without Redis limiters);
// a policy file's combined limiters count under "policy".
func (n *Node) LimiterStats() map[string]algorithms.Stats {
	if n.limiterStats == nil {
		return nil
	}
	return n.limiterStats()
}

// limiterStats sums the stats of ls by algorithm.
func limiterStats(ls []*algorithms.Redis) map[string]algorithms.Stats {
	m := map[string]algorithms.Stats{}
	for _, l := range ls {
		s, t := m[l.Algorithm()], l.Stats()
		s.Local, s.RedisCalls, s.RoundTrips = s.Local+t.Local, s.RedisCalls+t.RedisCalls, s.RoundTrips+t.RoundTrips
		m[l.Algorithm()] = s
	}
	return m
}

// Policies are the node's policy file and its limiters (nil without Limits.File):
// Reload puts a new file in force.
func (n *Node) Policies() *Policies { return n.API.cfg.Policies }

// LocalEvictions counts the identities the node's in-memory limiters forgot to stay
// within their bound (0 with Redis limiters).
func (n *Node) LocalEvictions() int64 {
	if n.evictions == nil {
		return 0
	}
	return n.evictions()
}

// NewNode builds a node from cfg: its limiters, its cache, the API and its server.
// ctx bounds what building does in Redis (the cache's subscription).
func NewNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	api := cfg.API
	var locals []*algorithms.Local
	var redises []*algorithms.Redis
	if cfg.Limits.Default.Algorithm != "" {
		l, err := cfg.limiter(cfg.Limits.Default, &locals, &redises)
		if err != nil {
			return nil, err
		}
		api.Limiter = l
		if api.Local, err = cfg.fallback(cfg.Limits.Default); err != nil {
			return nil, err
		}
	}
	if len(cfg.Limits.Rules) > 0 {
		api.Rules = map[Class]algorithms.Limiter{}
		for c, r := range cfg.Limits.Rules {
			l, err := cfg.limiter(r, &locals, &redises)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", c, err)
			}
			api.Rules[c] = l
			local, err := cfg.fallback(r)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", c, err)
			}
			if local != nil {
				if api.LocalRules == nil {
					api.LocalRules = map[Class]algorithms.Limiter{}
				}
				api.LocalRules[c] = local
			}
		}
	}
	if cfg.Limits.File != nil {
		if cfg.Limits.Store == StoreLocal {
			return nil, errors.New("productapi: a policy file's limits live in Redis; drop the local store")
		}
		if cfg.API.OnLimiterError == FailLocal {
			return nil, errors.New("productapi: fail mode local has no in-memory limiter for a policy file's limits; use open or closed")
		}
		ps, err := newPolicies(cfg.Redis, cfg.Keys, api, cfg.Limits)
		if err != nil {
			return nil, err
		}
		api.Policies = ps
	}
	if len(locals) > 0 {
		api.LocalEvictions = func() int64 {
			var n int64
			for _, l := range locals {
				n += l.Evictions()
			}
			return n
		}
	}
	if len(redises) > 0 || api.Policies != nil {
		ps := api.Policies
		api.LimiterStats = func() map[string]algorithms.Stats {
			m := limiterStats(redises)
			if ps != nil {
				m[policyAlgorithm] = ps.Stats()
			}
			return m
		}
	}
	n := &Node{evictions: api.LocalEvictions, limiterStats: api.LimiterStats}
	if cfg.Cache != nil {
		if cfg.Redis == nil {
			return nil, errors.New("productapi: a node's cache needs Redis")
		}
		opts := *cfg.Cache
		opts.Keys, opts.Where = cfg.Keys, cfg.Where
		c, err := cache.New(ctx, cfg.Redis, opts)
		if err != nil {
			return nil, err
		}
		n.cache, api.Cache = c, c
	}
	a, err := New(api)
	if err != nil {
		_ = n.closeCache()
		return nil, err
	}
	n.API = a
	n.Server = newServer(a.Handler(), cfg.Server, cfg.Limits.longestDelay()+a.cfg.Backend.Delay())
	return n, nil
}

// limiter builds the limiter of one rule in the node's store; an in-memory one is
// added to locals, a Redis one to redises.
func (cfg NodeConfig) limiter(r Rule, locals *[]*algorithms.Local, redises *[]*algorithms.Redis) (algorithms.Limiter, error) {
	var l algorithms.Limiter
	var err error
	opts := cfg.Limits.options()
	switch cfg.Limits.Store {
	case StoreLocal:
		var local *algorithms.Local
		if local, err = algorithms.NewLocal(r.Algorithm, r.Policy, nil, opts...); err == nil {
			*locals = append(*locals, local)
			l = local
		}
	case StoreRedis, "":
		client := cfg.Redis
		if cfg.LimiterRedis != nil {
			client = cfg.LimiterRedis
		}
		if client == nil {
			return nil, errors.New("productapi: a Redis limiter needs Redis")
		}
		if cfg.Limits.Batch {
			opts = append(opts, algorithms.WithBatching(0, 0))
		}
		if cfg.Limits.DenyCache && r.Algorithm != algorithms.LeakyBucket {
			opts = append(opts, algorithms.WithDenyCache(0))
		}
		var rl *algorithms.Redis
		if rl, err = algorithms.NewRedis(client, cfg.Keys, r.Algorithm, r.Policy, opts...); err == nil {
			*redises = append(*redises, rl)
			l = rl
		}
	default:
		return nil, fmt.Errorf("productapi: store %q: choose %q or %q", cfg.Limits.Store, StoreRedis, StoreLocal)
	}
	if err != nil {
		return nil, err
	}
	if cfg.WrapLimiter != nil {
		l = cfg.WrapLimiter(l)
	}
	return l, nil
}

// fallback is the in-memory limiter that decides for the Redis limiter of r while
// Redis fails, with fail mode local: the same algorithm at the node's share of the
// policy. Without fail mode local there is none.
func (cfg NodeConfig) fallback(r Rule) (algorithms.Limiter, error) {
	if cfg.API.OnLimiterError != FailLocal {
		return nil, nil
	}
	l, err := algorithms.NewLocal(r.Algorithm, SharePolicy(r.Policy, cfg.Limits.Share), nil, cfg.Limits.options()...)
	if err != nil {
		return nil, err
	}
	if cfg.WrapLocal != nil {
		return cfg.WrapLocal(l), nil
	}
	return l, nil
}

// newServer is the node's HTTP server: every timeout set, so that no client holds a
// connection, a header or a body for longer than they allow. slowest is how long the
// node itself may take to answer (the limiter's delay and the backend's).
func newServer(h http.Handler, c ServerConfig, slowest time.Duration) *http.Server {
	or := func(v, def time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		return def
	}
	maxHeader := c.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(c.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      or(c.WriteTimeout, DefaultWriteTimeout+slowest),
		IdleTimeout:       or(c.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          c.ErrorLog,
		BaseContext:       c.BaseContext,
	}
}

// CacheStats counts the node's cache hits, misses and waits (zero without a cache).
func (n *Node) CacheStats() cache.Stats {
	if n.cache == nil {
		return cache.Stats{}
	}
	return n.cache.Stats()
}

// Close releases the API's metrics and the cache's subscription. The server is the
// caller's to shut down first.
func (n *Node) Close() error {
	return errors.Join(n.API.Close(), n.closeCache())
}

func (n *Node) closeCache() error {
	if n.cache == nil {
		return nil
	}
	return n.cache.Close()
}
