package commands

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
)

// InspectOptions are the options of `ratelab inspect`.
type InspectOptions struct {
	Global
	// Key is the key to inspect; empty for a summary of everything under the prefix,
	// or for every limiter key of Identity.
	Key string
	// Identity is a normalised identity (an IP address, or key-… for an API key)
	// whose limiter keys to list.
	Identity string
	// Output is "text" or "json".
	Output string
	// MemorySample is how many keys the summary reads MEMORY USAGE of, at most;
	// the total is extrapolated above that. 0 means DefaultMemorySample.
	MemorySample int
}

// DefaultMemorySample is how many keys `ratelab inspect` reads MEMORY USAGE of before
// it estimates the total from a sample.
const DefaultMemorySample = 1000

// keyspaceAndOutput checks the --prefix and --output that inspect and flush share;
// output defaults to text.
func keyspaceAndOutput(prefix, output string) (algorithms.Keyspace, string, error) {
	keys, err := algorithms.NewKeyspace(prefix)
	if err != nil {
		return algorithms.Keyspace{}, "", UsageError(fmt.Errorf("--prefix: %w", err))
	}
	switch output {
	case "":
		return keys, "text", nil
	case "text", "json":
		return keys, output, nil
	}
	return algorithms.Keyspace{}, "", Usagef("--output %q: use text or json", output)
}

// Inspect shows what ratelab holds in Redis: one key, every limiter key of one
// identity, or a summary of everything under the prefix. A missing key, a key that is
// not ratelab's and one it cannot decode are errors with ExitMissing, ExitForeign and
// ExitUndecodable.
func Inspect(ctx context.Context, opts InspectOptions, ios IO) error {
	keys, output, err := keyspaceAndOutput(opts.Prefix, opts.Output)
	if err != nil {
		return err
	}
	opts.Output = output
	if opts.Key != "" && opts.Identity != "" {
		return Usagef("give a KEY or an identity (--ip, --key-id, --api-key), not both")
	}
	var parsed algorithms.Key
	if opts.Key != "" {
		// The name alone says whether the key is ratelab's: no need to ask Redis.
		if parsed, err = keys.Parse(opts.Key); err != nil {
			return keyNameError(err, keys)
		}
	}
	conn, err := redisconn.Open(ctx, opts.RedisURL, redisconn.Options{})
	if err != nil {
		return err
	}
	defer conn.Close()
	if conn.Embedded && opts.Output == "text" {
		fmt.Fprintln(ios.ErrOut, "note: inspecting the embedded Redis, which starts empty; pass --redis URL to inspect the Redis that ratelab serve or hammer used")
	}
	switch {
	case opts.Key != "":
		k, err := inspectKey(ctx, conn, keys, opts.Key, parsed)
		if err != nil {
			return err
		}
		return report.WriteInspectKey(ios.Out, opts.Output, k)
	case opts.Identity != "":
		r, err := inspectIdentity(ctx, conn, keys, opts.Identity)
		if err != nil {
			return err
		}
		return report.WriteInspectIdentity(ios.Out, opts.Output, r)
	}
	if opts.MemorySample <= 0 {
		opts.MemorySample = DefaultMemorySample
	}
	s, err := inspectSummary(ctx, conn, keys, opts.MemorySample)
	if err != nil {
		return err
	}
	return report.WriteInspectSummary(ios.Out, opts.Output, s)
}

// keyNameError turns a Parse error into one with its exit status and a hint.
func keyNameError(err error, keys algorithms.Keyspace) error {
	if errors.Is(err, algorithms.ErrForeignKey) {
		return WithExit(ExitForeign, fmt.Errorf("%w; ratelab inspects only its own keys (pass --prefix if ratelab ran with another prefix)", err))
	}
	return WithExit(ExitUndecodable, fmt.Errorf("%w; ratelab writes %s", err, keyForms(keys)))
}

func keyForms(keys algorithms.Keyspace) string {
	p := keys.Prefix()
	return p + ":rl:<algorithm>:<policy>:{<identity>}, " + p + ":product:{<id>} and " + p + ":lock:product:{<id>}"
}

// readKeyScript reads a key atomically with the server's TIME: its type, TTL and
// content, and for a product the type, TTL and value of its fill lock, which shares
// its hash slot. One round trip, and "now" is the clock of the server holding the key.
var readKeyScript = redis.NewScript(`
local function typeof(k)
  local t = redis.call('TYPE', k)
  if type(t) == 'table' then t = t['ok'] end
  return t
end
local t = redis.call('TIME')
local typ = typeof(KEYS[1])
local content = {}
if typ == 'hash' then
  content = redis.call('HGETALL', KEYS[1])
elseif typ == 'zset' then
  content = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
elseif typ == 'string' then
  content = {redis.call('GET', KEYS[1])}
end
local lock = {}
if KEYS[2] then
  local lt = typeof(KEYS[2])
  if lt ~= 'none' then
    lock = {lt, redis.call('PTTL', KEYS[2])}
    if lt == 'string' then lock[3] = redis.call('GET', KEYS[2]) end
  end
end
return {t[1], t[2], typ, redis.call('PTTL', KEYS[1]), content, lock}
`)

// rawKey is what readKeyScript returns.
type rawKey struct {
	now     int64 // µs
	typ     string
	ttl     int64 // ms, -1 none
	content []string
	lock    []any
}

func readKey(ctx context.Context, conn *redisconn.Conn, rdb redis.Scripter, keys []string) (rawKey, error) {
	v, err := readKeyScript.Run(ctx, rdb, keys).Slice()
	if err != nil {
		return rawKey{}, redisErr(err, conn, nil)
	}
	bad := fmt.Errorf("reading %q: unexpected reply %v from Redis; check that --redis is a Redis server", keys[0], v)
	if len(v) != 6 {
		return rawKey{}, bad
	}
	var r rawKey
	sec, err1 := strconv.ParseInt(fmt.Sprint(v[0]), 10, 64)
	usec, err2 := strconv.ParseInt(fmt.Sprint(v[1]), 10, 64)
	typ, ok1 := v[2].(string)
	ttl, ok2 := v[3].(int64)
	content, ok3 := v[4].([]any)
	lock, ok4 := v[5].([]any)
	if err1 != nil || err2 != nil || !ok1 || !ok2 || !ok3 || !ok4 {
		return rawKey{}, bad
	}
	r.now, r.typ, r.ttl, r.lock = sec*1_000_000+usec, typ, ttl, lock
	for _, c := range content {
		s, ok := c.(string)
		if !ok {
			return rawKey{}, bad
		}
		r.content = append(r.content, s)
	}
	return r, nil
}

// inspectKey reads and decodes one key whose name parsed as parsed.
func inspectKey(ctx context.Context, conn *redisconn.Conn, keys algorithms.Keyspace, key string, parsed algorithms.Key) (report.InspectKey, error) {
	names := []string{key}
	if parsed.Kind == algorithms.KindProduct {
		names = append(names, keys.ProductLock(parsed.ProductID))
	}
	raw, err := readKey(ctx, conn, conn.Client, names)
	if err != nil {
		return report.InspectKey{}, err
	}
	if raw.typ == "none" {
		return report.InspectKey{}, WithExit(ExitMissing, fmt.Errorf("no such key %q on %s; it may have expired (every ratelab key has a TTL), "+
			"or ratelab ran with another --redis or --prefix: `ratelab inspect` without a KEY lists what is there", key, conn.Backend))
	}
	k, err := decodeKey(key, parsed, raw)
	if err != nil {
		return k, WithExit(ExitUndecodable, fmt.Errorf("cannot decode %q: %w", key, err))
	}
	if k.Lock != nil {
		k.Lock.Key = names[1]
	}
	return k, nil
}

// decodeKey turns a key's raw content into what inspect shows; the error says why the
// content is not what ratelab writes, and k still holds what could be read.
func decodeKey(key string, parsed algorithms.Key, raw rawKey) (report.InspectKey, error) {
	k := report.InspectKey{
		Key: key, Kind: parsed.Kind, Type: raw.typ, TTLMillis: raw.ttl, TimeMicros: raw.now,
		Algorithm: parsed.Algorithm, Identity: parsed.Identity, ProductID: parsed.ProductID,
	}
	switch parsed.Kind {
	case algorithms.KindLock, algorithms.KindHealth:
		if raw.typ != "string" || len(raw.content) != 1 {
			return k, fmt.Errorf("%w: a %s key is a string, this is a %s", algorithms.ErrBadState, parsed.Kind, raw.typ)
		}
		k.Value = &raw.content[0]
		return k, nil
	case algorithms.KindProduct:
		if raw.typ != "hash" {
			return k, fmt.Errorf("%w: a cached product is a hash (v, nf, x, g), this is a %s", algorithms.ErrBadState, raw.typ)
		}
		k.Hash = pairs(raw.content)
		prod, err := decodeProduct(k.Hash, raw.now/1000)
		if err != nil {
			return k, err
		}
		k.Product = prod
		k.Lock = &report.InspectLock{Held: len(raw.lock) > 0}
		if len(raw.lock) >= 2 {
			k.Lock.TTLMillis, _ = raw.lock[1].(int64)
		}
		if len(raw.lock) == 3 {
			k.Lock.Owner, _ = raw.lock[2].(string)
		}
		return k, nil
	}
	p := *parsed.Policy
	k.Policy = p.String()
	var c algorithms.Content
	switch raw.typ {
	case "hash":
		c.Hash = pairs(raw.content)
		k.Hash = c.Hash
	case "string":
		if len(raw.content) != 1 {
			return k, fmt.Errorf("%w: a string with %d values", algorithms.ErrBadState, len(raw.content))
		}
		c.String = &raw.content[0]
		k.Value = c.String
	case "zset":
		c.ZSet = make([]algorithms.ZMember, 0, len(raw.content)/2)
		for i := 0; i+1 < len(raw.content); i += 2 {
			score, err := strconv.ParseFloat(raw.content[i+1], 64)
			if err != nil {
				return k, fmt.Errorf("%w: the score %q is not a number", algorithms.ErrBadState, raw.content[i+1])
			}
			c.ZSet = append(c.ZSet, algorithms.ZMember{Member: raw.content[i], Score: score})
		}
		k.ZSet = c.ZSet
	default:
		want := "a hash"
		switch parsed.Algorithm {
		case algorithms.SlidingLog:
			want = "a sorted set"
		case algorithms.GCRA:
			want = "a string"
		}
		return k, fmt.Errorf("%w: %s state is %s, this is a %s", algorithms.ErrBadState, parsed.Algorithm, want, raw.typ)
	}
	s, err := algorithms.DecodeState(parsed.Algorithm, p, c, raw.now)
	if err != nil {
		return k, err
	}
	k.State = &s
	return k, nil
}

// inspectIdentity lists and decodes every limiter key of identity, on every master.
func inspectIdentity(ctx context.Context, conn *redisconn.Conn, keys algorithms.Keyspace, identity string) (report.InspectIdentity, error) {
	r := report.InspectIdentity{Backend: conn.Backend, Prefix: keys.Prefix(), Identity: identity}
	var mu sync.Mutex
	var found []string
	err := scanMasters(ctx, conn, []string{keys.MatchIdentity(identity)}, func(_ context.Context, _ *redis.Client, page []string) error {
		mu.Lock()
		found = append(found, page...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return r, err
	}
	sort.Strings(found)
	for _, key := range found {
		parsed, err := keys.Parse(key)
		if err != nil || parsed.Identity != identity {
			if err == nil {
				continue
			}
			r.Keys = append(r.Keys, report.InspectKey{Key: key, Error: err.Error()})
			continue
		}
		raw, err := readKey(ctx, conn, conn.Client, []string{key})
		if err != nil {
			return r, err
		}
		if raw.typ == "none" {
			continue // expired since SCAN saw it
		}
		k, err := decodeKey(key, parsed, raw)
		if err != nil {
			k.Error = err.Error()
		}
		r.Keys = append(r.Keys, k)
	}
	return r, nil
}

// inspectSummary counts the keys under the prefix per kind and algorithm, finds those
// without a TTL, and totals MEMORY USAGE over a uniform sample of at most sample keys.
func inspectSummary(ctx context.Context, conn *redisconn.Conn, keys algorithms.Keyspace, sample int) (report.InspectSummary, error) {
	s := report.InspectSummary{
		Backend: conn.Backend, Prefix: keys.Prefix(),
		ByKind: map[string]int64{}, ByAlgorithm: map[string]int64{},
	}
	type sampled struct {
		master *redis.Client
		key    string
	}
	var (
		mu        sync.Mutex
		reservoir []sampled
		rng       = rand.New(rand.NewPCG(1, 2))
	)
	err := scanMasters(ctx, conn, []string{keys.Match()}, func(ctx context.Context, master *redis.Client, page []string) error {
		// TTLs are read for every key: a key without one must be found, not estimated.
		pipe := master.Pipeline()
		ttls := make([]*redis.DurationCmd, len(page))
		for i, k := range page {
			ttls[i] = pipe.PTTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return redisErr(err, conn, master)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, k := range page {
			s.Keys++
			if parsed, err := keys.Parse(k); err != nil {
				s.ByKind["undecodable"]++
				if len(s.UndecodableKeys) < report.InspectListLimit {
					s.UndecodableKeys = append(s.UndecodableKeys, k)
				}
			} else {
				s.ByKind[string(parsed.Kind)]++
				if parsed.Kind == algorithms.KindLimiter {
					s.ByAlgorithm[parsed.Algorithm]++
				}
			}
			// PTTL answers -1 for a key without a TTL (-2 for one gone since SCAN).
			if ttls[i].Val() == -1 {
				s.WithoutTTL++
				if len(s.WithoutTTLKeys) < report.InspectListLimit {
					s.WithoutTTLKeys = append(s.WithoutTTLKeys, k)
				}
			}
			if len(reservoir) < sample {
				reservoir = append(reservoir, sampled{master, k})
			} else if j := rng.Int64N(s.Keys); j < int64(sample) {
				reservoir[j] = sampled{master, k}
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	sort.Strings(s.WithoutTTLKeys)
	sort.Strings(s.UndecodableKeys)
	// MEMORY USAGE per sampled key, pipelined per master.
	byMaster := map[*redis.Client][]string{}
	for _, e := range reservoir {
		byMaster[e.master] = append(byMaster[e.master], e.key)
	}
	var total, counted int64
	for master, ks := range byMaster {
		pipe := master.Pipeline()
		cmds := make([]*redis.IntCmd, len(ks))
		for i, k := range ks {
			cmds[i] = pipe.MemoryUsage(ctx, k)
		}
		_, _ = pipe.Exec(ctx)
		for _, c := range cmds {
			switch n, err := c.Result(); {
			case err == nil:
				total += n
				counted++
			case errors.Is(err, redis.Nil): // gone since SCAN
			default:
				if ctx.Err() != nil {
					return s, ctx.Err()
				}
				s.MemoryBytes = -1
			}
		}
	}
	switch {
	case s.MemoryBytes < 0:
	case counted == 0:
		s.MemoryBytes = 0
	case int64(len(reservoir)) < s.Keys:
		s.MemoryEstimated = true
		s.MemoryBytes = total * s.Keys / counted
	default:
		s.MemoryBytes = total
	}
	s.MemorySampled = counted
	return s, nil
}

// pairs turns a flat field, value, field, value… reply into a map.
func pairs(flat []string) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m
}

// decodeProduct reads a cached product's hash as the cache writes it: v the value (or
// nf for a cached "not found"), x when the entry expires (ms, server time), g the
// generation that invalidations bump. A hash with only g is an invalidation marker.
func decodeProduct(h map[string]string, nowMs int64) (*report.InspectProduct, error) {
	p := &report.InspectProduct{Generation: "0"}
	for f, v := range h {
		switch f {
		case "v":
			val := v
			p.Value = &val
		case "nf":
			p.NotFound = true
		case "g":
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("%w: the generation g=%q is not an integer", algorithms.ErrBadState, v)
			}
			p.Generation = v
		case "x":
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%w: the expiry x=%q is not an integer", algorithms.ErrBadState, v)
			}
			left := x - nowMs
			p.ExpiresInMillis = &left
		default:
			return nil, fmt.Errorf("%w: a cached product has the fields v, nf, x and g, not %q", algorithms.ErrBadState, f)
		}
	}
	return p, nil
}
