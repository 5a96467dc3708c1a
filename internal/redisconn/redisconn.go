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
	"strings"
	"sync"
	"syscall"
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

// Conn is an open connection to the Redis that ratelab works on.
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

	mini     *miniredis.Miniredis
	stop     chan struct{}
	stopOnce sync.Once
}

// Options tune Open.
type Options struct {
	// PoolSize is the connection pool size per server; 0 means go-redis's default.
	PoolSize int
	// MinIdleConns is how many connections per server are dialled ahead of need; a load
	// generator wants them open before its first burst rather than during it.
	MinIdleConns int
	// DialTimeout bounds connecting and the first PING; 0 means 3s.
	DialTimeout time.Duration
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
		_ = c.Client.Close()
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
	c := &Conn{
		Client:   redis.NewClient(&redis.Options{Addr: m.Addr(), PoolSize: opts.PoolSize, MinIdleConns: opts.MinIdleConns}),
		Backend:  "embedded",
		Embedded: true,
		mini:     m,
		stop:     make(chan struct{}),
	}
	go c.ageEmbedded()
	return c, nil
}

// ageEmbedded moves the embedded Redis's TTL clock with real time: miniredis only
// expires keys when told time has passed, and ratelab relies on every key expiring.
func (c *Conn) ageEmbedded() {
	const every = 100 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-c.stop:
			return
		case now := <-t.C:
			c.mini.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Close closes the client and stops the embedded Redis, if any.
func (c *Conn) Close() error {
	err := c.Client.Close()
	c.stopOnce.Do(func() {
		if c.mini != nil {
			close(c.stop)
			c.mini.Close()
		}
	})
	return err
}

// Addr is the embedded Redis's address (empty for a real one), for processes that
// need to reach it from outside ratelab.
func (c *Conn) Addr() string {
	if c.mini != nil {
		return c.mini.Addr()
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
		if opts.PoolSize > 0 {
			co.PoolSize = opts.PoolSize
		}
		co.MinIdleConns = opts.MinIdleConns
		return &Conn{Client: redis.NewClusterClient(co), Backend: Redact(rawURL), Cluster: true}, nil
	}
	o, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, bad(err.Error())
	}
	o.DialTimeout = opts.DialTimeout
	if opts.PoolSize > 0 {
		o.PoolSize = opts.PoolSize
	}
	o.MinIdleConns = opts.MinIdleConns
	return &Conn{Client: redis.NewClient(o), Backend: Redact(rawURL)}, nil
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

// Explain turns an error from talking to Redis into one line that says what went
// wrong and what to do, wrapping ErrUnreachable; where names the server.
func Explain(err error, where string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	var why, todo string
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why, todo = "connection refused", "start redis-server there, or drop --redis to use the embedded one"
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		why, todo = "no answer in time", "check the address and that nothing blocks the port"
	case errors.Is(err, syscall.ENOENT):
		why, todo = "no such socket", "check the socket path"
	case strings.Contains(msg, "no such host"):
		why, todo = "unknown host", "check the host name in the URL"
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"), strings.Contains(msg, "invalid password"),
		strings.Contains(msg, "invalid username-password"):
		why, todo = "authentication failed", "check the user and password in the URL"
	case strings.Contains(msg, "tls:"), strings.Contains(msg, "x509"):
		why, todo = "TLS handshake failed", "use rediss:// only for a server that speaks TLS, and check its certificate"
	case strings.Contains(msg, "CLUSTERDOWN"):
		why, todo = "the cluster is down", "wait for every slot to be served, then retry"
	case strings.Contains(msg, "cluster support disabled"), strings.Contains(msg, "ERR This instance has cluster support disabled"):
		why, todo = "the server is not a cluster", "give one address without redis+cluster://"
	case strings.Contains(msg, "LOADING"):
		why, todo = "the server is still loading its data", "retry in a moment"
	case strings.Contains(msg, "can't parse"), strings.Contains(msg, "HTTP/1."):
		why, todo = "the server there does not speak the Redis protocol", "check the host and port: they belong to another kind of server"
	case strings.Contains(msg, "connection reset"), strings.Contains(msg, "EOF"), strings.Contains(msg, "broken pipe"):
		why, todo = "the connection was closed", "check that the address is a Redis server and that it is running"
	default:
		why, todo = firstLine(msg), "check that the address is a Redis server and that it is running"
	}
	return fmt.Errorf("%w %s (%s); %s", ErrUnreachable, where, why, todo)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
