package scenario

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
)

func TestCheckLoopbackURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.3.4.5:80/", true},
		{"https://localhost:8443", true},
		{"http://[::1]:8080", true},
		{"http://10.0.0.1:8080", false},
		{"http://example.com", false},
		{"ftp://127.0.0.1", false},
		{"127.0.0.1:8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			_, err := CheckLoopbackURL(tt.url)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckLoopbackURL(%q) = %v; want ok=%v", tt.url, err, tt.ok)
			}
		})
	}
	if _, err := NewHTTPTarget([]string{"http://127.0.0.1:1", "http://192.168.1.1:80"}, nil, 1, time.Second); !errors.Is(err, ErrNotLoopback) {
		t.Fatalf("a non-loopback target was accepted: %v", err)
	}
}

func TestHTTPTargetRoundRobinWithForwardedFor(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string][]string{}
	handler := func(node string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[node] = append(got[node], r.Header.Get("X-Forwarded-For")+" "+r.URL.Path)
			mu.Unlock()
			if r.URL.Path == "/products/2" {
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
	}
	a, b := httptest.NewServer(handler("a")), httptest.NewServer(handler("b"))
	defer a.Close()
	defer b.Close()
	ids := []string{"10.0.0.1", "10.0.0.2"}
	tg, err := NewHTTPTarget([]string{a.URL, b.URL + "/"}, ids, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	rec := NewRecorder(ids)
	tg.Record = rec
	ctx := context.Background()
	if s := send(ctx, tg, Arrival{Identity: 0, Product: 1}); s != Allowed {
		t.Fatalf("status %v, want allowed", s)
	}
	if s := send(ctx, tg, Arrival{Identity: 1, Product: 2}); s != Denied {
		t.Fatalf("status %v, want denied", s)
	}
	if len(got["a"]) != 1 || len(got["b"]) != 1 || got["a"][0] != "10.0.0.1 /products/1" || got["b"][0] != "10.0.0.2 /products/2" {
		t.Fatalf("requests seen: %v", got)
	}
	if c := rec.Checks(); c.Allowed != 1 || c.Denied != 1 {
		t.Fatalf("recorded %+v", c)
	}
	b.Close()
	if s := send(ctx, tg, Arrival{Identity: 0, Product: 1}); s != Allowed {
		t.Fatalf("node a: %v", s)
	}
	if s := send(ctx, tg, Arrival{Identity: 0, Product: 1}); s != Failed {
		t.Fatalf("a stopped node: %v, want failed", s)
	}
}

func TestHTTPTargetReadsServerTimingCacheAndPolicy(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("RateLimit-Policy", `"default";q=10;w=1`)
		switch r.URL.Path {
		case "/products/1": // checked and admitted, from the local tier
			w.Header().Set("Server-Timing", `ratelimit;dur=0.250;desc="allowed"`)
			w.Header().Set("X-Cache", "local")
		case "/products/2": // the check failed and the node served anyway: fail open
			w.Header().Set("Server-Timing", `ratelimit;dur=50.000;desc="error"`)
			w.Header().Set("X-Cache", "miss")
		case "/products/3": // the check failed and the node refused: fail closed
			w.Header().Set("Server-Timing", `ratelimit;dur=50.000;desc="error"`)
			w.WriteHeader(http.StatusServiceUnavailable)
		case "/products/4": // a server error that is not the limiter's
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ids := []string{"10.0.0.1"}
	tg, err := NewHTTPTarget([]string{srv.URL}, ids, 4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	rec := NewRecorder(ids)
	tg.Record = rec
	ctx := context.Background()
	want := []Status{Allowed, Allowed, Failed, Failed}
	for i, w := range want {
		if s := send(ctx, tg, Arrival{Product: int32(i + 1)}); s != w {
			t.Errorf("product %d: status %v, want %v", i+1, s, w)
		}
	}
	// One admitted check, two failed checks; the plain 503 carried no check at all.
	if c := rec.Checks(); c != (Checks{Allowed: 1, Errors: 2}) {
		t.Errorf("recorded %+v; want 1 allowed, 2 check errors", c)
	}
	if adm := rec.Admitted(); len(adm[0]) != 1 {
		t.Errorf("admitted %v; a fail-open admission is not a limiter admission", adm)
	}
	if l := rec.Latency(); l.TotalCount() != 3 || l.Min() < 250 || l.Max() < 50_000 {
		t.Errorf("check latency: %d values, %d..%dµs; want 3 from Server-Timing, 250µs..50ms", l.TotalCount(), l.Min(), l.Max())
	}
	if src := tg.Sources(); src["local"] != 1 || src["miss"] != 1 || len(src) != 2 {
		t.Errorf("cache sources %v", src)
	}
	if p := tg.Policies(); len(p) != 1 || p[0] != `"default";q=10;w=1` {
		t.Errorf("policies %q", p)
	}
}

func TestRecorderWrap(t *testing.T) {
	t.Parallel()
	ids := []string{"10.0.0.1", "10.0.0.2"}
	rec := NewRecorder(ids)
	l, err := algorithms.NewLocal(algorithms.SlidingLog, algorithms.Policy{Limit: 2, Window: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := rec.Wrap(l)
	if w.Algorithm() != algorithms.SlidingLog {
		t.Fatalf("the wrapper hides the algorithm: %q", w.Algorithm())
	}
	ctx := context.Background()
	for range 3 {
		_, _ = w.Allow(ctx, "10.0.0.1")
	}
	_, _ = w.Allow(ctx, "::ffff:10.0.0.2")
	_, _ = w.Allow(ctx, "192.0.2.1")
	c := rec.Checks()
	if c != (Checks{Allowed: 3, Denied: 1, Unknown: 1}) {
		t.Fatalf("checks %+v", c)
	}
	adm := rec.Admitted()
	if len(adm[0]) != 2 || len(adm[1]) != 1 {
		t.Fatalf("admitted %v", adm)
	}
	if n := rec.Latency().TotalCount(); n != 5 {
		t.Fatalf("%d latencies for 5 checks", n)
	}
}

func TestHTTPTargetStartWritesAtOnceAndWaitsForAFreeConnection(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var closes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/products/1":
			<-release
		case "/products/2": // the server ends the connection after answering
			closes.Add(1)
			w.Header().Set("Connection", "close")
		}
	}))
	defer srv.Close()
	tg := newTarget(t, srv.URL, 1, 5*time.Second)
	ctx := context.Background()
	answers := make(chan Status, 4)
	done := func(s Status) { answers <- s }
	// The first request holds the only connection: Start returns without its answer.
	if waited, err := tg.Start(ctx, Arrival{Product: 1}, done); waited || err != nil {
		t.Fatalf("first start: waited %v, %v", waited, err)
	}
	// The second waits for the connection, and gives up when its context ends.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if waited, err := tg.Start(short, Arrival{Product: 3}, done); !waited || err == nil {
		t.Fatalf("start with the connection busy: waited %v, %v; want a wait that ends with the context", waited, err)
	}
	close(release)
	if s := <-answers; s != Allowed {
		t.Fatalf("first answer %v", s)
	}
	// A connection the server closes is replaced: the next request goes through.
	for range 2 {
		if s := send(ctx, tg, Arrival{Product: 2}); s != Allowed {
			t.Fatalf("after the server closed the connection: %v", s)
		}
	}
	if closes.Load() != 2 {
		t.Fatalf("%d requests that closed the connection; want 2", closes.Load())
	}
}

func TestHTTPTargetFailsFastOnADeadNodeAndAborts(t *testing.T) {
	t.Parallel()
	hang, entered := make(chan struct{}), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	tg, err := NewHTTPTarget([]string{deadURL, srv.URL}, []string{"10.0.0.1"}, 2, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	begin := time.Now()
	if s := send(ctx, tg, Arrival{Product: 1}); s != Failed || time.Since(begin) > 2*time.Second {
		t.Fatalf("a request to a stopped node: %v after %s; want failed at once", s, time.Since(begin))
	}
	// The next request goes to the live node, which never answers: Abort ends it.
	answer := make(chan Status, 1)
	if _, err := tg.Start(ctx, Arrival{Product: 1}, func(s Status) { answer <- s }); err != nil {
		t.Fatal(err)
	}
	<-entered // the request is at the server: its answer is being waited for
	tg.Abort()
	select {
	case s := <-answer:
		if s != Cancelled {
			t.Fatalf("aborted request: %v, want cancelled", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Abort did not end the request in flight")
	}
	tg.Close()
	if _, err := tg.Start(ctx, Arrival{Product: 1}, func(Status) {}); err == nil {
		t.Fatal("a start after Close was accepted")
	}
}

func TestHTTPTargetResendsOnAConnectionTheServerClosedWhileIdle(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen.Add(1) }))
	srv.Config.ReadHeaderTimeout = 100 * time.Millisecond // closes a connection idle that long
	closed := make(chan struct{}, 1)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	}
	srv.Start()
	defer srv.Close()
	tg := newTarget(t, srv.URL, 1, 5*time.Second)
	<-closed // the server has closed the idle connection
	if s := send(context.Background(), tg, Arrival{Product: 1}); s != Allowed || seen.Load() != 1 {
		t.Fatalf("the first request after the server closed the idle connection: %v, seen %d times; want allowed, once", s, seen.Load())
	}
}

func TestHTTPTargetOnAServerThatClosesAtOnce(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	tg := newTarget(t, "http://"+ln.Addr().String(), 4, time.Second)
	// Every request fails, none hangs, and the race detector sees one owner per connection.
	for i := range 2000 {
		if s := send(context.Background(), tg, Arrival{Product: 1}); s != Failed {
			t.Fatalf("request %d: %v, want failed", i, s)
		}
	}
}

func TestHTTPTargetCloseWhileStartingStillAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { time.Sleep(time.Millisecond) }))
	defer srv.Close()
	for i := range 100 {
		tg, err := NewHTTPTarget([]string{srv.URL}, []string{"10.0.0.1"}, 1, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		called := make(chan Status, 1)
		go tg.Close()
		if _, err := tg.Start(context.Background(), Arrival{Product: 1}, func(s Status) { called <- s }); err != nil {
			continue // refused: the target was closed first
		}
		select {
		case <-called:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: a request accepted while the target closed was never answered", i)
		}
	}
}

func TestHTTPTargetSkipsInterimAnswers(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	tg := newTarget(t, srv.URL, 1, time.Second)
	for i := range 3 {
		if s := send(context.Background(), tg, Arrival{Product: 1}); s != Denied {
			t.Fatalf("request %d after a 103: %v, want denied", i, s)
		}
	}
}

// newTarget is a target of one node for identity 10.0.0.1, closed when the test ends.
func newTarget(t *testing.T, url string, conns int, timeout time.Duration) *HTTPTarget {
	t.Helper()
	tg, err := NewHTTPTarget([]string{url}, []string{"10.0.0.1"}, conns, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tg.Close)
	return tg
}

// send sends one request and waits for what became of it (Cancelled when ctx ends
// first): Start for a caller that waits.
func send(ctx context.Context, t *HTTPTarget, a Arrival) Status {
	answer := make(chan Status, 1)
	if _, err := t.Start(ctx, a, func(s Status) { answer <- s }); err != nil {
		return Cancelled
	}
	select {
	case s := <-answer:
		return s
	case <-ctx.Done():
		return Cancelled
	}
}
