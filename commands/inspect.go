package commands

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/cache"
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
	// Output is report.FormatTable or report.FormatJSON.
	Output string
	// MemorySample is how many keys the summary reads MEMORY USAGE of, at most;
	// the total is extrapolated above that. Normalize makes 0 DefaultMemorySample.
	MemorySample int
}

// DefaultMemorySample is how many keys `ratelab inspect` reads MEMORY USAGE of before
// it estimates the total from a sample.
const DefaultMemorySample = 1000

// Inspect shows what ratelab holds in Redis: one key, every limiter key of one
// identity, or a summary of everything under the prefix. A missing key, a key that is
// not ratelab's and one it cannot decode are errors with ExitMissing, ExitForeign and
// ExitUndecodable. opts are normalized and validated (InspectOptions.Normalize and
// Validate), as cmd does.
func Inspect(ctx context.Context, opts InspectOptions, ios IO) error {
	keys, err := algorithms.NewKeyspace(opts.Prefix)
	if err != nil {
		return err
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
	if conn.Embedded && opts.Output == report.FormatTable {
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
//
//go:embed lua/inspect_key.lua
var readKeyLua string

var readKeyScript = redis.NewScript(readKeyLua)

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
		Rule: parsed.Rule, Limit: parsed.Limit,
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

// pairs turns a flat field, value, field, value… reply into a map.
func pairs(flat []string) map[string]string {
	m := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m[flat[i]] = flat[i+1]
	}
	return m
}

// decodeProduct turns a cached product's hash, decoded by the cache that writes it,
// into what inspect shows at the server time nowMs.
func decodeProduct(h map[string]string, nowMs int64) (*report.InspectProduct, error) {
	e, err := cache.DecodeEntry(h)
	if err != nil {
		return nil, err
	}
	p := &report.InspectProduct{NotFound: e.NotFound, Generation: strconv.FormatInt(e.Generation, 10)}
	if e.Value != nil {
		v := string(e.Value)
		p.Value = &v
	}
	if e.ExpiresAtMillis != 0 {
		left := e.ExpiresAtMillis - nowMs
		p.ExpiresInMillis = &left
	}
	return p, nil
}
