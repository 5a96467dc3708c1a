package commands

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/productapi"
	"github.com/ratelab/ratelab/internal/redistest"
	"github.com/ratelab/ratelab/scenario"
)

// untrustingTarget runs a Product API as `ratelab serve` does without
// --trusted-proxies, limited by sliding-log 5/1s on b: it limits each connection's
// address and ignores X-Forwarded-For.
func untrustingTarget(t *testing.T, b redistest.Backend) *httptest.Server {
	t.Helper()
	node, err := productapi.NewNode(context.Background(), productapi.NodeConfig{
		Redis: b.Client, Keys: algorithms.MustKeyspace("ratelabtest"),
		Limits: productapi.Limits{Default: productapi.Rule{Algorithm: algorithms.SlidingLog, Policy: algorithms.Policy{Limit: 5, Window: time.Second}}},
		API:    productapi.Config{Backend: productapi.NewBackend(0, 10), CheckTimeout: 5 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = node.Close() })
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = node.Server
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// skipWithoutLoopbackNet skips where this machine cannot send from 127.0.0.2.
func skipWithoutLoopbackNet(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.2:0")
	if err != nil {
		t.Skipf("this machine cannot bind 127.0.0.0/8 addresses: %v", err)
	}
	_ = ln.Close()
}

func TestHammerSourceIdentityOnANodeThatTrustsNoProxy(t *testing.T) {
	skipWithoutLoopbackNet(t)
	b := redistest.Embedded(t)
	srv := untrustingTarget(t, b)
	// Each of the 2 identities sends two bursts of 2L in one window: L each gets through.
	opts := boundaryOptions(b.URL(), 10, algorithms.SlidingLog)
	opts.Targets = []string{srv.URL}
	opts.Identity = scenario.IdentitySource
	h, err := hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	a := h.Algorithms[0]
	if h.Identity != "source" || a.Sent != 40 || a.Errors != 0 || a.Allowed != 10 || a.PeakInWindow != 5 {
		t.Fatalf("identity %q: sent %d, errors %d, allowed %d, peak %d; want 40 sent, 5 admitted for each of 2 peers",
			h.Identity, a.Sent, a.Errors, a.Allowed, a.PeakInWindow)
	}

	// The same traffic in X-Forwarded-For is one client to this node: 127.0.0.1.
	opts.Identity = scenario.IdentityForwardedFor
	h, err = hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if a := h.Algorithms[0]; a.Allowed != 5 {
		t.Fatalf("with X-Forwarded-For to a node that trusts no proxy, %d admitted; want 5, one limit for hammer's one address", a.Allowed)
	}
}

func TestHammerSourceIdentityInProcess(t *testing.T) {
	skipWithoutLoopbackNet(t)
	b := redistest.Embedded(t)
	opts := boundaryOptions(b.URL(), 10, algorithms.SlidingLog)
	opts.Identity = scenario.IdentitySource
	h, err := hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The in-process nodes trust no proxy then, and still limit each identity alone.
	if a := byName(t, h, algorithms.SlidingLog); a.Allowed != 10 || a.PeakInWindow != 5 || a.Checks.Unknown != 0 {
		t.Fatalf("sliding-log: allowed %d, peak %d, checks %+v; want 5 for each of 2 identities, all known", a.Allowed, a.PeakInWindow, a.Checks)
	}
}

func TestHammerAnyServiceWithPathAndHeader(t *testing.T) {
	// A service of its own: a token, items under /api/items/, L per client per run,
	// 429 for over the limit and 403 for a client it blocks, no Server-Timing.
	const limit = 5
	var mu sync.Mutex
	counts := map[string]int{}
	var bad []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := r.Header.Get("X-Forwarded-For")
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer s3cret" || !strings.HasPrefix(r.URL.Path, "/api/items/") {
			bad = append(bad, r.URL.Path+" "+r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		counts[client]++
		switch {
		case counts[client] <= limit:
			_, _ = w.Write([]byte(`{"id":1}`))
		case counts[client]%2 == 0:
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	opts := boundaryOptions("", 10, algorithms.SlidingLog)
	opts.Targets = []string{srv.URL}
	opts.Path = "/api/items/{product}"
	opts.Headers = []string{"Authorization: Bearer s3cret"}
	opts.DenyStatus = []int{429, 403}
	h, err := hammerJSON(t, context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("requests without the header or off the path: %q", bad)
	}
	a := h.Algorithms[0]
	if a.Sent != 40 || a.Allowed != 10 || a.Denied != 30 || a.Errors != 0 || len(counts) != 2 {
		t.Fatalf("sent %d, allowed %d, denied %d, errors %d from %d clients; want 40, 10, 30 (429 and 403), 0, from 2",
			a.Sent, a.Allowed, a.Denied, a.Errors, len(counts))
	}
	// No Server-Timing: the check latency is unknown, not 0.
	if !a.CheckLatencyUnknown || a.CheckLatencyUs.Count != 0 {
		t.Errorf("check latency %+v, unknown %v; want it marked unknown", a.CheckLatencyUs, a.CheckLatencyUnknown)
	}
	if h.Path != "/api/items/{product}" || len(h.DenyStatus) != 2 || h.Identity != "xff" {
		t.Errorf("the report names path %q, deny %v, identity %q", h.Path, h.DenyStatus, h.Identity)
	}

	// The table says so in words, and prints no latency for the check.
	opts.Output = "table"
	var out strings.Builder
	if err := Hammer(context.Background(), opts, IO{Out: &out, ErrOut: &strings.Builder{}}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "check latency unknown") || strings.Contains(s, "s3cret") {
		t.Errorf("the table does not say the check latency is unknown, or shows the token:\n%s", s)
	}
}

func TestHammerRequestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*HammerOptions)
		want string
	}{
		{"path without target", func(o *HammerOptions) { o.Path = "/api/{product}" }, "are for --target"},
		{"header without target", func(o *HammerOptions) { o.Headers = []string{"A: b"} }, "are for --target"},
		{"deny status without target", func(o *HammerOptions) { o.DenyStatus = []int{403} }, "are for --target"},
		{"bad identity", func(o *HammerOptions) { o.Identity = "cookie" }, `identity "cookie"`},
		{"bad path", func(o *HammerOptions) { o.Targets = []string{"http://127.0.0.1:1"}; o.Path = "/{x}" }, "unknown placeholder"},
		{"header with CRLF", func(o *HammerOptions) {
			o.Targets = []string{"http://127.0.0.1:1"}
			o.Headers = []string{"X-A: 1\r\nX-B: 2"}
		}, "CR, LF"},
		{"forwarded-for header", func(o *HammerOptions) {
			o.Targets = []string{"http://127.0.0.1:1"}
			o.Headers = []string{"x-forwarded-for: 1.2.3.4"}
		}, "X-Forwarded-For"},
		{"deny 200", func(o *HammerOptions) { o.Targets = []string{"http://127.0.0.1:1"}; o.DenyStatus = []int{200} }, "cannot mean denied"},
		{"source identities past the connections", func(o *HammerOptions) { o.Identity = scenario.IdentitySource; o.IPs = 6000; o.Nodes = 2 }, "lower --ips"},
		{"source identities to ::1", func(o *HammerOptions) { o.Identity = scenario.IdentitySource; o.Targets = []string{"http://[::1]:1"} }, "IPv4 loopback only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := boundaryOptions("", 10, algorithms.GCRA)
			tt.set(&opts)
			// Validate catches what it can; a target's address is checked as the run
			// opens it, before anything is sent.
			err := opts.Validate()
			if err == nil {
				err = Hammer(context.Background(), opts, IO{Out: &strings.Builder{}, ErrOut: &strings.Builder{}})
			}
			if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, %v; want a usage error with %q", ExitCode(err), err, tt.want)
			}
		})
	}
}
