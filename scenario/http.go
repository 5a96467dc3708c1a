package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ratelab/ratelab/internal/cache"
	"github.com/ratelab/ratelab/internal/wire"
)

// ErrNotLoopback is wrapped by the error for a target that is not a loopback address:
// ratelab only ever sends load to this machine.
var ErrNotLoopback = errors.New("not a loopback address")

// HTTPTarget sends a schedule's requests to HTTP nodes on loopback, round robin: by
// default ratelab's Product API, GET /products/{id} with the identity in
// X-Forwarded-For (the nodes trust the loopback proxy the requests come from and take
// the identity as the client's IP); any service with a TargetConfig. It keeps its own
// keep-alive connections (see conns.go), so that Start can write a request on the
// caller's thread, at once.
type HTTPTarget struct {
	nodes      []*node
	identities []string
	timeout    time.Duration
	next       atomic.Uint64
	conns      []*conn
	readers    sync.WaitGroup
	closing    atomic.Bool
	// starting is held (read) while a request is handed to a connection, so that Close
	// waits for those under way before the readers stop.
	starting  sync.RWMutex
	closed    chan struct{}
	closeOnce sync.Once
	// policies holds the first RateLimit-Policy header each target answered with.
	policies []atomic.Pointer[string]
	// sources counts answers by their X-Cache header.
	sources sync.Map // cache.Source → *atomic.Int64
	// Record, when set, receives each decision read from a response (the client's
	// clock stands for the server's), with the check's latency from the response's
	// Server-Timing: the burst analysis of nodes ratelab does not run.
	Record *Recorder
	// Tiers, when set, counts each answer by its client's tier and by the limits its
	// headers name (a policy file's run).
	Tiers *TierTally

	// What each request carries and how its answer is read (TargetConfig).
	path     PathTemplate
	bySource bool  // IdentitySource: a pool of connections per node and identity
	deny     []int // the status codes that mean denied
	// own are each identity's own header lines (TargetConfig.IdentityHeaders).
	own [][]byte
}

// ErrCheckFailed is what a target's decision is recorded with when its Server-Timing
// says the limiter check failed and the node's fail mode decided instead.
var ErrCheckFailed = errors.New("the target's limiter check failed")

// NewHTTPTarget is NewTarget for ratelab's Product API: GET /products/{id}, the
// identity in X-Forwarded-For, 429 for denied.
func NewHTTPTarget(bases []string, identities []string, conns int, timeout time.Duration) (*HTTPTarget, error) {
	return NewTarget(TargetConfig{Bases: bases, Identities: identities, Conns: conns, Timeout: timeout})
}

// NewTarget checks that every base URL is http(s) on a loopback address, opens
// cfg.Conns connections spread over them (and, with IdentitySource, over the
// identities, each bound to its identity's address), and returns a target that gives
// each request cfg.Timeout. A node that cannot be reached is not an error here: its
// requests fail.
func NewTarget(cfg TargetConfig) (*HTTPTarget, error) {
	path, err := cfg.check()
	if err != nil {
		return nil, err
	}
	bySource := cfg.Identity == IdentitySource
	urls := make([]*url.URL, len(cfg.Bases))
	for i, b := range cfg.Bases {
		u, err := CheckLoopbackURL(b)
		if err != nil {
			return nil, err
		}
		if bySource && !reachesIPv4(u) {
			return nil, fmt.Errorf("target %q: source identities are 127.x.y.z addresses, which reach IPv4 loopback only; use http://127.0.0.1:PORT", b)
		}
		urls[i] = u
	}
	if bySource && len(cfg.Identities) > 0 {
		if err := probeSource(cfg.Identities[0]); err != nil {
			return nil, err
		}
	}
	t := &HTTPTarget{
		identities: cfg.Identities,
		timeout:    cfg.Timeout,
		closed:     make(chan struct{}),
		policies:   make([]atomic.Pointer[string], len(urls)),
		path:       path,
		bySource:   bySource,
		deny:       cfg.DenyStatus,
	}
	if len(t.deny) == 0 {
		t.deny = []int{DefaultDenyStatus}
	}
	for _, hs := range cfg.IdentityHeaders {
		var lines []byte
		for _, h := range hs {
			lines = append(append(append(append(lines, h.Name...), ": "...), h.Value...), "\r\n"...)
		}
		t.own = append(t.own, lines)
	}
	groups := 1
	if bySource {
		groups = max(1, len(cfg.Identities))
	}
	perPool := max(1, (cfg.Conns+len(urls)*groups-1)/(len(urls)*groups))
	ctx := context.Background()
	for i, u := range urls {
		n := newNode(i, u, cfg.Headers)
		t.nodes = append(t.nodes, n)
		for g := range groups {
			var local *net.TCPAddr
			if bySource {
				local = sourceAddr(cfg.Identities[g])
			}
			p := n.addPool(local, perPool)
			for range perPool {
				t.connect(ctx, n, p)
			}
		}
	}
	return t, nil
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

// Start writes a's request on a free connection of the next node, round robin, and
// returns: the request is sent when Start returns. done is called once, from the
// connection's reader, with what became of it. When every connection of that node is
// busy, Start waits for one (waited is true), unless ctx is done first. Once the
// target is aborted or closed, Start refuses.
func (t *HTTPTarget) Start(ctx context.Context, a Arrival, done func(Status)) (waited bool, err error) {
	nd := t.nodes[int((t.next.Add(1)-1)%uint64(len(t.nodes)))]
	p := nd.pools[0]
	if t.bySource {
		p = nd.pools[a.Identity]
	}
	var own []byte
	if t.own != nil {
		own = t.own[a.Identity]
	}
	return t.startOn(ctx, p, a.Product, t.identities[a.Identity], own, done)
}

// startOn writes a request for product as identity, with its own header lines, on
// a free connection of p.
func (t *HTTPTarget) startOn(ctx context.Context, p *pool, product int32, identity string, own []byte, done func(Status)) (bool, error) {
	if t.closing.Load() {
		return false, errClosed
	}
	waited := false
	var cn *conn
	select {
	case cn = <-p.free:
	default:
		waited = true
		select {
		case cn = <-p.free:
		case <-ctx.Done():
			return true, ctx.Err()
		case <-t.closed:
			return true, errClosed
		}
	}
	t.starting.RLock()
	defer t.starting.RUnlock()
	if t.closing.Load() {
		p.free <- cn
		return waited, errClosed
	}
	cn.start(Arrival{Product: product}, identity, own, done)
	return waited, nil
}

// decide reads the decision from an answer: the status (see classify: by default
// below 400 allowed, 429 denied, anything else failed) and, from a ratelab serve node, the Server-Timing header: the
// check's latency, and whether the check failed (a 200 then is a fail-open admission,
// a 503 a fail-closed refusal). It also counts the answer's X-Cache source, notes the
// target's RateLimit-Policy, and records the decision. outcome is the node's
// Server-Timing outcome ("" without one): wire.CheckError when its check failed and
// the fail mode decided, wire.CheckLocal when its in-memory limiter did.
func (t *HTTPTarget) decide(n *node, resp *http.Response, identity string) (st Status, outcome string) {
	if t.policies[n.index].Load() == nil {
		if p := resp.Header.Get(wire.HeaderRateLimitPolicy); p != "" {
			t.policies[n.index].CompareAndSwap(nil, &p)
		}
	}
	if src, ok := wire.ParseXCache(resp.Header.Get(wire.HeaderXCache)); ok {
		t.countSource(src)
	}
	took, outcome, timed := wire.ParseServerTiming(resp.Header.Values(wire.HeaderServerTiming))
	var checkErr error
	if timed && (outcome == wire.CheckError || outcome == wire.CheckLocal) {
		checkErr = ErrCheckFailed
	}
	status := t.classify(resp.StatusCode, resp.Header)
	if t.Tiers != nil {
		t.Tiers.count(identity, status, resp.Header)
	}
	if status == Failed && checkErr == nil {
		return Failed, outcome // not a decision: no check failed, the node failed
	}
	if t.Record != nil {
		t.Record.Record(identity, time.Now().UnixMicro(), status == Allowed, took, checkErr)
	}
	return status, outcome
}

func (t *HTTPTarget) countSource(src cache.Source) {
	c, ok := t.sources.Load(src)
	if !ok {
		c, _ = t.sources.LoadOrStore(src, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Sources counts the answers by their X-Cache header (local, redis, wait, miss,
// shared, bypass from a ratelab serve node); values a ratelab node does not send are
// not counted.
func (t *HTTPTarget) Sources() map[cache.Source]int64 {
	out := make(map[cache.Source]int64)
	t.sources.Range(func(k, v any) bool {
		out[k.(cache.Source)] = v.(*atomic.Int64).Load()
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
// run's) and waits for the answers: the nodes load the limiter script and fill their
// caches before the schedule starts, so the first requests of a run are not the slow ones.
// With IdentitySource, identity is an address of 127.0.0.0/8, and the warm-up opens
// perNode connections of its own, bound to it, on every node.
func (t *HTTPTarget) Warm(ctx context.Context, identity string, perNode int) {
	var wg sync.WaitGroup
	for _, nd := range t.nodes {
		p := nd.pools[0]
		if t.bySource {
			p = nd.addPool(sourceAddr(identity), perNode)
			for range perNode {
				t.connect(ctx, nd, p)
			}
		}
		for range perNode {
			wg.Add(1)
			if _, err := t.startOn(ctx, p, 1, identity, nil, func(Status) { wg.Done() }); err != nil {
				wg.Done()
			}
		}
	}
	wg.Wait()
}

// Abort ends the requests in flight: each is reported Cancelled. The target takes no
// more requests.
func (t *HTTPTarget) Abort() {
	t.closing.Store(true)
	for _, cn := range t.conns {
		cn.abort()
	}
}

// Close ends the requests in flight, closes the connections and waits for their readers.
func (t *HTTPTarget) Close() {
	t.closeOnce.Do(func() {
		t.Abort()
		// Once the write lock is held no request is being handed over, and none
		// will be: Start sees closing.
		t.starting.Lock()
		close(t.closed)
		t.starting.Unlock()
		t.readers.Wait()
	})
}
