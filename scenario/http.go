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
	// Record, when set, receives each decision read from a response (the client's
	// clock stands for the server's): the burst analysis of nodes ratelab does not run.
	Record *Recorder
}

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

// Send sends one request and reads the decision from its status: 200 allowed, 429
// denied, anything else (or no answer) failed.
func (t *HTTPTarget) Send(ctx context.Context, a Arrival) Status {
	base := t.bases[(t.next.Add(1)-1)%uint64(len(t.bases))]
	identity := t.identities[a.Identity]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/products/"+strconv.Itoa(int(a.Product)), nil)
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
	var status Status
	switch resp.StatusCode {
	case http.StatusOK:
		status = Allowed
	case http.StatusTooManyRequests:
		status = Denied
	default:
		return Failed
	}
	if t.Record != nil {
		t.Record.Record(identity, time.Now().UnixMicro(), status == Allowed, 0, nil)
	}
	return status
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
