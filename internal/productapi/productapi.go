// Package productapi is the Product API that ratelab serve runs and ratelab hammer
// runs in process: GET /products/{id} read through a cache from a deliberately slow
// backend, PUT /products/{id} and DELETE /products/{id}/cache to change and
// invalidate, /metrics and /healthz, all behind a rate-limiting middleware keyed by
// client IP or API key.
//
// Several APIs can live in one process (hammer's nodes): each takes its own
// prometheus.Registerer and logger, and may share a Backend (so backend calls are
// counted across nodes) and a Redis with the others.
package productapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/wire"
)

// The routes, as ServeMux patterns; they are also the route label of the metrics.
const (
	RouteGetProduct = "GET /products/{id}"
	RoutePutProduct = "PUT /products/{id}"
	RouteInvalidate = "DELETE /products/{id}/cache"
	RouteMetrics    = "GET /metrics"
	RouteHealth     = "GET /healthz"
)

// Class groups routes for per-route rate-limit rules.
type Class string

// The route classes.
const (
	// ClassRead is GET /products/{id}.
	ClassRead Class = "read"
	// ClassWrite is PUT /products/{id} and DELETE /products/{id}/cache.
	ClassWrite Class = "write"
)

// ParseClass checks a route class name.
func ParseClass(s string) (Class, error) {
	switch c := Class(s); c {
	case ClassRead, ClassWrite:
		return c, nil
	}
	return "", fmt.Errorf("route class %q: choose %q (GET /products/{id}) or %q (PUT /products/{id}, DELETE /products/{id}/cache)",
		s, ClassRead, ClassWrite)
}

// FailMode is what the middleware does when a limiter check fails (Redis down or
// too slow for the check's time budget).
type FailMode string

// The fail modes.
const (
	// FailOpen serves the request unlimited.
	FailOpen FailMode = "open"
	// FailClosed answers 503.
	FailClosed FailMode = "closed"
	// FailLocal decides with the node's own in-memory limiter (Config.Local), at its
	// share of the limit, until Redis answers again: the insurance limiter.
	FailLocal FailMode = "local"
)

// ParseFailMode checks an --on-redis-error value.
func ParseFailMode(s string) (FailMode, error) {
	switch m := FailMode(s); m {
	case FailOpen, FailClosed, FailLocal:
		return m, nil
	}
	return "", fmt.Errorf("on-redis-error %q: choose %q (serve unlimited), %q (answer 503) or %q (each node's in-memory limiter at its share of the limit)",
		s, FailOpen, FailClosed, FailLocal)
}

// DefaultCheckTimeout is a limiter check's time budget when Config.CheckTimeout is 0.
const DefaultCheckTimeout = 50 * time.Millisecond

// Cache is the read-through cache the API reads products through; *cache.Cache
// implements it. Values are a product's JSON.
type Cache interface {
	// Get returns the value for id, calling load on a miss.
	Get(ctx context.Context, id string, load cache.Loader) (cache.Result, error)
	// Invalidate drops id from every tier on every node.
	Invalidate(ctx context.Context, id string) error
	// Stats counts hits, misses and waits.
	Stats() cache.Stats
}

// Config is everything an API is made of. Backend is required; the rest has defaults.
type Config struct {
	// Backend is the slow system of record. Nodes of one process may share one.
	Backend *Backend
	// Cache is the product cache; nil means every GET reads the backend.
	Cache Cache
	// Limiter rate-limits every product route without a rule of its own; nil means no
	// limit. Callers build it (algorithms.NewRedis or NewLocal) and may wrap it.
	Limiter algorithms.Limiter
	// Rules are limiters for one class of routes, in place of Limiter (e.g. writes
	// stricter than reads). Two limiters of the same algorithm and policy share state.
	Rules map[Class]algorithms.Limiter
	// Policies, when set, decide every product route by a policy file in place of
	// Limiter and Rules (NewNode sets it from Limits.File).
	Policies *Policies
	// KeyBy says what identifies a client; empty means KeyByIP.
	KeyBy KeyBy
	// TrustedProxies are the proxies whose X-Forwarded-For is believed (see ClientIP).
	TrustedProxies []netip.Prefix
	// IPv6Prefix groups IPv6 clients by their network of this many bits, 48 to 128
	// (algorithms.IPIdentity); 0 means algorithms.DefaultIPv6Prefix, a /64.
	IPv6Prefix int
	// APIKeys hashes X-API-Key values into identities under the server's secret;
	// required with KeyByAPIKey. Nodes that share a limit need the same secret.
	APIKeys *algorithms.APIKeyHasher
	// CheckTimeout is the time budget of one limiter check; 0 means DefaultCheckTimeout.
	CheckTimeout time.Duration
	// OnLimiterError decides requests whose check failed; empty means FailOpen.
	OnLimiterError FailMode
	// Local and LocalRules are the in-memory limiters that decide, with FailLocal,
	// the requests whose check of Limiter or of Rules[c] failed (NewNode builds them
	// at the node's share of each limit). FailLocal requires one per limiter.
	Local      algorithms.Limiter
	LocalRules map[Class]algorithms.Limiter
	// MaxChecksInFlight bounds the limiter checks this node runs at once; 0 means
	// redisconn.DefaultPoolSize. Give it the size of the limiter's Redis pool: a check
	// over the bound waits for a slot (at most half its budget) instead of queueing for
	// a pool connection, and one that finds none is a 503 counted as "overloaded".
	MaxChecksInFlight int
	// LocalEvictions, when set, counts the identities the node's in-memory limiters
	// forgot to stay within their bound, for /metrics (NewNode sets it for StoreLocal).
	LocalEvictions func() int64
	// LimiterStats, when set, counts per algorithm what the node's Redis limiters did
	// (checks answered locally, Redis calls, round trips), for /metrics (NewNode sets it).
	LimiterStats func() map[string]algorithms.Stats
	// Health is a limiter-shaped write to Redis (see RedisHealth) whose error says why
	// Redis cannot serve the limiter; nil means no Redis to check. /healthz runs it, and
	// a failed check runs it to confirm an outage before one is declared.
	Health func(ctx context.Context) error
	// HealthTimeout is /healthz's budget; 0 means DefaultHealthTimeout.
	HealthTimeout time.Duration
	// ProbeTimeout is the budget of the Health call that confirms an outage (and,
	// without Health, how long checks must fail with no success between before an
	// outage is declared); 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// Registerer receives the API's metrics; nil means a registry of the API's own.
	// Several APIs in one process need separate registries, or one wrapped per node
	// (prometheus.WrapRegistererWith).
	Registerer prometheus.Registerer
	// Gatherer is what /metrics serves; nil means Registerer when it is a Gatherer
	// (as *prometheus.Registry is), else /metrics is not served.
	Gatherer prometheus.Gatherer
	// Logger receives the API's logs; nil means none.
	Logger *slog.Logger
}

// API is one node of the Product API.
type API struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	reg     prometheus.Registerer
	mux     *http.ServeMux
	ident   Identifier
	slots   slots
	outage  *outage

	// policyMetrics count a policy file's decisions (with Config.Policies).
	policyMetrics *policyMetrics
}

// New builds an API from cfg and registers its metrics.
func New(cfg Config) (*API, error) {
	if cfg.Backend == nil {
		return nil, errors.New("productapi: Config.Backend is required")
	}
	ident := Identifier{KeyBy: cfg.KeyBy, TrustedProxies: cfg.TrustedProxies, IPv6Prefix: cfg.IPv6Prefix, APIKeys: cfg.APIKeys}
	if err := ident.check(); err != nil {
		return nil, fmt.Errorf("productapi: %w", err)
	}
	cfg.KeyBy, cfg.IPv6Prefix = ident.KeyBy, ident.IPv6Prefix
	if cfg.OnLimiterError == "" {
		cfg.OnLimiterError = FailOpen
	}
	if _, err := ParseFailMode(string(cfg.OnLimiterError)); err != nil {
		return nil, fmt.Errorf("productapi: %w", err)
	}
	if err := cfg.checkLocal(); err != nil {
		return nil, err
	}
	for c := range cfg.Rules {
		if _, err := ParseClass(string(c)); err != nil {
			return nil, fmt.Errorf("productapi: rule: %w", err)
		}
	}
	if cfg.CheckTimeout < 0 {
		return nil, fmt.Errorf("productapi: check timeout %s is negative", cfg.CheckTimeout)
	}
	if cfg.CheckTimeout == 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{{"health timeout", &cfg.HealthTimeout, DefaultHealthTimeout}, {"probe timeout", &cfg.ProbeTimeout, DefaultProbeTimeout}} {
		if *d.v < 0 {
			return nil, fmt.Errorf("productapi: %s %s is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxChecksInFlight < 0 {
		return nil, fmt.Errorf("productapi: MaxChecksInFlight %d is negative", cfg.MaxChecksInFlight)
	}
	if cfg.MaxChecksInFlight == 0 {
		cfg.MaxChecksInFlight = redisconn.DefaultPoolSize()
	}
	if cfg.Registerer == nil {
		r := prometheus.NewRegistry()
		cfg.Registerer = r
		if cfg.Gatherer == nil {
			cfg.Gatherer = r
		}
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer, _ = cfg.Registerer.(prometheus.Gatherer)
	}
	a := &API{cfg: cfg, log: cfg.Logger, reg: cfg.Registerer, ident: ident, slots: make(slots, cfg.MaxChecksInFlight)}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	what := "serving requests unlimited (--on-redis-error open)"
	switch cfg.OnLimiterError {
	case FailClosed:
		what = "answering 503 (--on-redis-error closed)"
	case FailLocal:
		what = "limiting with each node's in-memory limiter at its share (--on-redis-error local)"
	}
	a.outage = &outage{probe: cfg.Health, budget: cfg.ProbeTimeout, log: a.log, what: what}
	var stats func() (int64, int64, int64, int64)
	if cfg.Cache != nil {
		stats = func() (int64, int64, int64, int64) {
			s := cfg.Cache.Stats()
			return s.LocalHits, s.RedisHits + s.NegativeHits, s.Misses, s.LockWaits
		}
	}
	a.metrics = newMetrics(cfg.Backend, stats, func() float64 { return float64(len(a.slots)) }, cfg.LocalEvictions)
	if cfg.LimiterStats != nil {
		a.metrics.all = append(a.metrics.all, limiterCollector(cfg.LimiterStats))
	}
	a.outage.onStart = func() { a.metrics.outage.Set(1); a.metrics.outages.Inc() }
	a.outage.onEnd = func() { a.metrics.outage.Set(0) }
	if cfg.Policies != nil {
		var more []prometheus.Collector
		a.policyMetrics, more = newPolicyMetrics(cfg.Policies)
		a.metrics.all = append(a.metrics.all, more...)
	}
	for i, c := range a.metrics.all {
		if err := a.reg.Register(c); err != nil {
			for _, done := range a.metrics.all[:i] {
				a.reg.Unregister(done)
			}
			return nil, fmt.Errorf("productapi: registering metrics: %w; give each API its own registry", err)
		}
	}
	a.routes()
	return a, nil
}

// Handler is the API's HTTP handler.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := a.mux.Handler(r); pattern == "" {
			a.noRoute(w, r)
			return
		}
		a.mux.ServeHTTP(w, r)
	})
}

// noRoute answers the mux's own 404 or 405 as JSON, like every other error.
func (a *API) noRoute(w http.ResponseWriter, r *http.Request) {
	rec := &headerOnly{header: make(http.Header)}
	a.mux.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	switch rec.code {
	case http.StatusMethodNotAllowed:
		writeError(w, rec.code, "%s is not allowed on %s; use %s", r.Method, truncate(r.URL.Path, 80), rec.header.Get("Allow"))
	case http.StatusNotFound, 0:
		writeError(w, http.StatusNotFound, "no such route: %s %s; try GET /products/{id}", r.Method, truncate(r.URL.Path, 80))
	default:
		writeError(w, rec.code, "%s", http.StatusText(rec.code))
	}
}

// headerOnly records the status and headers a handler writes, and drops its body.
type headerOnly struct {
	header http.Header
	code   int
}

func (h *headerOnly) Header() http.Header         { return h.header }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(code int)        { h.code = code }

// Close waits for the outage probes in flight (each bounded by its budget) and
// unregisters the API's metrics. The backend, cache and limiters belong to the
// caller, who closes them.
func (a *API) Close() error {
	a.outage.wait()
	for _, c := range a.metrics.all {
		a.reg.Unregister(c)
	}
	return nil
}

func (a *API) routes() {
	a.mux = http.NewServeMux()
	a.mux.Handle(RouteGetProduct, a.limited(RouteGetProduct, ClassRead, a.getProduct))
	a.mux.Handle(RoutePutProduct, a.limited(RoutePutProduct, ClassWrite, a.putProduct))
	a.mux.Handle(RouteInvalidate, a.limited(RouteInvalidate, ClassWrite, a.invalidate))
	if a.cfg.Gatherer != nil {
		a.mux.Handle(RouteMetrics, promhttp.HandlerFor(a.cfg.Gatherer, promhttp.HandlerOpts{}))
	}
	a.mux.HandleFunc(RouteHealth, a.health)
}

// maxBody bounds a PUT body.
const maxBody = 64 << 10

func (a *API) getProduct(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := cache.ValidateID(id); err != nil {
		writeError(w, http.StatusBadRequest, "product id: %v", err)
		return
	}
	body, source, err := a.read(r.Context(), id)
	switch {
	case errors.Is(err, cache.ErrNotFound):
		w.Header().Set(wire.HeaderXCache, wire.FormatXCache(source))
		writeError(w, http.StatusNotFound, "product %q does not exist", id)
		return
	case r.Context().Err() != nil:
		return // the client is gone
	case err != nil:
		a.log.Error("reading a product failed", "id", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, "product %q cannot be read right now; retry later", id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(wire.HeaderXCache, wire.FormatXCache(source))
	_, _ = w.Write(body)
}

// read returns a product's JSON through the cache, if there is one.
func (a *API) read(ctx context.Context, id string) ([]byte, cache.Source, error) {
	load := func(ctx context.Context, id string) ([]byte, error) {
		p, err := a.cfg.Backend.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		return append(b, '\n'), nil
	}
	if a.cfg.Cache == nil {
		b, err := load(ctx, id)
		return b, cache.FromLoad, err
	}
	res, err := a.cfg.Cache.Get(ctx, id, load)
	return res.Value, res.Source, err
}

func (a *API) putProduct(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := cache.ValidateID(id); err != nil {
		writeError(w, http.StatusBadRequest, "product id: %v", err)
		return
	}
	if err := checkJSONContentType(r.Header); err != nil {
		writeError(w, http.StatusUnsupportedMediaType, "%v", err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "the body is larger than %d bytes", maxBody)
			return
		}
		// Never a 200 for a body that did not arrive: a client cut off by the read
		// timeout, or gone, gets a 400 if the connection still takes one.
		if errors.Is(err, os.ErrDeadlineExceeded) {
			writeError(w, http.StatusBadRequest, "the body did not arrive within the server's read timeout; send it at once")
			return
		}
		writeError(w, http.StatusBadRequest, "the body could not be read (%v); send it again", err)
		return
	}
	c, err := decodeChange(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	p, err := a.cfg.Backend.Put(r.Context(), id, c)
	if errors.Is(err, cache.ErrNotFound) {
		writeError(w, http.StatusNotFound, "product %q does not exist", id)
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "product %q cannot be changed right now; retry later", id)
		return
	}
	if !a.invalidateCache(w, r.Context(), id, "changed") {
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *API) invalidate(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := cache.ValidateID(id); err != nil {
		writeError(w, http.StatusBadRequest, "product id: %v", err)
		return
	}
	if !a.invalidateCache(w, r.Context(), id, "kept") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": id, "invalidated": "true"})
}

// invalidateCache invalidates id and answers the error itself when that fails.
func (a *API) invalidateCache(w http.ResponseWriter, ctx context.Context, id, backendState string) bool {
	if a.cfg.Cache == nil {
		return true
	}
	err := a.cfg.Cache.Invalidate(ctx, id)
	switch {
	case err == nil:
		return true
	case errors.Is(err, cache.ErrUnconfirmed):
		// Redis no longer holds the old value; a node that did not confirm has lost its
		// subscription (and with it its local tier) or is about to.
		a.log.Warn("invalidation not confirmed by every node", "id", id, "err", err)
		return true
	}
	a.log.Error("invalidating a product failed", "id", id, "err", err)
	writeError(w, http.StatusServiceUnavailable, "product %q was %s, but its cache could not be invalidated (%v); retry", id, backendState, err)
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is every error response's JSON.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, errorBody{Error: fmt.Sprintf(format, args...), Status: code})
}
