package scenario

import (
	"context"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/wire"
)

// Outcome is how a node decided one request, as its answer said: the limiter, one of
// the fail modes, or neither (the node's own 503).
type Outcome uint8

// The outcomes of a traced request.
const (
	// OutcomeAllowed: the limiter admitted it (200).
	OutcomeAllowed Outcome = iota
	// OutcomeDenied: the limiter refused it (429).
	OutcomeDenied
	// OutcomeFailOpen: the check failed and the node served it unlimited.
	OutcomeFailOpen
	// OutcomeFailClosed: the check failed and the node refused it (503).
	OutcomeFailClosed
	// OutcomeLocalAllowed and OutcomeLocalDenied: the check failed and the node's
	// in-memory limiter admitted or refused it (fail mode local).
	OutcomeLocalAllowed
	OutcomeLocalDenied
	// OutcomeError: no decision, the node failed (a 503 for a timeout before an
	// outage was declared, overload, a backend error).
	OutcomeError
)

// Admitted reports whether the request was served.
func (o Outcome) Admitted() bool {
	return o == OutcomeAllowed || o == OutcomeFailOpen || o == OutcomeLocalAllowed
}

// ByLimiter reports whether the shared limiter itself decided: the check succeeded.
func (o Outcome) ByLimiter() bool { return o == OutcomeAllowed || o == OutcomeDenied }

// OutcomeOf reads a node's answer: its status code and its Server-Timing outcome
// ("" when it sent none).
func OutcomeOf(code int, outcome string) Outcome {
	switch {
	case outcome == wire.CheckLocal && code < 400:
		return OutcomeLocalAllowed
	case outcome == wire.CheckLocal && code == http.StatusTooManyRequests:
		return OutcomeLocalDenied
	case outcome == wire.CheckError && code < 400:
		return OutcomeFailOpen
	case outcome == wire.CheckError && code >= 500:
		return OutcomeFailClosed
	case outcome == wire.CheckAllowed && code < 400:
		return OutcomeAllowed
	case outcome == wire.CheckDenied && code == http.StatusTooManyRequests:
		return OutcomeDenied
	}
	return OutcomeError
}

// TraceEvent is one request as a node decided it.
type TraceEvent struct {
	// At is when the node decided it, from the run's start: the in-memory limiter's
	// own time for a local decision (WrapLocal), else when the node began plus the
	// check's time (a fail mode decides when the check has failed).
	At time.Duration
	// Identity indexes the run's identities.
	Identity int32
	Outcome  Outcome
	// Took is the limiter check's time, as the node's Server-Timing said.
	Took time.Duration
}

// Trace records every request the nodes decide during a run, with its time: what
// the fault analysis reads. It is safe for concurrent use.
type Trace struct {
	index    map[string]int32
	bySource bool
	mu       sync.Mutex
	start    time.Time
	events   []TraceEvent
}

// NewTrace returns a trace for the run's identities; bySource says identities come
// as source addresses (IdentitySource), not in X-Forwarded-For.
func NewTrace(identities []string, bySource bool) *Trace {
	t := &Trace{index: make(map[string]int32, len(identities)), bySource: bySource}
	for i, id := range identities {
		t.index[id] = int32(i)
	}
	return t
}

// Begin forgets what was traced (a warm-up's requests) and sets the run's start.
func (t *Trace) Begin(start time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.start, t.events = start, t.events[:0]
}

// Events returns the traced requests in time order.
func (t *Trace) Events() []TraceEvent {
	t.mu.Lock()
	out := append([]TraceEvent(nil), t.events...)
	t.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// localTimeKey is the request context's slot for a local decision's time.
type localTimeKey struct{}

// WrapLocal returns the in-memory limiter l (fail mode local) with each decision's
// own time noted for the traced request it decides, so that the trace holds exactly
// the times the limiter judged by, however late the node ran around it.
func (t *Trace) WrapLocal(l algorithms.Limiter) algorithms.Limiter { return localTiming{l} }

type localTiming struct{ algorithms.Limiter }

func (l localTiming) Allow(ctx context.Context, identity string) (algorithms.Decision, error) {
	d, err := l.Limiter.Allow(ctx, identity)
	if slot, ok := ctx.Value(localTimeKey{}).(*int64); ok && err == nil {
		*slot = d.TimeMicros
	}
	return d, err
}

// Wrap returns h with every answer of a run's identity traced.
func (t *Trace) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		at := time.Now()
		id, ok := t.identity(r)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		var localAt int64
		r = r.WithContext(context.WithValue(r.Context(), localTimeKey{}, &localAt))
		h.ServeHTTP(sw, r)
		took, outcome, _ := wire.ParseServerTiming(w.Header().Values(wire.HeaderServerTiming))
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		if r.Context().Err() != nil && sw.code == 0 {
			return // the client left before an answer: not a decision
		}
		decided := at.Add(took)
		if localAt != 0 {
			decided = time.UnixMicro(localAt)
		}
		t.mu.Lock()
		t.events = append(t.events, TraceEvent{At: decided.Sub(t.start), Identity: id, Outcome: OutcomeOf(code, outcome), Took: took})
		t.mu.Unlock()
	})
}

func (t *Trace) identity(r *http.Request) (int32, bool) {
	raw := r.Header.Get("X-Forwarded-For")
	if t.bySource {
		raw, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	raw = strings.TrimSpace(raw)
	if id, ok := t.index[raw]; ok {
		return id, true
	}
	if n, err := algorithms.NormalizeIdentity(raw); err == nil {
		id, ok := t.index[n]
		return id, ok
	}
	return 0, false
}

// statusWriter notes the status code a handler writes.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
