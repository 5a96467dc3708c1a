package commands_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/commands"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
)

// serveOpts are valid options with a free port and a short backend delay.
func serveOpts(t *testing.T, redisURL string) commands.ServeOptions {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return commands.ServeOptions{
		Global:   commands.Global{RedisURL: redisURL, Prefix: "servetest"},
		Listener: ln, Addr: ln.Addr().String(),
		BackendDelay: 300 * time.Millisecond,
		CacheTTL:     time.Minute, NegativeTTL: time.Second,
		Algorithm: algorithms.SlidingLog, Policy: algorithms.Policy{Limit: 3, Window: time.Minute},
		Store: "redis", KeyBy: productapi.KeyByIP, OnRedisError: productapi.FailOpen,
		CheckTimeout: 2 * time.Second, LogFormat: "text", LogLevel: "info", ShutdownTimeout: 5 * time.Second,
	}
}

// syncBuffer is a log sink for a server goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs Serve until the returned stop is called; stop returns Serve's error.
func startServe(t *testing.T, opts commands.ServeOptions) (url string, logs *syncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- commands.Serve(ctx, opts, commands.IO{In: strings.NewReader(""), Out: io.Discard, ErrOut: logs})
	}()
	url = "http://" + opts.Listener.Addr().String()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve stopped at start: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer /healthz within 10s:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return url, logs, stop
}

// TestServeSession is the README's curl session: the first read is slow, the next
// cached, then the limit answers 429 with its headers; a signal stops it cleanly.
func TestServeSession(t *testing.T) {
	urls := map[string]string{"ratelab's embedded Redis": ""}
	for _, b := range redistest.All(t) {
		urls[b.Name] = b.URL()
	}
	for name, redisURL := range urls {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url, logs, stop := startServe(t, serveOpts(t, redisURL))
			type step struct {
				code   int
				xcache string
				slow   bool
			}
			for i, want := range []step{{200, "miss", true}, {200, "redis", false}, {200, "redis", false}, {429, "", false}} {
				start := time.Now()
				res, err := http.Get(url + "/products/1")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				took := time.Since(start)
				if res.StatusCode != want.code || res.Header.Get("X-Cache") != want.xcache {
					t.Fatalf("request %d: %d X-Cache %q %s; want %d %q", i, res.StatusCode, res.Header.Get("X-Cache"), body, want.code, want.xcache)
				}
				if want.slow && took < 300*time.Millisecond {
					t.Errorf("request %d took %s; the backend delay is 300ms", i, took)
				}
				if res.Header.Get("RateLimit-Policy") == "" || res.Header.Get("X-RateLimit-Remaining") == "" {
					t.Errorf("request %d has no rate-limit headers: %v", i, res.Header)
				}
				if want.code == 200 {
					var p productapi.Product
					if err := json.Unmarshal(body, &p); err != nil || p.ID != "1" || p.Version != 1 {
						t.Errorf("request %d: product %q (%v)", i, body, err)
					}
				} else if res.Header.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			}
			if err := stop(); err != nil {
				t.Errorf("Serve after the signal: %v; want nil", err)
			}
			for _, want := range []string{"serving the Product API", "shutting down", "stopped"} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("logs lack %q:\n%s", want, logs)
				}
			}
		})
	}
}

// TestServeGracefulShutdown: a request in flight when the signal comes is finished.
func TestServeGracefulShutdown(t *testing.T) {
	opts := serveOpts(t, "")
	opts.BackendDelay = 500 * time.Millisecond
	opts.LogFormat = "json"
	url, logs, stop := startServe(t, opts)
	got := make(chan int, 1)
	go func() {
		res, err := http.Get(url + "/products/2")
		if err != nil {
			got <- 0
			return
		}
		res.Body.Close()
		got <- res.StatusCode
	}()
	// Stop once the request is in the backend, however slowly this machine got it there.
	waitForBackendCall(t, url)
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if code := <-got; code != http.StatusOK {
		t.Errorf("the in-flight request got %d; want 200", code)
	}
	if _, err := http.Get(url + "/healthz"); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("JSON logs lack the stop:\n%s", logs)
	}
}

// waitForBackendCall polls serve's /metrics (not rate-limited) until the backend has
// been called.
func waitForBackendCall(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		res, err := http.Get(url + "/metrics")
		if err == nil {
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if regexp.MustCompile(`(?m)^ratelab_backend_calls_total [1-9]`).Match(body) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the backend was not called within a minute")
}

// TestServeValidate: bad options are usage errors (exit 2) naming the flag.
func TestServeValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(o *commands.ServeOptions)
		want   string
	}{
		{"negative limit", func(o *commands.ServeOptions) { o.Policy.Limit = -1 }, "limit is -1"},
		{"zero window", func(o *commands.ServeOptions) { o.Policy.Window = 0 }, "window is 0s"},
		{"negative burst", func(o *commands.ServeOptions) { o.Policy.Burst = -2 }, "burst is -2"},
		{"unknown algorithm", func(o *commands.ServeOptions) { o.Algorithm = "random-drop" }, `--algorithm: unknown algorithm "random-drop"`},
		{"bad store", func(o *commands.ServeOptions) { o.Store = "disk" }, `--store "disk"`},
		{"bad addr", func(o *commands.ServeOptions) { o.Listener, o.Addr = nil, "8080" }, `--addr "8080"`},
		{"zero cache ttl", func(o *commands.ServeOptions) { o.CacheTTL = 0 }, "--cache-ttl 0"},
		{"negative local ttl", func(o *commands.ServeOptions) { o.LocalCacheTTL = -time.Second }, "--local-cache-ttl -1s"},
		{"zero check timeout", func(o *commands.ServeOptions) { o.CheckTimeout = 0 }, "--check-timeout 0"},
		{"bad key-by", func(o *commands.ServeOptions) { o.KeyBy = "cookie" }, `--key-by "cookie"`},
		{"bad fail mode", func(o *commands.ServeOptions) { o.OnRedisError = "maybe" }, `--on-redis-error "maybe"`},
		{"negative local share", func(o *commands.ServeOptions) { o.LocalShare = -1 }, "--local-share -1"},
		{"ipv6 prefix too short", func(o *commands.ServeOptions) { o.IPv6Prefix = 32 }, "--ipv6-prefix: invalid IPv6 prefix length: 32; choose 48 to 128"},
		{"ipv6 prefix too long", func(o *commands.ServeOptions) { o.IPv6Prefix = 129 }, "choose 48 to 128"},
		{"api key without a secret", func(o *commands.ServeOptions) { o.KeyBy = productapi.KeyByAPIKey }, "--key-by api-key needs the secret"},
		{"api key with a weak secret", func(o *commands.ServeOptions) { o.KeyBy, o.APIKeySecret = productapi.KeyByAPIKey, "hunter2" }, "at least 16"},
		{"bad log format", func(o *commands.ServeOptions) { o.LogFormat = "xml" }, `--log-format "xml"`},
		{"bad log level", func(o *commands.ServeOptions) { o.LogLevel = "loud" }, `--log-level "loud"`},
		{"two rules for one class", func(o *commands.ServeOptions) {
			r := commands.RouteRule{Class: productapi.ClassWrite, Algorithm: algorithms.GCRA, Policy: algorithms.Policy{Limit: 1, Window: time.Second}}
			o.Rules = []commands.RouteRule{r, r}
		}, `two rules for "write"`},
	}
	for _, tt := range tests {
		o := serveOpts(t, "")
		tt.change(&o)
		err := o.Validate()
		if commands.ExitCode(err) != commands.ExitUsage || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v (exit %d); want a usage error with %q", tt.name, err, commands.ExitCode(err), tt.want)
		}
	}
}

// TestParseRouteRule covers the --rule syntax.
func TestParseRouteRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    commands.RouteRule
		wantErr string
	}{
		{in: "write=5/1m", want: commands.RouteRule{Class: "write", Algorithm: "gcra", Policy: algorithms.Policy{Limit: 5, Window: time.Minute}}},
		{in: "read=100/1s,burst=200,algorithm=token-bucket", want: commands.RouteRule{Class: "read", Algorithm: "token-bucket", Policy: algorithms.Policy{Limit: 100, Window: time.Second, Burst: 200}}},
		{in: "write", wantErr: "no '='"},
		{in: "admin=5/1s", wantErr: `route class "admin"`},
		{in: "write=5", wantErr: "not LIMIT/WINDOW"},
		{in: "write=-5/1s", wantErr: "limit is -5"},
		{in: "write=5/0s", wantErr: "window is 0s"},
		{in: "write=x/1s", wantErr: "not a whole number"},
		{in: "write=5/soon", wantErr: "not a duration"},
		{in: "write=5/1s,algorithm=nope", wantErr: "unknown algorithm"},
		{in: "write=5/1s,colour=red", wantErr: "unknown option"},
	}
	for _, tt := range tests {
		got, err := commands.ParseRouteRule(tt.in, algorithms.GCRA)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseRouteRule(%q) = %v; want an error with %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseRouteRule(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// TestServeRedisUnreachable: a clear failure (exit 1), not a hang or a raw error.
func TestServeRedisUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	o := serveOpts(t, "redis://"+dead)
	err = commands.Serve(context.Background(), o, commands.IO{Out: io.Discard, ErrOut: io.Discard})
	if commands.ExitCode(err) != commands.ExitFailure || !strings.Contains(err.Error(), "cannot reach Redis") ||
		!strings.Contains(err.Error(), "start redis-server") {
		t.Errorf("Serve with no Redis: %v; want exit 1 saying what to do", err)
	}
}

// slowPut opens a connection and starts a PUT whose body never finishes: the headers
// promise 64 bytes, and one comes.
func slowPut(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := "PUT /products/1 HTTP/1.1\r\nHost: ratelab\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{"
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	return c
}

// putsInHandlers waits until n PUTs have passed the limiter, so that their handlers
// are reading their bodies: /metrics counts a request before its handler runs.
func putsInHandlers(t *testing.T, url string, n int) {
	t.Helper()
	want := `ratelab_http_requests_total{algorithm="sliding-log",decision="allowed",route="PUT /products/{id}"} ` + strconv.Itoa(n)
	for i := 0; ; i++ {
		res, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), want) {
			return
		}
		if i == 1000 {
			t.Fatalf("%d PUTs never reached their handlers:\n%s", n, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestServeReadTimeoutClosesSlowBodies: a client that sends its body a byte at a time
// is cut off by --read-timeout instead of holding its connection for ever.
func TestServeReadTimeoutClosesSlowBodies(t *testing.T) {
	opts := serveOpts(t, "")
	opts.Policy.Limit = 100
	opts.ReadTimeout = 300 * time.Millisecond
	_, logs, _ := startServe(t, opts)
	c := slowPut(t, opts.Listener.Addr().String())
	// The server ends the request: an error answer, then the close (EOF). A bound on
	// the wait keeps a broken server from hanging the test; it is far above the timeout.
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the slow body still held its connection after 20s (read timeout 300ms); got %q\n%s", got, logs)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 400") && len(got) != 0 {
		t.Errorf("a body cut by the read timeout got %q; want a 400 or a plain close", got)
	}
}

// TestServeShutdownWithSlowClients: SIGTERM while five clients hold half-sent bodies
// stops the server at --shutdown-timeout with success, cutting them.
func TestServeShutdownWithSlowClients(t *testing.T) {
	opts := serveOpts(t, "")
	opts.Policy.Limit = 100
	opts.ReadTimeout = time.Hour // only the shutdown may end them
	opts.ShutdownTimeout = 500 * time.Millisecond
	url, logs, stop := startServe(t, opts)
	conns := make([]net.Conn, 5)
	for i := range conns {
		conns[i] = slowPut(t, opts.Listener.Addr().String())
	}
	putsInHandlers(t, url, len(conns))
	if err := stop(); err != nil {
		t.Fatalf("Serve with slow clients at shutdown: %v (exit %d); want success once the grace is over\n%s", err, commands.ExitCode(err), logs)
	}
	if !strings.Contains(logs.String(), "were cut") {
		t.Errorf("the logs do not say requests were cut:\n%s", logs)
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("slow client %d: still open after the server stopped: %v", i, err)
		}
	}
}
