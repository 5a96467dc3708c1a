// Package cache is ratelab's read-through product cache: a Redis tier shared by every
// node, an optional expiring LRU in each process, and the machinery that keeps them
// honest under load and under change.
//
//   - Stampede protection: one read per id at a time in a process (singleflight), and
//     one fill per id across processes: a fill lock in Redis (SET NX PX with a random
//     token, renewed while the slow load runs, released only by its owner). Others
//     wait for the fill and read the filled value; they do not call the backend.
//   - No late write-back: each cached product carries a generation that Invalidate
//     bumps; a fill writes only if the generation it read before loading is unchanged.
//   - Local tiers are kept honest by Pub/Sub: Invalidate publishes on the invalidation
//     channel and waits until every subscribed node confirms it dropped its copy. A node
//     that loses its subscription drops its local tier and does not use it until it is
//     subscribed again.
//
// Every key the cache writes has a TTL: values, cached "not found" answers,
// invalidation markers and locks.
package cache

import (
	"context"
	crand "crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redisconn"
)

var (
	//go:embed lua/read.lua
	readLua string
	//go:embed lua/write.lua
	writeLua string
	//go:embed lua/invalidate.lua
	invalidateLua string
	//go:embed lua/renew.lua
	renewLua string
	//go:embed lua/release.lua
	releaseLua string

	readScript       = redis.NewScript(readLua)
	writeScript      = redis.NewScript(writeLua)
	invalidateScript = redis.NewScript(invalidateLua)
	renewScript      = redis.NewScript(renewLua)
	releaseScript    = redis.NewScript(releaseLua)
)

// Defaults of Options.
const (
	DefaultTTL            = 5 * time.Minute
	DefaultJitter         = 0.1
	DefaultNegativeTTL    = 5 * time.Second
	DefaultLocalSize      = 10_000
	DefaultLockTTL        = 2 * time.Second
	DefaultFetchTimeout   = 30 * time.Second
	DefaultRedisTimeout   = 500 * time.Millisecond
	DefaultConfirmTimeout = time.Second
)

// Options tune a Cache. Zero values mean the defaults.
type Options struct {
	// Keys names the product keys, their locks and the invalidation channel.
	Keys algorithms.Keyspace
	// TTL is how long a product stays in Redis, plus up to Jitter×TTL at random so
	// that keys filled together do not expire together.
	TTL    time.Duration
	Jitter float64
	// NegativeTTL is how long a "not found" answer is cached.
	NegativeTTL time.Duration
	// LocalTTL enables the local tier: values are kept this long in this process.
	// 0 means no local tier.
	LocalTTL time.Duration
	// LocalSize bounds the local tier's entries.
	LocalSize int
	// LockTTL is a fill lock's lifetime; its owner renews it every LockTTL/3 while it
	// loads, so a crashed owner holds others up for at most LockTTL.
	LockTTL time.Duration
	// FetchTimeout bounds one load, and with it how long a fill may take.
	FetchTimeout time.Duration
	// RedisTimeout bounds each Redis call; on error or timeout Get loads directly.
	RedisTimeout time.Duration
	// ConfirmTimeout bounds how long Invalidate waits for every node's confirmation.
	ConfirmTimeout time.Duration
	// Where names the Redis in error messages (redisconn.Conn.Backend).
	Where string
	// Logger receives outage logs (once per outage); nil means none.
	Logger *slog.Logger
}

// Cache is a read-through cache of values by id. It is safe for concurrent use.
type Cache struct {
	rdb  redis.UniversalClient
	opts Options
	log  *slog.Logger
	sf   singleflight.Group

	// maxFill is the longest a fill may take from reading a generation to writing;
	// invalidation markers live twice as long.
	maxFill time.Duration

	local *expirable.LRU[string, []byte]
	// mu orders local-tier writes against invalidations: a value read before an
	// invalidation was processed (epoch changed) is not stored.
	mu             sync.Mutex
	epoch          uint64
	subscribed     bool
	everSubscribed bool

	acks      sync.Map // token -> chan struct{}
	redisDown atomic.Bool

	stats struct {
		localHits, redisHits, negativeHits, misses, loads, lockWaits,
		rejectedFills, invalidations, localDrops, redisErrors atomic.Int64
	}

	cancel context.CancelFunc
	done   chan struct{}
	ps     *redis.PubSub
	ready  chan struct{}
	once   sync.Once
}

// New returns a cache on rdb and subscribes it to the invalidation channel; it waits
// (at most ConfirmTimeout) until the subscription is confirmed.
func New(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Cache, error) {
	if opts.Keys.Prefix() == "" {
		return nil, errors.New("cache: Options.Keys has no prefix")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"TTL", opts.TTL}, {"NegativeTTL", opts.NegativeTTL}, {"LocalTTL", opts.LocalTTL}, {"LockTTL", opts.LockTTL},
		{"FetchTimeout", opts.FetchTimeout}, {"RedisTimeout", opts.RedisTimeout}, {"ConfirmTimeout", opts.ConfirmTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("cache: %s is %s; it must not be negative", d.name, d.v)
		}
	}
	if opts.Jitter < 0 || opts.Jitter > 1 {
		return nil, fmt.Errorf("cache: jitter %v must be between 0 and 1", opts.Jitter)
	}
	setDefault(&opts.TTL, DefaultTTL)
	setDefault(&opts.NegativeTTL, DefaultNegativeTTL)
	setDefault(&opts.LockTTL, DefaultLockTTL)
	setDefault(&opts.FetchTimeout, DefaultFetchTimeout)
	setDefault(&opts.RedisTimeout, DefaultRedisTimeout)
	setDefault(&opts.ConfirmTimeout, DefaultConfirmTimeout)
	if opts.Jitter == 0 {
		opts.Jitter = DefaultJitter
	}
	if opts.LocalSize <= 0 {
		opts.LocalSize = DefaultLocalSize
	}
	if opts.Where == "" {
		opts.Where = "for the cache"
	}
	c := &Cache{
		rdb: rdb, opts: opts, log: opts.Logger,
		maxFill: opts.FetchTimeout + opts.LockTTL + opts.RedisTimeout,
		done:    make(chan struct{}), ready: make(chan struct{}),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.LocalTTL > 0 {
		c.local = expirable.NewLRU[string, []byte](opts.LocalSize, nil, opts.LocalTTL)
	}
	lctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.ps = rdb.Subscribe(lctx, opts.Keys.Invalidation())
	go c.listen(lctx)
	t := time.NewTimer(opts.ConfirmTimeout)
	defer t.Stop()
	select {
	case <-c.ready:
		return c, nil
	case <-t.C:
		_ = c.Close()
		return nil, fmt.Errorf("cache: subscribing to %s: %w", opts.Keys.Invalidation(),
			redisconn.Explain(context.DeadlineExceeded, opts.Where))
	case <-ctx.Done():
		_ = c.Close()
		return nil, fmt.Errorf("cache: subscribing to %s: %w", opts.Keys.Invalidation(), ctx.Err())
	}
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// Close unsubscribes and stops the cache's goroutine. The Redis client is the caller's.
func (c *Cache) Close() error {
	c.cancel()
	err := c.ps.Close()
	<-c.done
	return err
}

// Stats counts what the cache did since New.
func (c *Cache) Stats() Stats {
	s := &c.stats
	return Stats{
		LocalHits: s.localHits.Load(), RedisHits: s.redisHits.Load(), NegativeHits: s.negativeHits.Load(),
		Misses: s.misses.Load(), Loads: s.loads.Load(), LockWaits: s.lockWaits.Load(),
		RejectedFills: s.rejectedFills.Load(), Invalidations: s.invalidations.Load(),
		LocalDrops: s.localDrops.Load(), RedisErrors: s.redisErrors.Load(),
	}
}

// Get returns the value of id: from the local tier, else from Redis, else from load,
// filling Redis (and the local tier) under the fill lock. An id the loader does not
// know returns an error wrapping ErrNotFound, and that answer is cached for NegativeTTL.
// When Redis cannot be used, Get calls load directly and caches nothing.
func (c *Cache) Get(ctx context.Context, id string, load Loader) (Result, error) {
	if err := ValidateID(id); err != nil {
		return Result{}, err
	}
	if v, ok := c.localGet(id); ok {
		c.stats.localHits.Add(1)
		return Result{Value: v, Source: FromLocal}, nil
	}
	leader := false
	ch := c.sf.DoChan(id, func() (any, error) {
		leader = true
		// Shared by every caller waiting on it, so no one caller's cancellation ends it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
		defer cancel()
		return c.fetch(fctx, id, load)
	})
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case r := <-ch:
		res, _ := r.Val.(Result)
		if !leader {
			res.Source = FromShared
		}
		return res, r.Err
	}
}

// fetch reads id from Redis, filling it under the lock on a miss, or waiting for
// another node's fill.
func (c *Cache) fetch(ctx context.Context, id string, load Loader) (Result, error) {
	epoch := c.localEpoch()
	keys := []string{c.opts.Keys.Product(id), c.opts.Keys.ProductLock(id)}
	waited := false
	poll := 5 * time.Millisecond
	for {
		r, err := c.read(ctx, keys)
		if err != nil {
			return c.bypass(ctx, id, load, err)
		}
		switch r.status {
		case statusValue:
			c.localPut(id, r.value, epoch)
			c.stats.redisHits.Add(1)
			if waited {
				return Result{Value: r.value, Source: FromWait}, nil
			}
			return Result{Value: r.value, Source: FromRedis}, nil
		case statusNotFound:
			c.stats.negativeHits.Add(1)
			src := FromRedis
			if waited {
				src = FromWait
			}
			return Result{Source: src}, fmt.Errorf("product %q: %w (cached)", id, ErrNotFound)
		}
		if !r.locked {
			token := newToken()
			rctx, cancel := context.WithTimeout(ctx, c.opts.RedisTimeout)
			ok, err := c.rdb.SetNX(rctx, keys[1], token, c.opts.LockTTL).Result()
			cancel()
			if err != nil {
				return c.bypass(ctx, id, load, err)
			}
			if ok {
				return c.fill(ctx, id, keys, load, r, token, epoch)
			}
		}
		if !waited {
			waited = true
			c.stats.lockWaits.Add(1)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return Result{}, fmt.Errorf("product %q: waiting for another node's fill: %w", id, ctx.Err())
		case <-t.C:
		}
		poll = min(2*poll, 50*time.Millisecond)
	}
}

// fill loads id while holding its lock and writes the value unless id was
// invalidated meanwhile.
func (c *Cache) fill(ctx context.Context, id string, keys []string, load Loader, r readResult, token string, epoch uint64) (Result, error) {
	c.stats.misses.Add(1)
	stopRenew := c.renew(ctx, keys[1], token)
	c.stats.loads.Add(1)
	v, err := load(ctx, id)
	stopRenew()
	defer c.release(keys[1], token)
	notFound := errors.Is(err, ErrNotFound)
	if err != nil && !notFound {
		return Result{}, err
	}
	ttl := c.opts.NegativeTTL
	if !notFound {
		ttl = c.jittered()
	}
	flag := "0"
	if notFound {
		flag = "1"
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.RedisTimeout)
	written, werr := writeScript.Run(wctx, c.rdb, keys[:1], r.gen, r.nowMs, c.maxFill.Milliseconds(),
		v, ttl.Milliseconds(), flag).Int()
	cancel()
	switch {
	case werr != nil:
		c.redisFailed(werr)
	case written == 0:
		// Invalidated while loading: what was loaded may be the old value; it is this
		// request's answer, and nobody else's.
		c.stats.rejectedFills.Add(1)
	case !notFound:
		c.redisOK()
		c.localPut(id, v, epoch)
	}
	if notFound {
		return Result{Source: FromLoad}, err
	}
	return Result{Value: v, Source: FromLoad}, nil
}

// renew keeps the lock alive while the load runs; the returned func stops it.
func (c *Cache) renew(ctx context.Context, lock, token string) (stop func()) {
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(c.opts.LockTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				octx, ocancel := context.WithTimeout(rctx, c.opts.RedisTimeout)
				_ = renewScript.Run(octx, c.rdb, []string{lock}, token, c.opts.LockTTL.Milliseconds()).Err()
				ocancel()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// release deletes the lock if it is still ours.
func (c *Cache) release(lock, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.RedisTimeout)
	defer cancel()
	_ = releaseScript.Run(ctx, c.rdb, []string{lock}, token).Err()
}

// bypass loads id without Redis, after err.
func (c *Cache) bypass(ctx context.Context, id string, load Loader, err error) (Result, error) {
	c.redisFailed(err)
	c.stats.loads.Add(1)
	v, lerr := load(ctx, id)
	if lerr != nil {
		return Result{Source: FromBypass}, lerr
	}
	return Result{Value: v, Source: FromBypass}, nil
}

func (c *Cache) redisFailed(err error) {
	c.stats.redisErrors.Add(1)
	if c.redisDown.CompareAndSwap(false, true) {
		c.log.Warn("cache: Redis unavailable; reading the backend directly, caching nothing, until it is back",
			"err", redisconn.Explain(err, c.opts.Where))
	}
}

func (c *Cache) redisOK() {
	if c.redisDown.Load() && c.redisDown.CompareAndSwap(true, false) {
		c.log.Info("cache: Redis available again")
	}
}

func (c *Cache) jittered() time.Duration {
	j := time.Duration(float64(c.opts.TTL) * c.opts.Jitter)
	if j <= 0 {
		return c.opts.TTL
	}
	return c.opts.TTL + rand.N(j)
}

const (
	statusMiss     = 0
	statusValue    = 1
	statusNotFound = 2
)

type readResult struct {
	status int64
	value  []byte
	gen    string
	nowMs  int64
	locked bool
}

func (c *Cache) read(ctx context.Context, keys []string) (readResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.RedisTimeout)
	defer cancel()
	res, err := readScript.Run(ctx, c.rdb, keys).Slice()
	if err != nil {
		return readResult{}, err
	}
	if len(res) != 5 {
		return readResult{}, fmt.Errorf("cache: unexpected reply from the read script: %d values", len(res))
	}
	status, _ := res[0].(int64)
	value, _ := res[1].(string)
	gen, _ := res[2].(string)
	now, _ := res[3].(int64)
	locked, _ := res[4].(int64)
	c.redisOK()
	return readResult{status: status, value: []byte(value), gen: gen, nowMs: now, locked: locked == 1}, nil
}

// Invalidate drops id from Redis and from every node's local tier. It returns once
// every subscribed node has confirmed, or with an error wrapping ErrUnconfirmed after
// ConfirmTimeout (the Redis tier is invalidated by then).
func (c *Cache) Invalidate(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	c.stats.invalidations.Add(1)
	rctx, cancel := context.WithTimeout(ctx, c.opts.RedisTimeout)
	err := invalidateScript.Run(rctx, c.rdb, []string{c.opts.Keys.Product(id)}, (2 * c.maxFill).Milliseconds()).Err()
	cancel()
	if err != nil {
		c.redisFailed(err)
		return fmt.Errorf("invalidating product %q: %w", id, redisconn.Explain(err, c.opts.Where))
	}
	c.localDrop(id)

	token := newToken()
	acks := make(chan struct{}, 1024)
	c.acks.Store(token, acks)
	defer c.acks.Delete(token)
	rctx, cancel = context.WithTimeout(ctx, c.opts.RedisTimeout)
	n, err := c.rdb.Publish(rctx, c.opts.Keys.Invalidation(), "inv "+id+" "+token).Result()
	cancel()
	if err != nil {
		c.redisFailed(err)
		return fmt.Errorf("%w: product %q: publishing on %s: %w", ErrUnconfirmed, id, c.opts.Keys.Invalidation(),
			redisconn.Explain(err, c.opts.Where))
	}
	t := time.NewTimer(c.opts.ConfirmTimeout)
	defer t.Stop()
	for got := int64(0); got < n; got++ {
		select {
		case <-acks:
		case <-t.C:
			return fmt.Errorf("%w: product %q: %d of %d subscribers confirmed within %s", ErrUnconfirmed, id, got, n, c.opts.ConfirmTimeout)
		case <-ctx.Done():
			return fmt.Errorf("%w: product %q: %w", ErrUnconfirmed, id, ctx.Err())
		}
	}
	return nil
}

// listen follows the invalidation channel until Close: it drops invalidated ids from
// the local tier and confirms, and drops the whole tier when the subscription is lost.
func (c *Cache) listen(ctx context.Context) {
	defer close(c.done)
	const pingEvery = 2 * time.Second
	backoff := 50 * time.Millisecond
	for {
		msg, err := c.ps.ReceiveTimeout(ctx, pingEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				pctx, cancel := context.WithTimeout(ctx, c.opts.RedisTimeout)
				err = c.ps.Ping(pctx)
				cancel()
				if err == nil {
					continue
				}
			}
			c.lostSubscription(err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				backoff = 50 * time.Millisecond
				c.gotSubscription()
				c.once.Do(func() { close(c.ready) })
			}
		case *redis.Message:
			c.handle(ctx, m.Payload)
		}
	}
}

// handle acts on one message: "inv <id> <token>" or "ack <token>".
func (c *Cache) handle(ctx context.Context, payload string) {
	fields := strings.Fields(payload)
	switch {
	case len(fields) == 3 && fields[0] == "inv":
		c.localDrop(fields[1])
		pctx, cancel := context.WithTimeout(ctx, c.opts.RedisTimeout)
		_ = c.rdb.Publish(pctx, c.opts.Keys.Invalidation(), "ack "+fields[2]).Err()
		cancel()
	case len(fields) == 2 && fields[0] == "ack":
		if ch, ok := c.acks.Load(fields[1]); ok {
			select {
			case ch.(chan struct{}) <- struct{}{}:
			default:
			}
		}
	}
}

// switchSubscription records whether this node holds its invalidation subscription.
// Either way the local tier starts over: what it held may have missed invalidations.
func (c *Cache) switchSubscription(on bool) (was, ever bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	was, ever = c.subscribed, c.everSubscribed
	c.subscribed = on
	c.everSubscribed = ever || on
	c.epoch++
	if c.local != nil {
		c.local.Purge()
	}
	return was, ever
}

func (c *Cache) lostSubscription(err error) {
	if was, _ := c.switchSubscription(false); was {
		c.stats.localDrops.Add(1)
		c.log.Warn("cache: invalidation subscription lost; local tier dropped until it is back",
			"err", redisconn.Explain(err, c.opts.Where))
	}
}

func (c *Cache) gotSubscription() {
	if was, ever := c.switchSubscription(true); !was && ever {
		c.log.Info("cache: invalidation subscription back; the local tier starts empty")
	}
}

func (c *Cache) localGet(id string) ([]byte, bool) {
	if c.local == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.subscribed {
		return nil, false
	}
	return c.local.Get(id)
}

func (c *Cache) localEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// localPut stores v unless an invalidation (or a lost subscription) came since epoch.
func (c *Cache) localPut(id string, v []byte, epoch uint64) {
	if c.local == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subscribed && c.epoch == epoch {
		c.local.Add(id, v)
	}
}

func (c *Cache) localDrop(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if c.local != nil {
		c.local.Remove(id)
	}
}

func newToken() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
