package commands

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/algorithms"
	"github.com/ratelab/ratelab/internal/redisconn"
	"github.com/ratelab/ratelab/internal/report"
)

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
			parsed, perr := keys.Parse(k)
			if perr != nil {
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
				if perr != nil {
					s.WithoutTTLUndecodable++
				}
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
