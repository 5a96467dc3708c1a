package commands

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/ratelab/ratelab/internal/redisconn"
)

// scanCount is the COUNT hint of every SCAN: about this many keys looked at per call,
// so no single call holds the server for long.
const scanCount = 1000

// scanMasters runs SCAN MATCH pattern on every master (never KEYS, which blocks the
// server for the whole keyspace) and calls fn with each page of keys and the master
// that holds them. On a cluster fn runs concurrently for different masters.
func scanMasters(ctx context.Context, conn *redisconn.Conn, patterns []string, fn func(ctx context.Context, master *redis.Client, keys []string) error) error {
	return conn.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error {
		for _, pattern := range patterns {
			var cursor uint64
			for {
				keys, next, err := master.Scan(ctx, cursor, pattern, scanCount).Result()
				if err != nil {
					return redisErr(err, conn, master)
				}
				if len(keys) > 0 {
					if err := fn(ctx, master, keys); err != nil {
						return err
					}
				}
				if cursor = next; cursor == 0 {
					break
				}
			}
		}
		return nil
	})
}

// redisErr explains an error from Redis in one line that says what to do; a
// cancelled context stays itself.
func redisErr(err error, conn *redisconn.Conn, master *redis.Client) error {
	if err == nil || err == context.Canceled || strings.Contains(err.Error(), context.Canceled.Error()) {
		return err
	}
	where := conn.Backend
	if master != nil && conn.Cluster {
		where = fmt.Sprintf("%s (master %s)", conn.Backend, master.Options().Addr)
	}
	return redisconn.Explain(err, where)
}
