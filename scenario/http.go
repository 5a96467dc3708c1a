package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotLoopback is wrapped by the error for a target that is not a loopback address:
// ratelab only ever sends load to this machine.
var ErrNotLoopback = errors.New("not a loopback address")

// HTTPTarget sends a schedule's requests to Product API nodes, round robin, as
// GET /products/{id} with the identity in X-Forwarded-For: the nodes trust the
// loopback proxy the requests come from and take the identity as the client's IP.
type HTTPTarget struct {
	bases      []string
	identities []string
	client     *http.Client
	next       atomic.Uint64
	// policies holds the first RateLimit-Policy header each target answered with.
	policies []atomic.Pointer[string]
	// sources counts answers by their X-Cache header.
	sources sync.Map // string → *atomic.Int64
	// Record, when set, receives each decision read from a response (the client's
	// clock stands for the server's), with the check's latency from the response's
	// Server-Timing: the burst analysis of nodes ratelab does not run.
	Record *Recorder
}

// ErrCheckFailed is what a target's decision is recorded with when its Server-Timing
// says the limiter check failed and the node's fail mode decided instead.
var ErrCheckFailed = errors.New("the target's limiter check failed")

// NewHTTPTarget checks that every base URL is http(s) on a loopback address and returns
// a target that keeps up to conns connections open and gives each request timeout.
func NewHTTPTarget(bases []string, identities []string, conns int, timeout time.Duration) (*HTTPTarget, error) {
	if len(bases) == 0 {
		return nil, errors.New("no target URL")
	}
	clean := make([]string, len(bases))
	for i, b := range bases {
		u, err := CheckLoopbackURL(b)
		if err != nil {
			return nil, err
		}
		clean[i] = strings.TrimSuffix(u.String(), "/")
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &HTTPTarget{
		bases:      clean,
		identities: identities,
		client:     &http.Client{Transport: tr, Timeout: timeout},
		policies:   make([]atomic.Pointer[string], len(clean)),
	}, nil
}

// CheckLoopbackURL parses a target URL and refuses anything but http(s) to localhost,
// 127.0.0.0/8 or ::1.
func CheckLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("target %q is not an http:// or https:// URL with a host", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return u, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsLoopback() {
		return u, nil
	}
	return nil, fmt.Errorf("target %q: %s %w; ratelab sends load only to this machine (127.0.0.1, ::1, localhost)",
		raw, host, ErrNotLoopback)
}

// Send sends one request and reads the decision from the answer: the status (200
// allowed, 429 denied, anything else or no answer failed) and, from a ratelab serve
// node, the Server-Timing header: the check's latency, and whether the check failed
// (a 200 then is a fail-open admission, a 503 a fail-closed refusal). It also counts
// the answer's X-Cache source and notes the target's RateLimit-Policy.
func (t *HTTPTarget) Send(ctx context.Context, a Arrival) Status {
	n := (t.next.Add(1) - 1) % uint64(len(t.bases))
	identity := t.identities[a.Identity]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.bases[n]+"/products/"+strconv.Itoa(int(a.Product)), nil)
	if err != nil {
		return Failed
	}
	req.Header.Set("X-Forwarded-For", identity)
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Cancelled
		}
		return Failed
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if t.policies[n].Load() == nil {
		if p := resp.Header.Get("RateLimit-Policy"); p != "" {
			t.policies[n].CompareAndSwap(nil, &p)
		}
	}
	if src := resp.Header.Get("X-Cache"); src != "" {
		t.countSource(src)
	}
	took, outcome, timed := ParseServerTiming(resp.Header.Values("Server-Timing"))
	var checkErr error
	if timed && outcome == "error" {
		checkErr = ErrCheckFailed
	}
	var status Status
	switch {
	case resp.StatusCode == http.StatusOK:
		status = Allowed
	case resp.StatusCode == http.StatusTooManyRequests:
		status = Denied
	case checkErr != nil:
		status = Failed // fail closed: the check failed and the node refused
	default:
		return Failed
	}
	if t.Record != nil {
		t.Record.Record(identity, time.Now().UnixMicro(), status == Allowed, took, checkErr)
	}
	return status
}

// ParseServerTiming finds the limiter check's metric (ratelimit;dur=<ms>;desc="<outcome>")
// among Server-Timing header values and returns its duration and outcome; ok is false
// when no value carries it.
func ParseServerTiming(values []string) (took time.Duration, outcome string, ok bool) {
	for _, v := range values {
		for metric := range strings.SplitSeq(v, ",") {
			params := strings.Split(metric, ";")
			if strings.TrimSpace(params[0]) != "ratelimit" {
				continue
			}
			for _, p := range params[1:] {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				switch strings.ToLower(name) {
				case "dur":
					if ms, err := strconv.ParseFloat(value, 64); err == nil && ms >= 0 {
						took = time.Duration(ms * float64(time.Millisecond))
					}
				case "desc":
					outcome = strings.Trim(value, `"`)
				}
			}
			return took, outcome, true
		}
	}
	return 0, "", false
}

func (t *HTTPTarget) countSource(src string) {
	c, ok := t.sources.Load(src)
	if !ok {
		c, _ = t.sources.LoadOrStore(src, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Sources counts the answers by their X-Cache header (local, redis, wait, miss,
// shared, bypass from a ratelab serve node).
func (t *HTTPTarget) Sources() map[string]int64 {
	out := make(map[string]int64)
	t.sources.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// Policies returns, for each target, the first RateLimit-Policy header it answered
// with ("" when none did).
func (t *HTTPTarget) Policies() []string {
	out := make([]string, len(t.policies))
	for i := range t.policies {
		if p := t.policies[i].Load(); p != nil {
			out[i] = *p
		}
	}
	return out
}

// Warm sends perNode requests at once to every node as identity (one that is not the
// run's) and waits for the answers: connections are opened and the limiter script is
// loaded before the schedule starts, so the first requests of a run are not the slow ones.
func (t *HTTPTarget) Warm(ctx context.Context, identity string, perNode int) {
	var wg sync.WaitGroup
	for _, base := range t.bases {
		for range perNode {
			wg.Go(func() {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/products/1", nil)
				if err != nil {
					return
				}
				req.Header.Set("X-Forwarded-For", identity)
				if resp, err := t.client.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			})
		}
	}
	wg.Wait()
}

// Close closes the target's idle connections.
func (t *HTTPTarget) Close() { t.client.CloseIdleConnections() }
