package productapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/redistest"
)

// newLimiter builds a Redis limiter on rdb under a prefix of the test's own.
func newLimiter(t *testing.T, rdb redis.Scripter, prefix, alg string, p algorithms.Policy) algorithms.Limiter {
	t.Helper()
	l, err := algorithms.NewRedis(rdb, algorithms.MustKeyspace(prefix), alg, p)
	if err != nil {
		t.Fatalf("limiter: %v", err)
	}
	return l
}

// openConn opens a client on b as ratelab serve does (its pool, its timeouts).
func openConn(t *testing.T, b redistest.Backend) *redisconn.Conn {
	t.Helper()
	c, err := redisconn.Open(context.Background(), b.URL(), redisconn.NodeOptions())
	if err != nil {
		t.Fatalf("redisconn.Open(%s): %v", b.URL(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	// A node that has been serving has its pool dialled; wait for that here.
	want := uint32(redisconn.NodeOptions().MinIdleConns)
	for deadline := time.Now().Add(10 * time.Second); c.Client.PoolStats().IdleConns < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return c
}

// newAPI builds an API from cfg, with a fast backend when cfg has none.
func newAPI(t *testing.T, cfg productapi.Config) *productapi.API {
	t.Helper()
	if cfg.Backend == nil {
		cfg.Backend = productapi.NewBackend(0, 0)
	}
	if cfg.CheckTimeout == 0 {
		// Generous: a loaded test machine must not turn decisions into fail-opens.
		cfg.CheckTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := productapi.New(cfg)
	if err != nil {
		t.Fatalf("productapi.New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

var logMu sync.Mutex

func (w testWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// serve runs h on a loopback httptest server.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// do sends one request to h as if from remote, with headers as "Name: value" pairs.
func do(h http.Handler, method, target, remote string, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = remote
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// get fetches url and returns the status, headers and body.
func get(t *testing.T, method, url string, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, url, err)
		return 0, nil, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// mustPrefixes parses CIDRs.
func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	p, err := productapi.ParseTrustedProxies(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// decodeError reads an error body and checks it is the JSON every error carries.
func decodeError(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error  string `json:"error"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Errorf("error body is not JSON with an error: %q (%v)", body, err)
	}
	return e.Error
}

// httptestRequest is a request from remote with headers as "Name: value" pairs; a
// body is sent as application/json unless headers set a Content-Type.
func httptestRequest(method, target, body, remote string, headers []string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = remote
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for _, kv := range headers {
		k, v, _ := strings.Cut(kv, ":")
		if http.CanonicalHeaderKey(strings.TrimSpace(k)) == "Content-Type" {
			r.Header.Del("Content-Type")
		}
		r.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	return r
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
