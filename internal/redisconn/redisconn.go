// Package redisconn turns a --redis URL into a go-redis client: no URL starts the
// embedded in-process Redis; redis://, rediss:// (TLS) and unix:// reach one server;
// several comma-separated seed addresses, or a redis+cluster:// URL, reach a Redis
// Cluster. Every failure is one line that says what to do.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// EnvURL is the environment variable read when --redis is not given.
const EnvURL = "RATELAB_REDIS_URL"

// ErrBadURL is wrapped by the error for a --redis value that is not a usable URL.
var ErrBadURL = errors.New("bad Redis URL")

// ErrUnreachable is wrapped by the error for a Redis that cannot be reached or refuses us.
var ErrUnreachable = errors.New("cannot reach Redis")

// URLHelp lists the accepted forms of --redis.
const URLHelp = "redis://[user:password@]host:port[/db], rediss://… for TLS, unix:///path/redis.sock, " +
	"redis://host1:port1,host2:port2,… or redis+cluster://host:port for a Redis Cluster; empty for the embedded Redis"

// Conn is an open connection to the Redis that ratelab works on. Every call on
// Client is bounded by its context's deadline, socket reads and writes and the wait
// for a pool connection included (go-redis ContextTimeoutEnabled): a caller's budget
// holds while Redis stalls.
type Conn struct {
	// Client is the go-redis client: a *redis.Client or a *redis.ClusterClient.
	Client redis.UniversalClient
	// Backend names what Client talks to, for reports: "embedded", or the URL without its password.
	Backend string
	// Embedded reports whether Client talks to the in-process Redis, whose latency is not
	// representative of a real server.
	Embedded bool
	// Cluster reports whether Client is a cluster client.
	Cluster bool

	// ChildProcess reports that the embedded Redis runs in a process of its own
	// (Options.EmbeddedCommand), so its memory is not this process's.
	ChildProcess bool

	// probe is a client of its own with a small pool for Probe, so that a health
	// check measures Redis and never waits behind this process's own load.
	probe    redis.UniversalClient
	poolSize int
	mini     *miniredis.Miniredis
	stop     chan struct{}
	stopOnce sync.Once
	child    *child // the embedded Redis's process, with ChildProcess
}

// DefaultPoolSize is the connection pool size per server when Options.PoolSize is 0:
// go-redis's own default, 10 per GOMAXPROCS.
func DefaultPoolSize() int { return 10 * runtime.GOMAXPROCS(0) }

// NodeOptions are the options of an API node's client (ratelab serve's): the default
// pool, every connection dialled ahead of need, so that a burst on a fresh node or
// after timeouts closed connections does not wait for dials inside its checks' budgets.
func NodeOptions() Options {
	return Options{PoolSize: DefaultPoolSize(), MinIdleConns: DefaultPoolSize()}
}

// probePoolSize is the probe client's pool: health checks are few and small.
const probePoolSize = 2

// PoolSize is the client's connection pool size per server.
func (c *Conn) PoolSize() int { return c.poolSize }

// Options tune Open.
type Options struct {
	// PoolSize is the connection pool size per server; 0 means DefaultPoolSize.
	PoolSize int
	// MinIdleConns is how many connections per server are dialled ahead of need; a load
	// generator wants them open before its first burst rather than during it.
	MinIdleConns int
	// DialTimeout bounds connecting and the first PING; 0 means 3s.
	DialTimeout time.Duration
	// EmbeddedCommand, when set, runs the embedded Redis in a child process instead of
	// this one: the argv of a program that calls ServeEmbedded (ratelab's hidden
	// ChildCommand). Its garbage is then collected in that process, not this one's.
	EmbeddedCommand []string
}

// quietLogger drops go-redis's own log lines (pool dial failures and the like):
// ratelab reports Redis trouble itself, once and in words, never as raw lines on stderr.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

var silenceOnce sync.Once

// Open connects to rawURL (empty: the embedded Redis) and checks the server answers.
func Open(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	silenceOnce.Do(func() { redis.SetLogger(quietLogger{}) })
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 3 * time.Second
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = DefaultPoolSize()
	}
	if strings.TrimSpace(rawURL) == "" && len(opts.EmbeddedCommand) > 0 {
		return openChild(ctx, opts)
	}
	if strings.TrimSpace(rawURL) == "" {
		return openEmbedded(opts)
	}
	c, err := newClient(rawURL, opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	if err := ping(pctx, c); err != nil {
		_ = c.Close()
		return nil, Explain(err, c.Backend)
	}
	return c, nil
}

func ping(ctx context.Context, c *Conn) error {
	if cc, ok := c.Client.(*redis.ClusterClient); ok {
		if err := cc.Ping(ctx).Err(); err != nil {
			return err
		}
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
	}
	return c.Client.Ping(ctx).Err()
}

func openEmbedded(opts Options) (*Conn, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded Redis: cannot listen on 127.0.0.1: %w", err)
	}
	o := &redis.Options{Addr: m.Addr(), PoolSize: opts.PoolSize, MinIdleConns: opts.MinIdleConns}
	client, probe := newClients(o)
	c := &Conn{
		Client:   client,
		Backend:  "embedded",
		Embedded: true,
		probe:    probe,
		poolSize: opts.PoolSize,
		mini:     m,
		stop:     make(chan struct{}),
	}
	go age(m, c.stop)
	return c, nil
}

// age moves an embedded Redis's TTL clock with real time until stop is closed:
// miniredis only expires keys when told time has passed, and ratelab relies on every
// key expiring.
func age(m *miniredis.Miniredis, stop <-chan struct{}) {
	const every = 100 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Retries are few and soon, so that a failing Redis is reported as what it is within
// a check's budget: go-redis's defaults (five dials 100ms apart, three retries with up
// to 512ms of backoff) turn a refused connection into a timeout of any budget shorter
// than that. One retry still hides a pooled connection that a Redis restart closed.
const (
	dialAttempts    = 1
	maxRetries      = 1
	minRetryBackoff = time.Millisecond
	maxRetryBackoff = 5 * time.Millisecond
)

// newClients makes the client for o and the probe's client of its own, both bounded
// by their callers' contexts.
func newClients(o *redis.Options) (client, probe *redis.Client) {
	o.ContextTimeoutEnabled, o.DialerRetries = true, dialAttempts
	o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff = maxRetries, minRetryBackoff, maxRetryBackoff
	po := *o
	po.PoolSize, po.MinIdleConns = probePoolSize, 0
	return redis.NewClient(o), redis.NewClient(&po)
}

// newClusterClients is newClients for a cluster.
func newClusterClients(o *redis.ClusterOptions) (client, probe *redis.ClusterClient) {
	o.ContextTimeoutEnabled, o.DialerRetries = true, dialAttempts
	o.MaxRetries, o.MinRetryBackoff, o.MaxRetryBackoff = maxRetries, minRetryBackoff, maxRetryBackoff
	po := *o
	po.PoolSize, po.MinIdleConns = probePoolSize, 0
	return redis.NewClusterClient(o), redis.NewClusterClient(&po)
}

// Close closes the clients and stops the embedded Redis, if any.
func (c *Conn) Close() error {
	err := c.Client.Close()
	if c.probe != nil {
		_ = c.probe.Close()
	}
	c.stopOnce.Do(func() {
		if c.mini != nil {
			close(c.stop)
			c.mini.Close()
		}
		if c.child != nil {
			c.child.stop()
		}
	})
	return err
}

// Addr is the embedded Redis's address (empty for a real one), for processes that
// need to reach it from outside ratelab.
func (c *Conn) Addr() string {
	switch {
	case c.mini != nil:
		return c.mini.Addr()
	case c.child != nil:
		return c.child.addr
	}
	return ""
}

// ForEachMaster calls fn for every master: the one server, or every master of a cluster.
func (c *Conn) ForEachMaster(ctx context.Context, fn func(ctx context.Context, client *redis.Client) error) error {
	switch cl := c.Client.(type) {
	case *redis.ClusterClient:
		return cl.ForEachMaster(ctx, fn)
	case *redis.Client:
		return fn(ctx, cl)
	}
	return fmt.Errorf("redis: unsupported client type %T", c.Client)
}

func newClient(rawURL string, opts Options) (*Conn, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w %q: %s; use %s", ErrBadURL, Redact(rawURL), redactIn(why, rawURL), URLHelp)
	}
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, bad("it has no scheme")
	}
	cluster := false
	switch scheme {
	case "redis+cluster", "rediss+cluster":
		cluster = true
		scheme = strings.TrimSuffix(scheme, "+cluster")
	case "redis", "rediss", "unix":
	default:
		return nil, bad(fmt.Sprintf("the scheme %q is not redis, rediss, unix or redis+cluster", scheme))
	}
	hostPart, _, _ := strings.Cut(rest, "/")
	hostPart, _, _ = strings.Cut(hostPart, "?")
	if at := strings.LastIndexByte(hostPart, '@'); at >= 0 {
		hostPart = hostPart[at+1:]
	}
	hosts := strings.Split(hostPart, ",")
	if len(hosts) > 1 {
		cluster = true
	}
	if cluster {
		if scheme == "unix" {
			return nil, bad("a cluster is reached over TCP, not a unix socket")
		}
		for _, h := range hosts {
			if _, _, err := net.SplitHostPort(h); err != nil {
				return nil, bad(fmt.Sprintf("the seed address %q is not host:port", h))
			}
		}
		// go-redis reads a cluster URL as the first address plus addr= parameters.
		u, err := url.Parse(scheme + "://" + strings.Replace(rest, hostPart, hosts[0], 1))
		if err != nil {
			return nil, bad(err.Error())
		}
		q := u.Query()
		for _, h := range hosts[1:] {
			q.Add("addr", h)
		}
		u.RawQuery = q.Encode()
		co, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, bad(err.Error())
		}
		co.DialTimeout = opts.DialTimeout
		co.PoolSize = opts.PoolSize
		co.MinIdleConns = opts.MinIdleConns
		client, probe := newClusterClients(co)
		return &Conn{Client: client, probe: probe, poolSize: opts.PoolSize, Backend: Redact(rawURL), Cluster: true}, nil
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, bad(err.Error())
	}
	o.DialTimeout = opts.DialTimeout
	o.PoolSize = opts.PoolSize
	o.MinIdleConns = opts.MinIdleConns
	client, probe := newClients(o)
	return &Conn{Client: client, probe: probe, poolSize: opts.PoolSize, Backend: Redact(rawURL)}, nil
}

// Redact removes the password from a Redis URL, for messages, logs, help texts and
// reports: every place ratelab shows a URL it was given goes through it.
func Redact(rawURL string) string {
	scheme, user, _, host, ok := splitPassword(rawURL)
	if !ok {
		return rawURL
	}
	return scheme + "://" + user + ":xxxxx@" + host
}

// splitPassword cuts a URL around its password; ok is false when it has none.
func splitPassword(rawURL string) (scheme, user, password, rest string, ok bool) {
	scheme, rest, ok = strings.Cut(rawURL, "://")
	if !ok {
		return "", "", "", "", false
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return "", "", "", "", false
	}
	user, password, ok = strings.Cut(rest[:at], ":")
	return scheme, user, password, rest[at+1:], ok
}

// redactIn removes rawURL's password from a message about it (a parser's error
// quotes the URL it could not read, password and all).
func redactIn(msg, rawURL string) string {
	_, _, password, _, ok := splitPassword(rawURL)
	if !ok || password == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, ":"+password+"@", ":xxxxx@")
	if len(password) >= 4 {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return msg
}
