package productapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redisconn"
)

// DefaultHealthTimeout is /healthz's budget when Config.HealthTimeout is 0.
const DefaultHealthTimeout = time.Second

// The status of /healthz.
const (
	// HealthOK: Redis answered a limiter-shaped write.
	HealthOK = "ok"
	// HealthDegraded: Redis failed it, and this node fails open (200).
	HealthDegraded = "degraded"
	// HealthFailing: Redis failed it, and this node fails closed (503).
	HealthFailing = "failing"
)

// Health is the JSON of /healthz. It never names the Redis address or user.
type Health struct {
	// Status is HealthOK, HealthDegraded or HealthFailing.
	Status string `json:"status"`
	// Redis is "ok", "failing" or "not used".
	Redis string `json:"redis"`
	// Reason says why Redis failed, in words (redisconn.Problem.Why).
	Reason string `json:"reason,omitempty"`
	// Outage reports whether this node has declared a Redis outage.
	Outage bool `json:"outage"`
	// TookMillis is how long the check took, measured by the server from the start
	// of its budget.
	TookMillis float64 `json:"took_ms"`
}

// RedisHealth is a Config.Health for conn: a probe script writes a key of this
// node's own under keys' prefix with a short TTL (redisconn.Conn.Probe).
func RedisHealth(conn *redisconn.Conn, keys algorithms.Keyspace) func(ctx context.Context) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	key := keys.Health(hex.EncodeToString(b))
	return func(ctx context.Context) error { return conn.Probe(ctx, key) }
}

// health answers /healthz within HealthTimeout: a real limiter-shaped write, and what
// this node does about its failure.
func (a *API) health(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if a.cfg.Health == nil {
		writeJSON(w, http.StatusOK, Health{Status: HealthOK, Redis: "not used"})
		return
	}
	ctx, cancel := context.WithDeadline(r.Context(), start.Add(a.cfg.HealthTimeout))
	defer cancel()
	err := a.cfg.Health(ctx)
	took := time.Since(start)
	if r.Context().Err() != nil {
		return // the client is gone
	}
	a.outage.probed(start, a.cfg.HealthTimeout, err)
	h := Health{Status: HealthOK, Redis: "ok", Outage: a.outage.declared(), TookMillis: float64(took.Microseconds()) / 1000}
	code := http.StatusOK
	if err != nil {
		h.Redis, h.Reason = "failing", redisconn.Diagnose(err).Why
		// Failing open, the node still serves without Redis: degraded, not down.
		h.Status = HealthDegraded
		if a.cfg.OnLimiterError == FailClosed {
			h.Status, code = HealthFailing, http.StatusServiceUnavailable
		}
	}
	writeJSON(w, code, h)
}
